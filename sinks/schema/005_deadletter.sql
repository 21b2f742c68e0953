-- Rejected inbound messages, one row per error, for counts by agency, type and reason.
-- Never the message itself: it may hold raw identifiers (it stays on the 3-day dead-letter topic).
-- (topic, partition, offset) names the inbound message, so a re-sent dead letter collapses.
CREATE TABLE IF NOT EXISTS {database}.deadletter
(
    day Date,
    hour DateTime('UTC'),
    received_at DateTime64(3, 'UTC'),
    agency LowCardinality(Nullable(String)),
    event_type LowCardinality(Nullable(String)),
    error_index UInt16,
    error_count UInt16,
    error_loc LowCardinality(String),
    error_msg LowCardinality(String),
    topic LowCardinality(String),
    partition UInt32,
    offset UInt64,
    size_bytes UInt32
)
ENGINE = ReplacingMergeTree
-- No partitioning: received_at may differ between two copies of one dead letter, and a
-- ReplacingMergeTree only collapses rows within one partition. The table is small.
ORDER BY (topic, partition, offset, error_index)
TTL toDateTime(received_at) + INTERVAL {deadletter_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
