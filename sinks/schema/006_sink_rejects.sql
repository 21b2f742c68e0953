-- Rows the sink could not write (sinks/clickhouse.py BatchWriter): a value its column cannot take, or
-- retries exhausted. Never the row's values (they may hold partner text): the table, the error's class
-- and a scrubbed message, and where the message is on Kafka, so it can be read again from the topic.
-- One row per (table, message): a reject re-written after a restart collapses on FINAL.
-- Rows from no Kafka message (tests, `sgi bench`) have topic '' and collapse per table.
CREATE TABLE IF NOT EXISTS {database}.sink_rejects
(
    rejected_at DateTime64(3, 'UTC'),
    `table` LowCardinality(String),
    error_class LowCardinality(String),
    error_message String,
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64
)
ENGINE = ReplacingMergeTree(rejected_at)
ORDER BY (`table`, topic, partition, offset)
TTL toDateTime(rejected_at) + INTERVAL {deadletter_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
