-- Up Migration

-- This installation's identity, made once (adapters/postgres/installation.ts binds it to the database
-- that holds it). The Kubernetes objects of its runs carry it as a label, so when installations share
-- a cluster (staging and production), each one's cleanup deletes only its own namespaces that no run
-- knows.
CREATE TABLE installation (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  only_one boolean NOT NULL DEFAULT true UNIQUE CHECK (only_one),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;
-- The platform reads it and never changes it (0006's default privileges gave it more).
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON installation FROM codexk8s_platform;
