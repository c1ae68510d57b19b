-- Up Migration

-- Each run's row keeps the version of its run stream it reflects, so a fold is monotonic: an older
-- event (a parked JobStarted retried after RunSucceeded) fills in what the row lacks but never moves
-- the run back. Rows from before this column count as version 0; a rebuild sets every version.
ALTER TABLE agent_runs ADD COLUMN version bigint NOT NULL DEFAULT 0;
