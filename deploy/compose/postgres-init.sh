#!/bin/sh
# postgres-init.sh: runs once, when the postgres container creates its data
# directory (docker-entrypoint-initdb.d). It applies deploy/postgres/roles.sql
# to the ledger's database and sets the roles' passwords from the
# environment.
set -eu

psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f /modledger/roles.sql
psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
	-v owner_password="$MODLEDGER_PG_OWNER_PASSWORD" \
	-v writer_password="$MODLEDGER_PG_WRITER_PASSWORD" \
	-v reader_password="$MODLEDGER_PG_READER_PASSWORD" <<'SQL'
ALTER ROLE modledger_owner PASSWORD :'owner_password';
ALTER ROLE modledger_writer PASSWORD :'writer_password';
ALTER ROLE modledger_reader PASSWORD :'reader_password';
SQL
