-- One row per accepted event (topic safeguarding.events.v1), pseudonymous keys only.
-- A re-sent event collapses on event_id: read with FINAL (or argMax(..., ingested_at)).
-- child_key is the event's canonical child key: today the first of child_keys (the Fact's topic
-- key); child_keys holds every key the event named, e.g. both sides of an identity.linked.
-- TTL: {events_ttl_days} days from occurred_at (sinks/config.py RetentionSettings.events_days).
CREATE TABLE IF NOT EXISTS {database}.events
(
    event_id String,
    event_type LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    recorded_at Nullable(DateTime64(3, 'UTC')),
    agency LowCardinality(String),
    system LowCardinality(Nullable(String)),
    record_key Nullable(String),
    child_key String,
    child_keys Array(String),
    birth_month LowCardinality(Nullable(String)),
    -- whole years at occurred_at, counting the birthday as the first of the birth month
    age_at_event Nullable(UInt8),
    sex LowCardinality(Nullable(String)),
    looked_after Nullable(Bool),
    learning_disability Nullable(Bool),
    postcode_sector LowCardinality(Nullable(String)),
    ward_code LowCardinality(Nullable(String)),
    ward_name LowCardinality(Nullable(String)),
    lat Nullable(Float64),
    lon Nullable(Float64),
    premises_category LowCardinality(Nullable(String)),
    premises_name Nullable(String),
    premises_ref Nullable(String),
    episode_ref Nullable(String),
    classification LowCardinality(Nullable(String)),
    setting LowCardinality(Nullable(String)),
    police_risk LowCardinality(Nullable(String)),
    disclosures Array(LowCardinality(String)),
    named_place_count UInt16,
    cse_level LowCardinality(Nullable(String)),
    cse_tool LowCardinality(Nullable(String)),
    cse_indicators Array(String),
    incident_ref Nullable(String),
    child_present Nullable(Bool),
    marac_referred Nullable(Bool),
    dash_score Nullable(UInt8),
    dash_risk LowCardinality(Nullable(String)),
    encompass_notified_at Nullable(DateTime64(3, 'UTC')),
    plan_ref Nullable(String),
    cp_category LowCardinality(Nullable(String)),
    previous_plans Nullable(UInt16),
    -- Filled by ClickHouse, never by the sink: when the row arrived, and how late that was.
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC'),
    recording_lag_seconds Nullable(Int64) DEFAULT dateDiff('second', occurred_at, recorded_at),
    lateness_seconds Int64 DEFAULT dateDiff('second', occurred_at, ingested_at),
    INDEX child_key_idx child_key TYPE bloom_filter GRANULARITY 4,
    INDEX occurred_at_idx occurred_at TYPE minmax GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
-- occurred_at is fixed per event_id, so every copy of an event lands in the same partition.
PARTITION BY toYYYYMM(occurred_at)
ORDER BY event_id
TTL toDateTime(occurred_at) + INTERVAL {events_ttl_days} DAY
-- Lets a retried insert with the same insert_deduplication_token be dropped (non-replicated tables).
SETTINGS non_replicated_deduplication_window = 1000
