-- Up Migration

-- The staff API's reads. After upgrading an installation that has events already, rebuild the
-- projections whose new columns fill from old events: `projections rebuild users|projects|repositories`.

-- GitHub logins change and get reused: only the numeric id identifies an account.
DROP INDEX users_github_login;
ALTER TABLE users ADD COLUMN github_user_id bigint;
CREATE INDEX users_by_github_login ON users (lower(github_login));
CREATE INDEX users_by_created ON users (created_at, id);

ALTER TABLE projects ADD COLUMN slots integer;
CREATE INDEX projects_by_created ON projects (created_at, id);

ALTER TABLE repositories ADD COLUMN github_repository_id bigint;
ALTER TABLE repositories ADD COLUMN services_yaml_path text NOT NULL DEFAULT 'services.yaml';
-- A rename or a transfer can give a connected repository a name another one had: names are not unique.
DROP INDEX repositories_by_full_name;
CREATE INDEX repositories_by_full_name ON repositories (provider, lower(owner), lower(name));

-- Run lists page newest first by (created_at, id), all projects or one, so a page is an index range.
CREATE INDEX agent_runs_by_created ON agent_runs (created_at DESC, id DESC);
DROP INDEX agent_runs_by_project_created;
CREATE INDEX agent_runs_by_project_created ON agent_runs (project_id, created_at DESC, id DESC);
DROP INDEX agent_runs_by_project_status;
CREATE INDEX agent_runs_by_project_status ON agent_runs (project_id, status, created_at DESC, id DESC);
