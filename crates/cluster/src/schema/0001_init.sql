-- weir cluster mode, schema version 1. Applied once by migrate.rs under an advisory lock.
-- All times are PostgreSQL's now(): one clock for every broker's leases.
--
-- Choices worth knowing, and why:
-- * cluster.catalog is nullable: the catalog document is written by the first broker
--   that opens it (PgCatalog), which knows the Catalog type; SQL here does not.
-- * cluster.cluster_id is made here, in Kafka's form (a random UUID in URL-safe base64
--   without padding, 22 characters), so every broker reads the same one.
-- * brokers.node_id has CHECK (node_id >= 0): Kafka's node ids are never negative.

CREATE TABLE cluster (
  singleton bool PRIMARY KEY DEFAULT true CHECK (singleton),
  cluster_id text NOT NULL,
  generation bigint NOT NULL DEFAULT 0,          -- bumped on every membership change
  catalog_version bigint NOT NULL DEFAULT 0,
  catalog jsonb                                  -- Catalog as JSON; NULL until first opened
);
INSERT INTO cluster (cluster_id)
  VALUES (translate(rtrim(encode(uuid_send(gen_random_uuid()), 'base64'), '='), '+/', '-_'));

CREATE TABLE brokers (
  node_id int PRIMARY KEY CHECK (node_id >= 0),
  incarnation uuid NOT NULL,                     -- new on every start: tells a restart apart
  endpoints jsonb NOT NULL,                      -- listener name -> {host, port}
  started_at timestamptz NOT NULL DEFAULT now(),
  lease_expires_at timestamptz NOT NULL
);

CREATE TABLE leases (
  name text PRIMARY KEY,                         -- 'coord/__consumer_offsets/17', 'janitor'
  owner_node int,
  owner_incarnation uuid,
  epoch bigint NOT NULL DEFAULT 0,
  expires_at timestamptz NOT NULL
);

CREATE TABLE partitions (
  partition_id bigserial PRIMARY KEY,
  topic_id uuid NOT NULL,
  partition int NOT NULL,
  next_offset bigint NOT NULL DEFAULT 0,         -- = high watermark
  log_start_offset bigint NOT NULL DEFAULT 0,
  first_unstable_offset bigint,                  -- LSO = coalesce(first_unstable_offset, next_offset)
  size_bytes bigint NOT NULL DEFAULT 0,
  clean_through bigint NOT NULL DEFAULT 0,
  deleted_at timestamptz,
  UNIQUE (topic_id, partition)
);

CREATE SEQUENCE object_ids;
CREATE TABLE objects (
  object_id bigint PRIMARY KEY,
  key text NOT NULL,
  size_bytes bigint NOT NULL,
  state smallint NOT NULL,                       -- 0 pending (PUT may exist), 1 live, 2 deleting
  writer_node int,
  created_at timestamptz NOT NULL DEFAULT now(),
  delete_after timestamptz
);
CREATE INDEX objects_gc ON objects (state, delete_after);

CREATE TABLE chunks (
  partition_id bigint NOT NULL REFERENCES partitions,
  base_offset bigint NOT NULL,
  last_offset bigint NOT NULL,
  object_id bigint NOT NULL REFERENCES objects,
  position bigint NOT NULL,
  size_bytes int NOT NULL,
  batch_count int NOT NULL,
  max_timestamp bigint NOT NULL,
  offsets_in_object bool NOT NULL DEFAULT false, -- true for compactor output
  PRIMARY KEY (partition_id, base_offset)
);
CREATE INDEX chunks_by_object ON chunks (object_id);

CREATE TABLE producer_state (
  partition_id bigint NOT NULL,
  producer_id bigint NOT NULL,
  producer_epoch smallint NOT NULL,
  recent jsonb NOT NULL,                         -- the last batches' (first_seq, last_seq, base_offset)
  coordinator_epoch int NOT NULL,
  txn_first_offset bigint,
  last_timestamp bigint NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (partition_id, producer_id)
);

CREATE TABLE aborted_txns (
  partition_id bigint NOT NULL,
  producer_id bigint NOT NULL,
  first_offset bigint NOT NULL,
  last_offset bigint NOT NULL,
  PRIMARY KEY (partition_id, last_offset)
);

CREATE SEQUENCE producer_id_blocks MINVALUE 0 START 0;  -- block n = ids [n*1000, n*1000+999]

CREATE TABLE compaction_jobs (
  partition_id bigint PRIMARY KEY,
  due_at timestamptz NOT NULL,
  claimed_by int,
  claim_expires_at timestamptz
);
