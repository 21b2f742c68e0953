"""Grafana-managed alerting for the Safeguarding folder, built with grafana-foundation-sdk's alerting
builders (the shapes of Grafana's provisioning HTTP API), plus the conversion to the provisioning *file*
format, which names folders by title and rules by group.

- CMOG chair: new open alerts of the chair-facing rules (RulesConfig.chair_rules), unreviewed only (no
  cmog.reviewed has named them: report/measures.py `alert_unreviewed`), one alert instance
  per rule, so the chair hears once per rule and burst, not once per child.
- Pipeline health: an agency silent for `pipeline_health.agency_silence_hours`, and more than
  `pipeline_health.deadletter_spike_per_hour` dead letters from one agency in an hour.

Alert queries use time macros only: Grafana evaluates rules in the backend, where dashboard variables
and `$__conditionalAll` do not exist. Labels are kept free of `$` (file provisioning expands
environment variables in labels); annotations are templates Grafana renders per alert.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from grafana_foundation_sdk.builders import alerting as sdk
from grafana_foundation_sdk.builders import expr
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import alerting as model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from grafana.panels import (
    DATA_QUALITY_UID,
    DATASOURCE_UID,
    FOLDER_TITLE,
    FOLDER_UID,
    MEETING_UID,
    SQL,
    ClickHouseQuery,
)
from report import measures
from streams.core.config import RulesConfig

CONTACT_POINT = "CMOG chair"
EMAIL_RECEIVER_UID = "sgi-cmog-chair-email"
WEBHOOK_RECEIVER_UID = "sgi-cmog-chair-webhook"
# Contact point settings are read by Grafana with environment variables expanded (file provisioning);
# `sgi grafana push` expands them the same way before it calls the API.
CHAIR_EMAIL = "$CMOG_CHAIR_EMAIL"
WEBHOOK_URL = "$CMOG_WEBHOOK_URL"

CHAIR_GROUP = "CMOG chair"
CHAIR_INTERVAL = timedelta(minutes=1)
# Alerts count as new when their first version reached ClickHouse within this window: a few
# evaluations wide, so an alert the sink wrote a little late is still seen once.
CHAIR_WINDOW = timedelta(minutes=5)
PIPELINE_GROUP = "Pipeline health"
PIPELINE_INTERVAL = timedelta(minutes=5)
# The silence rule looks this far back to find every agency's newest event (at least 2 x the threshold).
SILENCE_LOOKBACK = timedelta(days=7)
DEADLETTER_WINDOW = timedelta(hours=1)

AUDIENCE_CHAIR = "cmog-chair"
AUDIENCE_PIPELINE = "pipeline"


def _expression_datasource() -> dashboard_model.DataSourceRef:
    return dashboard_model.DataSourceRef(type_val="__expr__", uid="__expr__")


def _query(sql: str, window: timedelta) -> sdk.Query:
    """Query A: a table of (label columns..., one number) -- each row becomes one alert instance."""
    return (
        sdk.Query("A")
        .datasource_uid(DATASOURCE_UID)
        .model(SQL(sql, "A"))
        .relative_time_range(model.RelativeTimeRange(from_val=int(window.total_seconds()), to=0))
    )


def _above(threshold: float) -> sdk.Query:
    """Condition C: A > threshold, per instance."""
    evaluator = expr.ExprTypeThresholdConditionsEvaluator().type("gt").params([threshold])
    return (
        sdk.Query("C")
        .datasource_uid("__expr__")
        .model(expr.TypeThreshold().ref_id("C").expression("A").datasource(_expression_datasource())
               .conditions([expr.ExprTypeThresholdConditions().evaluator(evaluator)]))
        .relative_time_range(model.RelativeTimeRange(from_val=0, to=0))
    )


def _rule(uid: str, title: str, group: str, sql: str, window: timedelta, threshold: float) -> sdk.Rule:
    return (
        sdk.Rule(title)
        .uid(uid)
        .org_id(1)
        .folder_uid(FOLDER_UID)
        .rule_group(group)
        .queries([_query(sql, window), _above(threshold)])
        .condition("C")
        .for_val("0s")
        .is_paused(False)
    )


def _sql_list(values: Sequence[str]) -> str:
    return ", ".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" for value in values)


def chair_rule(rules: RulesConfig) -> sdk.Rule | None:
    """New open alerts per chair-facing rule; None when no rule faces the chair."""
    chair = sorted(set(rules.chair_rules))
    if not chair:
        return None
    window = int(CHAIR_WINDOW.total_seconds() // 60)
    sql = f"""
        SELECT rule, count() AS new_alerts
        FROM alerts FINAL
        WHERE status = 'open'
          AND rule IN ({_sql_list(chair)})
          AND {measures.alert_unreviewed("$__toTime")}
          AND alert_id IN (
              SELECT alert_id
              FROM alert_changes
              WHERE alert_id IN (SELECT alert_id FROM alert_changes WHERE $__timeFilter(changed_at))
              GROUP BY alert_id
              HAVING min(changed_at) >= $__fromTime
          )
        GROUP BY rule
        ORDER BY rule
        """
    return (
        _rule("sgi-cmog-new-alerts", "CMOG: new safeguarding alerts", CHAIR_GROUP, sql, CHAIR_WINDOW, 0)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"audience": AUDIENCE_CHAIR, "service": "safeguarding"})
        .annotations({
            "summary": f"New '{{{{ $labels.rule }}}}' safeguarding alert(s) in the last {window} minutes",
            "description": "{{ $values.A.Value }} new open alert(s) of rule {{ $labels.rule }}. Open the CMOG "
                           "meeting list for the children and places concerned (pseudonymous keys).",
            "__dashboardUid__": MEETING_UID,
            "__panelId__": "1",
        })
    )


def agency_silence_rule(rules: RulesConfig) -> sdk.Rule:
    hours = rules.pipeline_health.agency_silence_hours
    lookback = max(SILENCE_LOOKBACK, timedelta(hours=2 * hours))
    sql = """
        SELECT agency, round(dateDiff('second', max(ingested_at), $__toTime) / 3600, 2) AS hours_silent
        FROM events
        WHERE $__timeFilter(ingested_at)
        GROUP BY agency
        ORDER BY agency
        """
    return (
        _rule("sgi-agency-silence", f"Pipeline: agency silent for more than {hours:g} h", PIPELINE_GROUP, sql,
              lookback, hours)
        # No rows at all: nothing arrived from anyone in the look-back, the worst silence of all.
        .no_data_state("Alerting")
        .exec_err_state("Error")
        .labels({"audience": AUDIENCE_PIPELINE, "service": "safeguarding"})
        .annotations({
            "summary": "No events from {{ $labels.agency }} for {{ $values.A.Value }} h",
            "description": f"Nothing from this agency has reached ClickHouse for more than {hours:g} hours "
                           "(pipeline_health.agency_silence_hours). Check the partner feed and the pipeline.",
            "__dashboardUid__": DATA_QUALITY_UID,
            "__panelId__": "8",
        })
    )


def deadletter_spike_rule(rules: RulesConfig) -> sdk.Rule:
    per_hour = rules.pipeline_health.deadletter_spike_per_hour
    sql = """
        SELECT ifNull(agency, '(unknown)') AS agency,
               uniqExact(topic, partition, offset) AS dead_letters
        FROM deadletter FINAL
        WHERE $__timeFilter(received_at)
        GROUP BY agency
        ORDER BY agency
        """
    return (
        _rule("sgi-deadletter-spike", f"Pipeline: more than {per_hour} dead letters an hour", PIPELINE_GROUP, sql,
              DEADLETTER_WINDOW, per_hour)
        .no_data_state("OK")
        .exec_err_state("Error")
        .labels({"audience": AUDIENCE_PIPELINE, "service": "safeguarding"})
        .annotations({
            "summary": "{{ $values.A.Value }} dead letters from {{ $labels.agency }} in the last hour",
            "description": f"More than {per_hour} rejected messages in an hour "
                           "(pipeline_health.deadletter_spike_per_hour): a partner system may be sending a broken "
                           "format. See 'Dead letters by agency and error'.",
            "__dashboardUid__": DATA_QUALITY_UID,
            "__panelId__": "9",
        })
    )


def rule_groups(rules: RulesConfig) -> list[sdk.RuleGroup]:
    groups = []
    chair = chair_rule(rules)
    if chair is not None:
        groups.append(sdk.RuleGroup(CHAIR_GROUP).folder_uid(FOLDER_UID)
                      .interval(int(CHAIR_INTERVAL.total_seconds())).rules([chair]))
    groups.append(
        sdk.RuleGroup(PIPELINE_GROUP).folder_uid(FOLDER_UID).interval(int(PIPELINE_INTERVAL.total_seconds()))
        .rules([agency_silence_rule(rules), deadletter_spike_rule(rules)])
    )
    return groups


def contact_points(webhook: bool = False) -> list[sdk.ContactPoint]:
    """The chair's email, and optionally a webhook (e.g. the team's channel). "New alerts" need no
    resolved message by email; the webhook gets both, for systems that track state. The webhook is
    optional because Grafana refuses to load a webhook receiver with an empty URL."""
    points = [
        sdk.ContactPoint().uid(EMAIL_RECEIVER_UID).name(CONTACT_POINT).type("email")
        .settings({"addresses": CHAIR_EMAIL, "singleEmail": True})
        .disable_resolve_message(True),
    ]
    if webhook:
        points.append(
            sdk.ContactPoint().uid(WEBHOOK_RECEIVER_UID).name(CONTACT_POINT).type("webhook")
            .settings({"url": WEBHOOK_URL, "httpMethod": "POST"})
            .disable_resolve_message(False)
        )
    return points


def notification_policy() -> sdk.NotificationPolicy:
    """Everything in the Safeguarding folder goes to the chair's contact point.

    Chair alerts: one notification per rule (group_by rule), sent 30 s after the first new alert so a
    burst arrives together, updated at most every 5 minutes while new rules join, and never repeated
    within a day (each burst of new alerts fires afresh). Pipeline alerts: per agency, repeated every 4 h
    while the problem lasts."""
    pipeline = (
        sdk.NotificationPolicy()
        .object_matchers([["audience", "=", AUDIENCE_PIPELINE]])
        .group_by(["grafana_folder", "alertname", "agency"])
        .group_wait("1m")
        .group_interval("10m")
        .repeat_interval("4h")
    )
    safeguarding = (
        sdk.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .object_matchers([["grafana_folder", "=", FOLDER_TITLE]])
        .group_by(["grafana_folder", "alertname", "rule"])
        .group_wait("30s")
        .group_interval("5m")
        .repeat_interval("24h")
        .routes([pipeline])
    )
    return (
        sdk.NotificationPolicy()
        .receiver(CONTACT_POINT)
        .group_by(["grafana_folder", "alertname"])
        .group_wait("30s")
        .group_interval("5m")
        .repeat_interval("24h")
        .routes([safeguarding])
    )


# --- API shape (the SDK's) <-> provisioning file shape ---------------------------------------------------


def as_json(builder: Any) -> Any:
    """An SDK object as plain JSON data (what the API takes)."""
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))


def _duration(seconds: int) -> str:
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def rule_to_file(rule: dict[str, Any]) -> dict[str, Any]:
    """An API rule -> a rule of a provisioning file's group: the group and folder move to the group,
    the dashboard link from annotations to dashboardUid/panelId."""
    annotations = dict(rule.get("annotations", {}))
    entry: dict[str, Any] = {
        "uid": rule["uid"],
        "title": rule["title"],
        "condition": rule["condition"],
        "data": rule["data"],
        "noDataState": rule["noDataState"],
        "execErrState": rule["execErrState"],
        "for": rule["for"],
        "isPaused": rule.get("isPaused", False),
        "labels": rule.get("labels", {}),
    }
    dashboard_uid = annotations.pop("__dashboardUid__", None)
    panel_id = annotations.pop("__panelId__", None)
    if dashboard_uid is not None:
        entry["dashboardUid"] = dashboard_uid
        entry["panelId"] = int(panel_id) if panel_id is not None else 0
    entry["annotations"] = annotations
    return entry


def rule_from_file(entry: dict[str, Any], group: str, folder_uid: str) -> dict[str, Any]:
    """The inverse of `rule_to_file`: a file rule as the provisioning API takes it."""
    annotations = dict(entry.get("annotations", {}))
    if "dashboardUid" in entry:
        annotations["__dashboardUid__"] = entry["dashboardUid"]
        annotations["__panelId__"] = str(entry.get("panelId", 0))
    return {
        "uid": entry["uid"],
        "title": entry["title"],
        "condition": entry["condition"],
        "data": entry["data"],
        "noDataState": entry["noDataState"],
        "execErrState": entry["execErrState"],
        "for": entry["for"],
        "isPaused": entry.get("isPaused", False),
        "labels": entry.get("labels", {}),
        "annotations": annotations,
        "folderUID": folder_uid,
        "ruleGroup": group,
        "orgID": 1,
    }


def rules_file(rules: RulesConfig) -> dict[str, Any]:
    groups = []
    for group in rule_groups(rules):
        data = as_json(group)
        groups.append({
            "orgId": 1,
            "name": data["title"],
            "folder": FOLDER_TITLE,
            "interval": _duration(data["interval"]),
            "rules": [rule_to_file(rule) for rule in data["rules"]],
        })
    return {"apiVersion": 1, "groups": groups}


def contact_points_file(webhook: bool = False) -> dict[str, Any]:
    receivers = []
    for point in contact_points(webhook):
        data = as_json(point)
        receivers.append({
            "uid": data["uid"],
            "type": data["type"],
            "settings": data["settings"],
            "disableResolveMessage": data.get("disableResolveMessage", False),
        })
    return {"apiVersion": 1, "contactPoints": [{"orgId": 1, "name": CONTACT_POINT, "receivers": receivers}]}


def policies_file() -> dict[str, Any]:
    return {"apiVersion": 1, "policies": [{"orgId": 1, **as_json(notification_policy())}]}


def queries_of(rule: dict[str, Any]) -> list[ClickHouseQuery]:
    """The ClickHouse queries of a (file or API) rule, as the dashboards' query type."""
    return [
        ClickHouseQuery(ref_id=query["refId"], raw_sql=query["model"]["rawSql"])
        for query in rule["data"]
        if query.get("datasourceUid") == DATASOURCE_UID
    ]
