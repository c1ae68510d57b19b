-- Up Migration

-- Where each projection stands. Written in the same transaction as its read-model rows, so a
-- crash replays and never skips or applies twice. generation changes when a rebuild swaps tables in.
CREATE TABLE projection_checkpoints (
  name text PRIMARY KEY,
  epoch integer NOT NULL DEFAULT 0,
  tx_id xid8 NOT NULL DEFAULT '0',
  position bigint NOT NULL DEFAULT 0,
  generation integer NOT NULL DEFAULT 1,
  state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'stopped')),
  error text,
  error_event_id uuid,
  holder text,
  events_applied bigint NOT NULL DEFAULT 0,
  last_event_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Events a dead-letter projection could not apply: parked with their error, replayed by
-- `codex-k8s projections retry <name>` after a fix.
CREATE TABLE projection_dead_letters (
  projection text NOT NULL,
  event_id uuid NOT NULL,
  epoch integer NOT NULL,
  tx_id xid8 NOT NULL,
  position bigint NOT NULL,
  event_type text NOT NULL,
  error text NOT NULL,
  parked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (projection, event_id)
);

-- Read models. Only projections write them; staff queries read them on the replicas.
CREATE TABLE users (
  id uuid PRIMARY KEY,
  email_hash text NOT NULL UNIQUE,
  github_login text,
  platform_role text CHECK (platform_role IN ('owner', 'admin')),
  learning_mode boolean,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_github_login ON users (lower(github_login)) WHERE github_login IS NOT NULL;

CREATE TABLE projects (
  id uuid PRIMARY KEY,
  key text NOT NULL UNIQUE,
  name text NOT NULL,
  learning_mode boolean,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

CREATE TABLE project_members (
  project_id uuid NOT NULL,
  user_id uuid NOT NULL,
  role text NOT NULL CHECK (role IN ('read', 'read_write', 'admin')),
  learning_mode boolean,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_by_user ON project_members (user_id);

-- No plaintext token: has_token and the key id that encrypted it, nothing more.
CREATE TABLE repositories (
  id uuid PRIMARY KEY,
  project_id uuid NOT NULL,
  provider text NOT NULL CHECK (provider IN ('github')),
  owner text NOT NULL,
  name text NOT NULL,
  has_token boolean NOT NULL,
  token_key_id text,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);
CREATE UNIQUE INDEX repositories_by_full_name ON repositories (provider, lower(owner), lower(name));
CREATE INDEX repositories_by_project ON repositories (project_id);

CREATE TABLE agent_runs (
  id uuid PRIMARY KEY,
  correlation_id text NOT NULL UNIQUE,
  project_id uuid NOT NULL,
  agent text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed', 'canceled')),
  run_payload jsonb NOT NULL,
  learning_mode boolean NOT NULL,
  slot integer,
  namespace text,
  job text,
  reason text,
  created_at timestamptz NOT NULL,
  scheduled_at timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz NOT NULL
);
-- Staff queries: a project's runs by status, newest first; the active runs of an issue or PR.
CREATE INDEX agent_runs_by_project_status ON agent_runs (project_id, status, created_at DESC);
CREATE INDEX agent_runs_by_project_created ON agent_runs (project_id, created_at DESC);
CREATE INDEX agent_runs_by_subject ON agent_runs ((run_payload->>'repository'), ((run_payload->'subject'->>'number')::int))
  WHERE status IN ('pending', 'scheduled', 'running');

-- Runs per project and status, for dashboards without counting agent_runs.
CREATE TABLE project_run_counts (
  project_id uuid NOT NULL,
  status text NOT NULL,
  runs bigint NOT NULL, -- no CHECK (runs >= 0): an upsert checks the proposed row, whose delta may be negative
  PRIMARY KEY (project_id, status)
);

CREATE TABLE slots (
  project_id uuid NOT NULL,
  slot integer NOT NULL,
  run_id uuid,
  lease_expires_at timestamptz,
  updated_at timestamptz NOT NULL,
  PRIMARY KEY (project_id, slot)
);

CREATE TABLE learning_feedback (
  id uuid PRIMARY KEY,
  run_id uuid NOT NULL,
  project_id uuid NOT NULL,
  kind text NOT NULL,
  subject text,
  explanation text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX learning_feedback_by_run ON learning_feedback (run_id, created_at);
