-- Up Migration

-- This installation's identity, made once. The Kubernetes objects of its runs carry it as a label,
-- so when installations share a cluster (staging and production), each one's cleanup deletes only
-- its own namespaces that no run knows, and its outcome watch leaves the others' Jobs alone.
CREATE TABLE installation (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  only_one boolean NOT NULL DEFAULT true UNIQUE CHECK (only_one),
  created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;
