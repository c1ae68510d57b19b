-- Up Migration

-- The event log: the single source of truth. Readers order and checkpoint by (epoch, tx_id, position):
-- tx_id is the writing transaction's id, and a reader takes only rows whose transaction is older
-- than every transaction still running (pg_snapshot_xmin), so a row that commits later can never
-- land behind a reader's checkpoint. epoch leads the order so that it stays valid after a logical
-- restore into a cluster whose transaction ids start again lower (see flow_events_bump_epoch).
CREATE TABLE flow_events_epoch (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  epoch integer NOT NULL
);
INSERT INTO flow_events_epoch (epoch) VALUES (1);

CREATE TABLE flow_events (
  epoch integer NOT NULL DEFAULT 1,
  tx_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
  position bigint GENERATED ALWAYS AS IDENTITY,
  id uuid NOT NULL,
  stream_id text NOT NULL CHECK (stream_id ~ '^[a-z][a-z0-9_]*-.+$' AND length(stream_id) <= 512),
  stream_position bigint NOT NULL CHECK (stream_position > 0),
  correlation_id text NOT NULL CHECK (length(correlation_id) <= 256),
  actor_type text NOT NULL CHECK (actor_type IN ('human', 'agent', 'system')),
  actor_id text NOT NULL CHECK (length(actor_id) <= 256),
  event_type text NOT NULL CHECK (length(event_type) <= 128),
  schema_version integer NOT NULL DEFAULT 1,
  payload jsonb NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id),
  -- Optimistic concurrency: two writers of the same stream version cannot both commit.
  UNIQUE (stream_id, stream_position)
);
CREATE INDEX flow_events_global_order ON flow_events (epoch, tx_id, position);
CREATE INDEX flow_events_correlation ON flow_events (correlation_id);

-- Append-only, enforced here rather than trusted to every caller.
CREATE FUNCTION flow_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'flow_events is append-only: % is not allowed', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER flow_events_no_update_delete BEFORE UPDATE OR DELETE ON flow_events
  FOR EACH ROW EXECUTE FUNCTION flow_events_refuse_change();
CREATE TRIGGER flow_events_no_truncate BEFORE TRUNCATE ON flow_events
  FOR EACH STATEMENT EXECUTE FUNCTION flow_events_refuse_change();

-- After a logical restore (pg_dump/pg_restore into another cluster) transaction ids start again
-- below the stored ones. Moving to a new epoch keeps every new event after every restored one.
-- `codex-k8s migrate` calls it when it sees stored tx_ids ahead of the cluster's.
CREATE FUNCTION flow_events_bump_epoch() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE next_epoch integer;
BEGIN
  UPDATE flow_events_epoch SET epoch = epoch + 1 RETURNING epoch INTO next_epoch;
  EXECUTE format('ALTER TABLE flow_events ALTER COLUMN epoch SET DEFAULT %s', next_epoch);
  RETURN next_epoch;
END $$;

-- Any long writing transaction holds every reader of the log back (see above), so the role the
-- platform runs as may not keep one open. Migrations run as that role.
DO $$
BEGIN
  EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', current_user, '30s');
  EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', current_user, '15s');
END $$;
