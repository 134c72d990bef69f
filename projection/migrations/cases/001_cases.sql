-- Tables of one generation of the "cases" projection. {{.schema}} is the
-- generation's own schema; queries read them through the views of the
-- control schema. guild_id leads every key, so that tables can be
-- hash-partitioned (or sharded by Citus) on it without a rewrite.

-- The last stream sequence applied; written in the same transaction as the
-- rows, so a restarted projector neither loses nor double-applies.
CREATE TABLE {{.schema}}.checkpoint (
    projection  text PRIMARY KEY,
    seq         bigint NOT NULL,
    -- When the event at seq was stored in the stream.
    event_time  timestamptz,
    updated_at  timestamptz NOT NULL
);

-- One row per case: its current state, the fold of its events.
CREATE TABLE {{.schema}}.cases (
    guild_id            bigint      NOT NULL,
    case_number         bigint      NOT NULL,
    case_id             uuid        NOT NULL,
    type                text        NOT NULL,
    user_id             bigint      NOT NULL,
    moderator_id        bigint      NOT NULL,
    reason              text        NOT NULL,
    status              text        NOT NULL,
    expires_at          timestamptz,
    expired_at          timestamptz,
    expiry_processed    boolean     NOT NULL,
    expiry_processed_at timestamptz,
    expiry_processed_by bigint,
    user_roles          bigint[]    NOT NULL,
    mod_log_message_id  bigint,
    mod_log_channel_id  bigint,
    metadata            jsonb       NOT NULL,
    source              text        NOT NULL,
    external_id         text,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    deleted             boolean     NOT NULL,
    deleted_at          timestamptz,
    redacted            boolean     NOT NULL,
    reason_history      jsonb       NOT NULL,
    note_count          integer     NOT NULL,
    version             bigint      NOT NULL,
    events              integer     NOT NULL,
    reason_tsv          tsvector GENERATED ALWAYS AS (to_tsvector('simple', reason)) STORED,
    PRIMARY KEY (guild_id, case_number)
);
CREATE UNIQUE INDEX cases_case_id ON {{.schema}}.cases (case_id);
-- Lists, newest first, skip deleted cases.
CREATE INDEX cases_user ON {{.schema}}.cases (guild_id, user_id, case_number DESC) WHERE NOT deleted;
CREATE INDEX cases_moderator ON {{.schema}}.cases (guild_id, moderator_id, case_number DESC) WHERE NOT deleted;
CREATE INDEX cases_type ON {{.schema}}.cases (guild_id, type, case_number DESC) WHERE NOT deleted;
CREATE INDEX cases_created ON {{.schema}}.cases (guild_id, created_at DESC) WHERE NOT deleted;
-- Due expiries: active, undeleted cases whose expiry is not processed yet.
CREATE INDEX cases_due_expiry ON {{.schema}}.cases (expires_at, guild_id)
    WHERE expires_at IS NOT NULL AND NOT expiry_processed AND status = 'active' AND NOT deleted;
CREATE INDEX cases_reason_tsv ON {{.schema}}.cases USING gin (reason_tsv);
CREATE INDEX cases_metadata ON {{.schema}}.cases USING gin (metadata jsonb_path_ops);
CREATE INDEX cases_user_roles ON {{.schema}}.cases USING gin (user_roles);

-- Every event: the audit log. Personal text is blanked here too when a
-- case is redacted.
CREATE TABLE {{.schema}}.case_events (
    seq            bigint      PRIMARY KEY,
    guild_id       bigint      NOT NULL,
    case_number    bigint      NOT NULL,
    case_id        uuid        NOT NULL,
    event          text        NOT NULL,
    event_id       uuid        NOT NULL UNIQUE,
    schema_version integer     NOT NULL,
    actor_id       bigint      NOT NULL,
    command_id     uuid        NOT NULL,
    correlation_id uuid        NOT NULL,
    occurred_at    timestamptz NOT NULL,
    data           jsonb       NOT NULL
);
CREATE INDEX case_events_case ON {{.schema}}.case_events (guild_id, case_number, seq);

-- Moderators' notes, oldest first within a case.
CREATE TABLE {{.schema}}.case_notes (
    guild_id      bigint      NOT NULL,
    case_number   bigint      NOT NULL,
    note_id       uuid        NOT NULL,
    author_id     bigint      NOT NULL,
    text          text        NOT NULL,
    evidence_urls text[]      NOT NULL,
    created_at    timestamptz NOT NULL,
    seq           bigint      NOT NULL,
    PRIMARY KEY (guild_id, case_number, seq)
);

-- Active restrictions: one row per guild, user and family that the one
-- restriction rule (aggregate.Restriction) puts the user under.
CREATE TABLE {{.schema}}.restrictions (
    guild_id    bigint      NOT NULL,
    user_id     bigint      NOT NULL,
    family      text        NOT NULL,
    case_number bigint      NOT NULL,
    type        text        NOT NULL,
    expires_at  timestamptz,
    since       timestamptz NOT NULL,
    PRIMARY KEY (guild_id, user_id, family)
);

-- Statistics, kept by the projector so that statistics never scan cases.
-- They count undeleted cases; "active" counts those not closed.
CREATE TABLE {{.schema}}.stats_guild (
    guild_id bigint PRIMARY KEY,
    total    bigint NOT NULL,
    active   bigint NOT NULL
);
CREATE TABLE {{.schema}}.stats_type (
    guild_id bigint NOT NULL,
    type     text   NOT NULL,
    total    bigint NOT NULL,
    active   bigint NOT NULL,
    PRIMARY KEY (guild_id, type)
);
CREATE TABLE {{.schema}}.stats_user (
    guild_id bigint NOT NULL,
    user_id  bigint NOT NULL,
    total    bigint NOT NULL,
    active   bigint NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
CREATE TABLE {{.schema}}.stats_moderator (
    guild_id     bigint NOT NULL,
    moderator_id bigint NOT NULL,
    total        bigint NOT NULL,
    active       bigint NOT NULL,
    PRIMARY KEY (guild_id, moderator_id)
);
-- Cases by the UTC day they were created on, and type.
CREATE TABLE {{.schema}}.stats_day (
    guild_id bigint NOT NULL,
    day      date   NOT NULL,
    type     text   NOT NULL,
    total    bigint NOT NULL,
    active   bigint NOT NULL,
    PRIMARY KEY (guild_id, day, type)
);
