-- Alert lifecycle: one row per alert_id after FINAL (its latest status), and every change in
-- alert_changes. Dashboards hide status = 'withdrawn' (a late event showed it was never due).
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    alert_id String,
    rule LowCardinality(String),
    subject_kind LowCardinality(String),
    subject String,
    status LowCardinality(String),
    opened_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    evidence Array(String),
    summary String,
    changed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(changed_at)
ORDER BY alert_id
TTL toDateTime(changed_at) + INTERVAL {alerts_ttl_days} DAY
SETTINGS non_replicated_deduplication_window = 1000
;
-- History: one row per (alert, change); a re-sent version collapses on FINAL.
CREATE TABLE IF NOT EXISTS {database}.alert_changes
(
    alert_id String,
    rule LowCardinality(String),
    subject_kind LowCardinality(String),
    subject String,
    status LowCardinality(String),
    opened_at DateTime64(3, 'UTC'),
    resolved_at Nullable(DateTime64(3, 'UTC')),
    evidence Array(String),
    summary String,
    changed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (alert_id, changed_at, status)
TTL toDateTime(changed_at) + INTERVAL {alerts_ttl_days} DAY
-- The target of a materialized view deduplicates a retried block only with its own window.
SETTINGS non_replicated_deduplication_window = 1000
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.alert_changes_mv TO {database}.alert_changes AS
SELECT alert_id, rule, subject_kind, subject, status, opened_at, resolved_at, evidence, summary, changed_at
FROM {database}.alerts
