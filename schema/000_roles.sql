-- 000_roles.sql - the application roles and the baseline privileges every later migration builds on.
--
-- Migrations own the roles' existence and every privilege; deployment owns LOGIN and
-- authentication (see README.md).  A missing role is created NOLOGIN; an existing one is left
-- as it is, so a deployment's LOGIN and password survive every migration.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['callpipe_writer', 'callpipe_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                -- Roles are cluster-wide: a migrator of another database made it meanwhile.
                NULL;
            END;
        END IF;
    END LOOP;
END
$$;

COMMENT ON ROLE callpipe_writer IS 'callpipe services: read and write the base tables';
COMMENT ON ROLE callpipe_reader IS 'dashboards: SELECT on the reporting views only';

-- Only the migrating owner creates objects (PostgreSQL 15's default; databases created by
-- older versions still grant CREATE to everyone).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO callpipe_writer, callpipe_reader;

-- Services may check at startup which schema version they run against.
GRANT SELECT ON public.schema_migrations TO callpipe_writer;
