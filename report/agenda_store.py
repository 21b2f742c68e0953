"""The agenda's rows from the store: open child alerts with their reviews, and the CMOG's records under
canonical keys, both read with report/measures.py's fragments; report/agenda.py ranks them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from report import measures
from report.agenda import AlertRow, CmogRecord

AS_OF = "{as_of:DateTime64(3, 'UTC')}"

OPEN_CHILD_ALERTS = f"""
    SELECT a.alert_id, a.rule, a.subject, a.status, a.opened_at, a.resolved_at, r.reviewed_at
    FROM alerts AS a FINAL
    LEFT JOIN {measures.alert_reviews(AS_OF)} AS r ON r.alert_id = a.alert_id
    WHERE a.subject_kind = 'child' AND {measures.alert_open_at(AS_OF)}
    ORDER BY a.alert_id"""

CMOG_RECORDS = f"""
    SELECT event_id, event_type, occurred_at, child_key, decision, alert_ids, action_ref, owner_agency, due_at,
           action_kind, action_status
    FROM {measures.cmog_records(AS_OF)}
    ORDER BY occurred_at, event_id"""


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rows(client: Client, sql: str, as_of: datetime) -> list[tuple[Any, ...]]:
    result = client.query(sql, parameters={"as_of": as_of.astimezone(UTC)}, settings={"join_use_nulls": 1})
    return [tuple(row) for row in result.result_rows]


def load(client: Client, as_of: datetime) -> tuple[list[AlertRow], list[CmogRecord]]:
    """(open child alerts, CMOG records) as of `as_of`, from the client's database."""
    alerts = [
        AlertRow(alert_id, rule, subject, status, _utc(opened_at) or as_of, _utc(resolved_at), _utc(reviewed_at))
        for alert_id, rule, subject, status, opened_at, resolved_at, reviewed_at in _rows(client, OPEN_CHILD_ALERTS,
                                                                                          as_of)
    ]
    records = [
        CmogRecord(event_id, event_type, _utc(occurred_at) or as_of, child_key, decision, tuple(alert_ids or ()),
                   action_ref, owner_agency, _utc(due_at), action_kind, action_status)
        for (event_id, event_type, occurred_at, child_key, decision, alert_ids, action_ref, owner_agency, due_at,
             action_kind, action_status) in _rows(client, CMOG_RECORDS, as_of)
    ]
    return alerts, records
