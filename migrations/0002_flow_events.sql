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
  -- category-id; the full pattern is checked by the event store (a regex here costs ~10% of append throughput)
  stream_id text COLLATE "C" NOT NULL CHECK (strpos(stream_id, '-') > 1 AND length(stream_id) <= 512),
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

-- The append statement calls this for a stream whose version is not the expected one: raising
-- aborts the whole statement, so an append writes all of its streams or none.
CREATE FUNCTION flow_events_version_conflict(stream text, expected bigint, actual bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'stream % is at version %, expected %', stream, actual, expected
    USING ERRCODE = 'CK409', DETAIL = json_build_object('stream', stream, 'expected', expected, 'actual', actual)::text;
END $$;

-- The append: one statement for any number of streams and events. Each event's version is its
-- stream's current version plus its place in the append; a stream whose version is not the
-- expected one (NULL: any) raises CK409 and so aborts the whole statement: all streams or none.
-- The arrays come one entry per stream (p_streams, p_expected) and one per event (the rest);
-- the payloads come as one JSON array (one parse, instead of one per element of a jsonb[]); the
-- metadata (causation and request ids) is the append's, shared by its events.
-- A generic plan is forced: the planner's row guesses for unnest($n) make it re-plan every call
-- otherwise, which costs more than the insert itself. Sequential scans are ruled out because that
-- cached plan may have been made while the log was small (or freshly analysed empty), and a seq
-- scan for a stream's version would then stay in it as the log grows.
CREATE FUNCTION flow_events_append(
  p_streams text[], p_expected bigint[], p_stream_ord int[], p_n int[], p_ids uuid[], p_types text[],
  p_schema_versions int[], p_payloads jsonb, p_metadata jsonb,
  p_correlation_id text, p_actor_type text, p_actor_id text)
RETURNS TABLE (epoch integer, tx_id text, "position" text, stream_id text, stream_position text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
BEGIN
  RETURN QUERY
  -- MATERIALIZED: each stream's version is looked up once, not once per event.
  WITH streams AS MATERIALIZED (
    SELECT s.ord, s.stream_id, s.expected,
           (SELECT COALESCE(max(f.stream_position), 0) FROM flow_events f WHERE f.stream_id = s.stream_id) AS current
      FROM unnest(p_streams, p_expected) WITH ORDINALITY AS s(stream_id, expected, ord)
  ), inserted AS (
    INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id,
                             event_type, schema_version, payload, metadata)
    SELECT e.id, s.stream_id,
           CASE WHEN s.expected IS NULL OR s.expected = s.current THEN s.current + e.n
                ELSE flow_events_version_conflict(s.stream_id, s.expected, s.current) END,
           p_correlation_id, p_actor_type, p_actor_id, e.event_type, e.schema_version, e.payload, p_metadata
      FROM ROWS FROM (unnest(p_stream_ord, p_n, p_ids, p_types, p_schema_versions), jsonb_array_elements(p_payloads))
           WITH ORDINALITY AS e(stream_ord, n, id, event_type, schema_version, payload, ord)
      JOIN streams s ON s.ord = e.stream_ord
     ORDER BY e.ord
    RETURNING flow_events.epoch, flow_events.tx_id, flow_events.position, flow_events.stream_id, flow_events.stream_position)
  SELECT i.epoch, i.tx_id::text, i.position::text, i.stream_id, i.stream_position::text FROM inserted i ORDER BY i.position;
END $$;

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
