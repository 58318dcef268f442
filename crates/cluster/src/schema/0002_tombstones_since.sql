-- weir cluster mode, schema version 2: when a compacted chunk's tombstones were first
-- cleaned, in milliseconds since the epoch (the broker's clock, as the local engine's
-- cleaner counts delete.retention.ms). NULL for a chunk that holds no tombstone or was
-- never cleaned. A compaction carries it from the chunks it replaces to their copies, so
-- rewriting a chunk never restarts the clock of its tombstones.
ALTER TABLE chunks ADD COLUMN tombstones_since_ms bigint;
