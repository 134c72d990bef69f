-- roles.sql: the ledger's PostgreSQL roles, with the least privileges each
-- needs. docs/security.md lists the grants and the tests that prove them
-- (deploy/postgres_test.go).
--
--   owner   runs the migrations: `modledger migrate`, `modledger projection
--           rebuild`. Owns the control schema, every projection generation's
--           schema, tables and views. Nothing else connects as it.
--   writer  projectors: reads and writes rows (COPY, temporary staging
--           tables, row locks, NOTIFY, advisory locks); cannot create, alter
--           or drop anything.
--   reader  query servers, expiry schedulers and analysts: reads the views of
--           the control schema (and LISTENs for checkpoints, takes advisory
--           locks); cannot write, create or drop anything. Its sessions are
--           read-only by default as well.
--
-- Run it as a superuser in the ledger's database, before the first
-- `modledger migrate`; running it again is harmless (and grants on what
-- exists by then):
--
--   psql -v ON_ERROR_STOP=1 -d modledger -f deploy/postgres/roles.sql \
--        -v owner=modledger_owner -v writer=modledger_writer \
--        -v reader=modledger_reader -v schema=modledger
--
-- Every -v is optional; the defaults are the values shown. Roles are
-- cluster-wide, so the names are variables: several ledgers (or tests) can
-- share a server. The roles get no password here: set one with \password, or
-- use certificate authentication, and connect with
-- DATABASE_URL=postgres://modledger_writer:...@db/modledger?sslmode=verify-full.
--
-- If another role (a superuser) ran the migrations before, hand the schemas
-- over first: ALTER SCHEMA ... OWNER TO, and the same for their tables and
-- views, or drop the read side and rebuild it (the stream is the truth).

\set ON_ERROR_STOP on
\if :{?owner}
\else
\set owner modledger_owner
\endif
\if :{?writer}
\else
\set writer modledger_writer
\endif
\if :{?reader}
\else
\set reader modledger_reader
\endif
\if :{?schema}
\else
\set schema modledger
\endif

BEGIN;

-- The roles: logins without any special attribute. NOINHERIT: none of them
-- gains another role's privileges by membership.
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', r)
FROM unnest(ARRAY[:'owner', :'writer', :'reader']) AS r
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r)
\gexec

-- The database: nobody but these roles (and superusers) may connect, create
-- schemas or temporary tables in it. The owner creates the generation
-- schemas; the writer's projector stages rows in temporary tables.
SELECT format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database())
\gexec
SELECT format('GRANT CONNECT, TEMPORARY, CREATE ON DATABASE %I TO %I', current_database(), :'owner')
\gexec
SELECT format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I', current_database(), :'writer')
\gexec
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), :'reader')
\gexec
-- PostgreSQL 15 and later do this already; older versions let every role
-- create tables in public.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The control schema (projections, schema_version, and one view per read
-- model table), made here so that grants can name it; `modledger migrate`
-- fills it.
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION :"owner";
GRANT USAGE ON SCHEMA :"schema" TO :"writer", :"reader";

-- What the owner creates from now on: the control schema's tables and views,
-- and each generation's schema (<schema>_<projection>_g<N>) and tables.
-- The writer reads and writes the rows of all of them; the reader reads the
-- control schema, whose views show the active generation.
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT USAGE ON SCHEMAS TO :"writer";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"writer";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" GRANT USAGE, SELECT ON SEQUENCES TO :"writer";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA :"schema" GRANT SELECT ON TABLES TO :"reader";

-- The same for what exists already (a second run, after migrations).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA :"schema" TO :"writer";
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO :"reader";
SELECT format('GRANT USAGE ON SCHEMA %I TO %I', nspname, :'writer'),
       format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', nspname, :'writer'),
       format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO %I', nspname, :'writer')
FROM pg_namespace
WHERE nspname ~ ('^' || :'schema' || '_[a-z0-9_]+_g[0-9]+$')
  AND pg_get_userbyid(nspowner) = :'owner'
\gexec

-- Defence in depth: the reader's sessions start read-only, so a grant added
-- by mistake later still writes nothing unless a session asks for it.
ALTER ROLE :"reader" SET default_transaction_read_only = on;

COMMIT;
