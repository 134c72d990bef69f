-- The control schema: which generation of each projection queries read.
-- Queries read the views in this schema; each view points at the tables of
-- the active generation, and a rebuild repoints every view of a projection
-- in one transaction.
CREATE TABLE {{.schema}}.projections (
    name              text PRIMARY KEY,
    -- The generation queries read, and its schema; NULL until the first
    -- generation has been built.
    active_generation integer,
    active_schema     text,
    -- The projection code version the active generation was built with.
    active_version    integer,
    -- A generation being built beside the active one, if any.
    building_generation integer,
    building_schema     text,
    building_version    integer,
    -- The last generation number handed out.
    last_generation   integer NOT NULL DEFAULT 0,
    swapped_at        timestamptz
);
