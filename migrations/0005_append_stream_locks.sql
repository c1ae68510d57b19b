-- Up Migration

-- A guard is only as strong as its lock. Until now an append checked each stream's version under
-- its statement's snapshot, which cannot see a concurrent, not yet committed write: a delivery that
-- guarded the project stream could commit beside the MemberRoleChanged that demoted its sender.
-- Now the append first takes a transaction-scoped advisory lock per stream: exclusive for a stream
-- it writes, shared for a stream it only guards (guards exclude writers, not each other). Locks are
-- taken in one order (by key), so two appends cannot deadlock on each other's streams. The version
-- check is a second statement: in READ COMMITTED each statement of a plpgsql function takes a new
-- snapshot, so it sees what committed while the append waited for its locks.
-- Taking the locks writes nothing, so the insert is still the transaction's first write (tx_id order).
-- It answers with one row per stream written (its last event) instead of one per event.
DROP FUNCTION flow_events_append(text[], bigint[], text[], text[], text[], jsonb, int[], int[], uuid[], text[], int[], jsonb);

CREATE FUNCTION flow_events_stream_lock_key(stream text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT hashtextextended('codexk8s.stream.' || stream, 0) $$;

CREATE FUNCTION flow_events_append(
  p_streams text[], p_expected bigint[], p_correlation_ids text[], p_actor_types text[], p_actor_ids text[],
  p_metadata jsonb,
  p_stream_ord int[], p_n int[], p_ids uuid[], p_types text[], p_schema_versions int[], p_payloads jsonb)
RETURNS TABLE (epoch integer, tx_id text, "position" text, stream_id text, stream_position text)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off AS $$
BEGIN
  PERFORM CASE WHEN s.written THEN pg_advisory_xact_lock(s.key) ELSE pg_advisory_xact_lock_shared(s.key) END
     FROM (SELECT flow_events_stream_lock_key(u.stream_id) AS key, u.ord = ANY(p_stream_ord) AS written
             FROM unnest(p_streams) WITH ORDINALITY AS u(stream_id, ord)
            ORDER BY 1) s;

  RETURN QUERY
  WITH streams AS MATERIALIZED (
    SELECT s.ord, s.stream_id, s.correlation_id, s.actor_type, s.actor_id, s.metadata,
           CASE WHEN s.expected IS NULL OR s.expected = v.current THEN v.current
                ELSE flow_events_version_conflict(s.stream_id, s.expected, v.current) END AS current
      FROM ROWS FROM (unnest(p_streams, p_expected, p_correlation_ids, p_actor_types, p_actor_ids), jsonb_array_elements(p_metadata))
           WITH ORDINALITY AS s(stream_id, expected, correlation_id, actor_type, actor_id, metadata, ord)
     CROSS JOIN LATERAL (SELECT COALESCE(max(f.stream_position), 0) AS current FROM flow_events f WHERE f.stream_id = s.stream_id) v
  ), inserted AS (
    INSERT INTO flow_events (id, stream_id, stream_position, correlation_id, actor_type, actor_id,
                             event_type, schema_version, payload, metadata)
    SELECT e.id, s.stream_id, s.current + e.n, s.correlation_id, s.actor_type, s.actor_id,
           e.event_type, e.schema_version, e.payload, s.metadata
      FROM ROWS FROM (unnest(p_stream_ord, p_n, p_ids, p_types, p_schema_versions), jsonb_array_elements(p_payloads))
           WITH ORDINALITY AS e(stream_ord, n, id, event_type, schema_version, payload, ord)
      JOIN streams s ON s.ord = e.stream_ord
     -- Reads every stream before the first insert, so a guard-only stream is checked too.
     WHERE (SELECT count(*) FROM streams) > 0
     ORDER BY e.ord
    RETURNING flow_events.epoch, flow_events.tx_id, flow_events.position, flow_events.stream_id, flow_events.stream_position)
  -- One row per stream (its last event), not one per event: the caller needs each stream's version
  -- and the append's last position, and a batch of 100 events need not come back as 100 rows.
  SELECT min(i.epoch), min(i.tx_id)::text, max(i.position)::text, i.stream_id, max(i.stream_position)::text
    FROM inserted i GROUP BY i.stream_id ORDER BY max(i.position);
END $$;
