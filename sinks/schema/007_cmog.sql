-- Contract v1.1: the CMOG's own records (cmog.listed, cmog.reviewed, cmog.action.set, cmog.action.updated)
-- as columns of events, and alerts' reviewed_at. Refs are keyed (HMAC) like identifiers; no free text.
ALTER TABLE {database}.events
    ADD COLUMN IF NOT EXISTS listing_reason LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS alert_ids Array(String),
    ADD COLUMN IF NOT EXISTS meeting_ref Nullable(String),
    ADD COLUMN IF NOT EXISTS decision LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS review_risk LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS action_ref Nullable(String),
    ADD COLUMN IF NOT EXISTS owner_agency LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS due_at Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS action_kind LowCardinality(Nullable(String)),
    ADD COLUMN IF NOT EXISTS action_status LowCardinality(Nullable(String))
;
-- Null until a cmog.reviewed names the alert (report/measures.py derives "reviewed" from events, so the
-- boards hold whether or not the core stamps this column).
ALTER TABLE {database}.alerts ADD COLUMN IF NOT EXISTS reviewed_at Nullable(DateTime64(3, 'UTC'))
;
ALTER TABLE {database}.alert_changes ADD COLUMN IF NOT EXISTS reviewed_at Nullable(DateTime64(3, 'UTC'))
;
-- The view names its columns, so it is recreated to carry reviewed_at into the history.
DROP VIEW IF EXISTS {database}.alert_changes_mv
;
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.alert_changes_mv TO {database}.alert_changes AS
SELECT alert_id, rule, subject_kind, subject, status, opened_at, resolved_at, evidence, summary, changed_at,
       reviewed_at
FROM {database}.alerts
