-- Up Migration

-- Two roles. Migrations run as the owner of the schema, the log and the read models (the role
-- CODEXK8S_DATABASE_OWNER_URL names). The platform runs as a member of codexk8s_platform, which gets
-- only what it needs: to append to and read the log (not to update, delete, truncate, alter it or
-- disable its triggers, which only an owner can), and to read and write the read models and the
-- projection bookkeeping. Where the owner may not create roles (a managed database), an
-- administrator creates codexk8s_platform (NOLOGIN) first and grants it to the platform's login role.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'codexk8s_platform') THEN
    CREATE ROLE codexk8s_platform NOLOGIN;
  END IF;
END $$;

GRANT USAGE ON SCHEMA public TO codexk8s_platform;

-- The log: append (through flow_events_append) and read, nothing else.
GRANT SELECT, INSERT ON flow_events TO codexk8s_platform;
GRANT SELECT ON flow_events_epoch TO codexk8s_platform;
REVOKE EXECUTE ON FUNCTION flow_events_bump_epoch() FROM PUBLIC;

-- Read models and the projections' own bookkeeping: only projections write them. A rebuild (run
-- as the owner) swaps in new tables with these same grants.
GRANT SELECT, INSERT, UPDATE, DELETE ON
  projection_checkpoints, projection_dead_letters,
  users, projects, project_members, repositories, agent_runs, project_run_counts, slots, learning_feedback
  TO codexk8s_platform;

-- Tables later migrations create (read models, as a rule) are the platform's to read and write; a
-- migration that adds one the platform must not change revokes what it must not do.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO codexk8s_platform;

-- Readiness asks whether migrations ran.
GRANT SELECT ON schema_migrations TO codexk8s_platform;
