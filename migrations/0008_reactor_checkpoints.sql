-- Up Migration

-- Where each reactor stands in the log. A reactor calls the outside world (Kubernetes, GitHub) and
-- records what happened as new events; it moves its checkpoint after an event's reaction is
-- recorded, so a crash replays the event (at least once) and the reaction must be idempotent.
CREATE TABLE reactor_checkpoints (
  name text PRIMARY KEY,
  epoch integer NOT NULL DEFAULT 0,
  tx_id xid8 NOT NULL DEFAULT '0',
  position bigint NOT NULL DEFAULT 0,
  holder text,
  reactions bigint NOT NULL DEFAULT 0,
  last_error text,
  updated_at timestamptz NOT NULL DEFAULT now()
);
