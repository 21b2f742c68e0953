"""The CMOG meeting pack, one self-contained HTML file for the chair to circulate.

Reads the store (never writes), with the Grafana boards' figures (report/measures.py), and writes
DIR/cmog-pack-YYYY-MM-DD.html: overview figures, the agenda (report/agenda.py: the top N children by the
weights of their open unreviewed alerts' rules, then a count of the rest), actions by owning agency, the
places most children were linked to, and the weekly return-interview trend. Charts are plotly with
plotly.js inlined, so the file opens on a machine with no network. Pseudonymous keys only (shortened),
and every value put into the page is escaped.

Figures are as of `as_of` (default: now) over the `days` before it, where the store keeps history
(episodes, alerts, events, places). Child attributes (age band, CP plan, looked after, CSE level) are
the latest child records: child_state keeps no history.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from report.agenda import accountability, rank
from report.agenda_store import load as load_agenda_rows
from report.labels import percent
from report.queries import Period, check_store, one, pack_queries, run_query
from report.render import (
    accountability_html,
    alerts_chart,
    chart_html,
    cp_chart,
    meeting_list_html,
    overview_html,
    page_html,
    places_chart,
    places_html,
    trend_chart,
)
from streams.core.config import RulesConfig, load_rules

DEFAULT_DAYS = 28
DEFAULT_MAX_CHILDREN = 100
TOP_PLACES = 15


def build_pack(
    client: Client,
    database: str,
    out_dir: Path,
    as_of: datetime,
    days: int,
    *,
    config: RulesConfig | None = None,
    max_children: int = DEFAULT_MAX_CHILDREN,
    now: datetime | None = None,
) -> Path:
    """Write DIR/cmog-pack-YYYY-MM-DD.html (the as-of date in the configured zone) and return its path.

    Raises PackError when the store has no database, tables or children yet; the client's errors
    pass through."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    if days < 1:
        raise ValueError("days must be at least 1")
    config = config if config is not None else load_rules()
    zone = config.zone
    generated_at = now if now is not None else datetime.now(UTC)
    period = Period(start=as_of - timedelta(days=days), end=as_of, days=days)
    rhi_hours = config.rules.rhi_overdue.hours
    parameters: dict[str, Any] = {"start": period.start.astimezone(UTC), "end": period.end.astimezone(UTC)}

    check_store(client, database)
    previous_database = client.database
    client.database = database
    try:
        # The meeting list is the CMOG agenda (report/agenda.py): the top N, then a count of the rest.
        alert_rows, records = load_agenda_rows(client, as_of)
        agenda = rank(alert_rows, records, config.agenda.weights, as_of, min(config.agenda.top, max_children))
        accounts = accountability(records, as_of)
        parameters["children"] = [entry.child_key for entry in agenda.entries]
        results = {
            name: run_query(client, sql, {**parameters, "limit": TOP_PLACES if name == "top_places" else max_children})
            for name, sql in pack_queries(config).items()
        }
    finally:
        client.database = previous_database

    alerts_by_rule = results["open_alerts_by_rule"]
    cp_plans = results["cp_plans_by_category"]
    rhi = one(results["return_interviews_within_deadline"])
    repeat = one(results["repeat_cp_plans"])
    episodes = one(results["episodes_in_period"])
    figures = {
        "rhi_hours": rhi_hours,
        "missing_now": one(results["children_missing_now"]).get("children", 0),
        "episodes": episodes.get("episodes", 0),
        "episode_children": episodes.get("children", 0),
        "rhi_percent": percent(rhi.get("within_deadline", 0), rhi.get("returns", 0)),
        "rhi_within": rhi.get("within_deadline", 0),
        "rhi_returns": rhi.get("returns", 0),
        "open_alerts": sum(int(row["alerts"]) for row in alerts_by_rule),
        "open_child_alerts": sum(int(row["alerts"]) for row in alerts_by_rule if row["subject_kind"] == "child"),
        "new_alerts": sum(int(row["new_alerts"]) for row in alerts_by_rule),
        "high_cse": one(results["high_cse_risk_children"]).get("children", 0),
        "cp_children": sum(int(row["children"]) for row in cp_plans),
        "repeat_percent": percent(repeat.get("repeat_plans", 0), repeat.get("plans", 0)),
        "repeat_plans": repeat.get("repeat_plans", 0),
        "plans": repeat.get("plans", 0),
    }

    charts = [
        ("chart-open-alerts", alerts_chart(alerts_by_rule)),
        ("chart-cp-plans", cp_chart(cp_plans)),
        ("chart-rhi-trend", trend_chart(results["return_interview_trend"], rhi_hours)),
        ("chart-top-places", places_chart(results["top_places"])),
    ]
    chart_divs = {div_id: chart_html(figure, div_id, first=index == 0) for index, (div_id, figure) in
                  enumerate(charts)}
    sections = [
        ("overview", "Overview",
         overview_html(figures)
         + f'<div class="charts">{chart_divs["chart-open-alerts"]}{chart_divs["chart-cp-plans"]}</div>'),
        ("meeting-list-section", "Agenda: children ranked by their new alerts",
         meeting_list_html(results["meeting_list"], agenda, zone)),
        ("accountability", "Accountability: actions by owning agency", accountability_html(accounts)),
        ("places", "Places: where children were last seen, found or named",
         chart_divs["chart-top-places"] + places_html(results["top_places"])),
        ("return-interviews", "Return interview compliance", chart_divs["chart-rhi-trend"]),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cmog-pack-{as_of.astimezone(zone).date().isoformat()}.html"
    path.write_text(page_html(sections, period, database, generated_at, rhi_hours, zone), encoding="utf-8")
    return path

