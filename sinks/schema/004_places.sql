-- Child-place links (last seen, found, named in an interview) and the per-place daily rollup.
CREATE TABLE IF NOT EXISTS {database}.place_links
(
    place_key String,
    place_kind LowCardinality(String),
    child_key String,
    event_id String,
    role LowCardinality(String),
    occurred_at DateTime64(3, 'UTC'),
    child_cse_level LowCardinality(String),
    postcode_sector LowCardinality(Nullable(String)),
    ward_code LowCardinality(Nullable(String)),
    ward_name LowCardinality(Nullable(String)),
    lat Nullable(Float64),
    lon Nullable(Float64),
    premises_category LowCardinality(Nullable(String)),
    premises_name Nullable(String),
    premises_ref Nullable(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (place_key, event_id, child_key)
TTL toDateTime(occurred_at) + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
;
-- Per place per day ({time_zone}). Children and events are kept as sets, not counters, so a
-- re-sent batch of links merges into the same sets and can never be counted twice; a window of
-- days is one more set union:
--   SELECT place_key, length(groupUniqArrayArray(children)) AS children
--   FROM places WHERE day >= today() - 28 GROUP BY place_key
-- One day's figures: SELECT place_key, day, children_count, event_count, lat, lon FROM places FINAL
-- lat/lon: the centre of the links' bounding box (points are already rounded to ~100 m).
CREATE TABLE IF NOT EXISTS {database}.places
(
    place_kind LowCardinality(String),
    place_key String,
    day Date,
    ward_code SimpleAggregateFunction(max, LowCardinality(Nullable(String))),
    ward_name SimpleAggregateFunction(max, LowCardinality(Nullable(String))),
    postcode_sector SimpleAggregateFunction(max, LowCardinality(Nullable(String))),
    premises_category SimpleAggregateFunction(max, LowCardinality(Nullable(String))),
    premises_name SimpleAggregateFunction(max, Nullable(String)),
    lat_min SimpleAggregateFunction(min, Nullable(Float64)),
    lat_max SimpleAggregateFunction(max, Nullable(Float64)),
    lon_min SimpleAggregateFunction(min, Nullable(Float64)),
    lon_max SimpleAggregateFunction(max, Nullable(Float64)),
    children SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    events SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    -- children at CSE risk medium/high when linked (the linked_children rule's concern)
    children_at_cse_risk SimpleAggregateFunction(groupUniqArrayArray, Array(String)),
    lat Nullable(Float64) ALIAS (lat_min + lat_max) / 2,
    lon Nullable(Float64) ALIAS (lon_min + lon_max) / 2,
    children_count UInt64 ALIAS length(children),
    event_count UInt64 ALIAS length(events)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (place_kind, place_key, day)
TTL day + INTERVAL {events_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.places_mv TO {database}.places AS
SELECT
    place_kind,
    place_key,
    toDate(occurred_at, '{time_zone}') AS day,
    max(ward_code) AS ward_code,
    max(ward_name) AS ward_name,
    max(postcode_sector) AS postcode_sector,
    max(premises_category) AS premises_category,
    max(premises_name) AS premises_name,
    min(lat) AS lat_min,
    max(lat) AS lat_max,
    min(lon) AS lon_min,
    max(lon) AS lon_max,
    groupUniqArray(child_key) AS children,
    groupUniqArray(event_id) AS events,
    groupUniqArrayIf(child_key, child_cse_level IN ('medium', 'high')) AS children_at_cse_risk
FROM {database}.place_links
GROUP BY place_kind, place_key, day
