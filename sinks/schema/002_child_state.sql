-- Latest state per missing episode and per child, as emitted by the correlation engine.
-- Read with FINAL (or argMax(..., changed_at)); changed_at orders versions of one key.
CREATE TABLE IF NOT EXISTS {database}.episodes
(
    child_key String,
    episode_ref String,
    classification LowCardinality(Nullable(String)),
    setting LowCardinality(Nullable(String)),
    police_risk LowCardinality(Nullable(String)),
    started_at Nullable(DateTime64(3, 'UTC')),
    ended_at Nullable(DateTime64(3, 'UTC')),
    last_seen_place Nullable(String),
    found_place Nullable(String),
    interview LowCardinality(String),
    interview_at Nullable(DateTime64(3, 'UTC')),
    data_quality Array(LowCardinality(String)),
    changed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY (child_key, episode_ref)
TTL toDateTime(changed_at) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
;
CREATE TABLE IF NOT EXISTS {database}.child_state
(
    child_key String,
    merged_keys Array(String),
    birth_month LowCardinality(Nullable(String)),
    age_band LowCardinality(Nullable(String)),
    sex LowCardinality(Nullable(String)),
    looked_after Bool,
    learning_disability Bool,
    cse_level LowCardinality(String),
    cp_plan_active Bool,
    cp_category LowCardinality(Nullable(String)),
    missing_now Bool,
    episodes_30d UInt32,
    episodes_90d UInt32,
    last_interview_at Nullable(DateTime64(3, 'UTC')),
    da_incidents_12m UInt32,
    agencies Array(LowCardinality(String)),
    open_alerts Array(String),
    last_event_at Nullable(DateTime64(3, 'UTC')),
    changed_at DateTime64(3, 'UTC'),
    -- merged into another child key: dashboards filter `NOT retired`
    retired Bool
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY child_key
TTL toDateTime(changed_at) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
