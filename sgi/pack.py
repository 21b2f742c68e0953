"""`sgi pack`: the CMOG meeting pack, one self-contained HTML file for the chair to circulate.

Reads the store (never writes), with the same figures as the Grafana boards, and writes
DIR/cmog-pack-YYYY-MM-DD.html: overview figures, the meeting list (children with open alerts), the
places most children were linked to, and the weekly return-interview trend. Charts are plotly with
plotly.js inlined, so the file opens on a machine with no network. Pseudonymous keys only (shortened),
and every value put into the page is escaped.

Figures are as of `as_of` (default: now) over the `days` before it, where the store keeps history
(episodes, alerts, events, places). Child attributes (age band, CP plan, looked after, CSE level) are
the latest child records: child_state keeps no history.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseClientError
from pydantic import ValidationError

from settings import ClickHouseSettings, WorkerSettings
from streams.core.config import RulesConfig, load_rules

LONDON = ZoneInfo("Europe/London")
MARKING = "OFFICIAL-SENSITIVE"
DEFAULT_DAYS = 28
DEFAULT_MAX_CHILDREN = 100
TOP_PLACES = 15
KEY_CHARS = 12  # a shortened key still finds the child on the Grafana board (prefix search)
REQUIRED_TABLES = ("events", "episodes", "child_state", "alerts", "places")
SET_UP_HINT = "run `make demo` or `sgi db migrate` first"

# Query parameters: {start} and {end} bound the period (end = as of); {rhi_seconds} is the return
# interview deadline from the rules config (rhi_overdue.hours) and {repeat_min} the cp_repeat_plan rule's
# previous_plans_min, so the pack, the rules and the Grafana boards agree.
START = "{start:DateTime64(3, 'UTC')}"
END = "{end:DateTime64(3, 'UTC')}"
RHI_DEADLINE = "toIntervalSecond({rhi_seconds:UInt32})"
# Merged identities keep their old child_state row marked retired; their episodes live on under the
# surviving key, so counting episodes of live keys only counts each episode once.
LIVE_CHILDREN = "child_key IN (SELECT child_key FROM child_state FINAL WHERE NOT retired)"
# An alert open at {end}: raised by then and not yet resolved; withdrawn alerts are never shown.
OPEN_AT_END = f"status != 'withdrawn' AND opened_at <= {END} AND (resolved_at IS NULL OR resolved_at > {END})"
# A return counts once its deadline has passed by {end}; met = interview completed or declined in time,
# as the rhi_overdue rule has it (an offer alone does not meet the need).
RETURN_DUE = f"ended_at >= {START} AND ended_at + {RHI_DEADLINE} <= {END} AND {LIVE_CHILDREN}"
RHI_MET = f"interview IN ('completed', 'declined') AND interview_at <= ended_at + {RHI_DEADLINE}"

# Every query of the pack, named by what it shows; bare table names (the client's database), so the
# Grafana boards can share them.
QUERIES: dict[str, str] = {
    "children_missing_now": f"""
        SELECT uniqExact(child_key) AS children
        FROM episodes FINAL
        WHERE started_at <= {END} AND (ended_at IS NULL OR ended_at > {END}) AND {LIVE_CHILDREN}""",
    "episodes_in_period": f"""
        SELECT count() AS episodes, uniqExact(child_key) AS children
        FROM episodes FINAL
        WHERE started_at >= {START} AND started_at < {END} AND {LIVE_CHILDREN}""",
    "return_interviews_within_deadline": f"""
        SELECT countIf({RHI_MET}) AS within_deadline, count() AS returns
        FROM episodes FINAL
        WHERE {RETURN_DUE}""",
    "open_alerts_by_rule": f"""
        SELECT rule, subject_kind, count() AS alerts
        FROM alerts FINAL
        WHERE {OPEN_AT_END}
        GROUP BY rule, subject_kind
        ORDER BY alerts DESC, rule""",
    "high_cse_risk_children": """
        SELECT count() AS children
        FROM child_state FINAL
        WHERE NOT retired AND cse_level = 'high'""",
    "cp_plans_by_category": """
        SELECT ifNull(cp_category, 'unknown') AS category, count() AS children
        FROM child_state FINAL
        WHERE NOT retired AND cp_plan_active
        GROUP BY category
        ORDER BY children DESC, category""",
    "repeat_cp_plans": f"""
        SELECT countIf(previous_plans >= {{repeat_min:UInt16}}) AS repeat_plans, count() AS plans
        FROM events FINAL
        WHERE event_type = 'cp_plan.started' AND occurred_at >= {START} AND occurred_at < {END}""",
    "meeting_list_count": f"""
        SELECT uniqExact(subject) AS children
        FROM alerts FINAL
        WHERE subject_kind = 'child' AND {OPEN_AT_END}""",
    "meeting_list": f"""
        WITH
            open_by_child AS (
                SELECT subject AS child_key, count() AS open_alerts, arraySort(groupUniqArray(rule)) AS rules
                FROM alerts FINAL
                WHERE subject_kind = 'child' AND {OPEN_AT_END}
                GROUP BY subject
            ),
            episodes_by_child AS (
                SELECT
                    child_key,
                    countIf(started_at > {END} - INTERVAL 30 DAY AND started_at <= {END}) AS episodes_30d,
                    countIf(started_at > {END} - INTERVAL 90 DAY AND started_at <= {END}) AS episodes_90d,
                    countIf(started_at <= {END} AND (ended_at IS NULL OR ended_at > {END})) > 0 AS missing_now,
                    maxIf(interview_at, interview = 'completed' AND interview_at <= {END}) AS last_interview_at
                FROM episodes FINAL
                WHERE child_key IN (SELECT child_key FROM open_by_child)
                GROUP BY child_key
            )
        SELECT
            a.child_key AS child_key,
            c.age_band AS age_band,
            c.cp_plan_active AS cp_plan_active,
            c.cp_category AS cp_category,
            c.looked_after AS looked_after,
            c.cse_level AS cse_level,
            e.missing_now AS missing_now,
            ifNull(e.episodes_30d, 0) AS episodes_30d,
            ifNull(e.episodes_90d, 0) AS episodes_90d,
            e.last_interview_at AS last_interview_at,
            c.agencies AS agencies,
            a.rules AS rules,
            a.open_alerts AS open_alerts
        FROM open_by_child AS a
        LEFT JOIN (SELECT * FROM child_state FINAL WHERE NOT retired) AS c ON c.child_key = a.child_key
        LEFT JOIN episodes_by_child AS e ON e.child_key = a.child_key
        ORDER BY open_alerts DESC, cse_level = 'high' DESC, missing_now DESC, episodes_30d DESC, child_key
        LIMIT {{limit:UInt32}}""",
    # Premises only (sector and ward links repeat the same events); family homes are left out: the
    # children linked to one are mostly the siblings who live there.
    "top_places": f"""
        WITH open_by_place AS (
            SELECT subject AS place_key, count() AS open_alerts
            FROM alerts FINAL
            WHERE subject_kind = 'place' AND {OPEN_AT_END}
            GROUP BY subject
        )
        SELECT
            p.place_key AS place_key,
            p.category AS category,
            p.name AS name,
            p.ward AS ward,
            p.sector AS sector,
            p.children AS children,
            p.children_at_cse_risk AS children_at_cse_risk,
            p.events AS events,
            ifNull(o.open_alerts, 0) AS open_alerts
        FROM (
            SELECT
                place_key,
                max(premises_category) AS category,
                max(premises_name) AS name,
                max(ward_name) AS ward,
                max(postcode_sector) AS sector,
                length(groupUniqArrayArray(children)) AS children,
                length(groupUniqArrayArray(children_at_cse_risk)) AS children_at_cse_risk,
                length(groupUniqArrayArray(events)) AS events
            FROM places
            WHERE place_kind = 'premises'
                AND day >= toDate({START}, 'Europe/London') AND day <= toDate({END}, 'Europe/London')
            GROUP BY place_key
            HAVING category IS NULL OR category != 'home'
        ) AS p
        LEFT JOIN open_by_place AS o ON o.place_key = p.place_key
        ORDER BY children DESC, children_at_cse_risk DESC, events DESC, place_key
        LIMIT {{limit:UInt32}}""",
    "return_interview_trend": f"""
        SELECT
            toMonday(ended_at, 'Europe/London') AS week,
            count() AS returns,
            countIf({RHI_MET}) AS within_deadline
        FROM episodes FINAL
        WHERE {RETURN_DUE}
        GROUP BY week
        ORDER BY week""",
}

RULE_LABELS = {
    "rhi_overdue": "Return interview overdue",
    "repeat_missing": "Repeat missing",
    "long_missing": "Missing over 24 h",
    "missing_while_vulnerable": "Missing while at CSE risk",
    "police_high_risk": "Police high-risk missing",
    "cse_risk_raised": "CSE risk raised",
    "cse_low_under13": "CSE low risk, under 13 / LD",
    "da_high_risk_no_marac": "High-risk DA, no MARAC",
    "da_escalation": "DA escalating",
    "encompass_overdue": "Encompass notice late",
    "cp_repeat_plan": "Repeat CP plan",
    "da_on_cp_plan": "DA while on CP plan",
    "multi_agency_concern": "Multi-agency concern",
    "hotspot_emerging": "Hotspot emerging",
    "linked_children": "Children at CSE risk linked",
}
CP_CATEGORIES = {"EMO": "Emotional abuse", "NEG": "Neglect", "SAB": "Sexual abuse", "PHY": "Physical abuse",
                 "MUL": "Multiple"}

HOW_TO_READ = (
    "Each child appears under a pseudonymous key (the first {key_chars} characters): search for it on the "
    "Grafana child board to see the history; no name or identifier leaves the partner systems. "
    "Figures are as of {as_of} over the {days} days before it. <em>Missing now</em> and open alerts are as of "
    "that moment; CSE level, CP plans and looked-after status are the latest child records. A return "
    "interview counts as on time when it was completed or declined within {rhi_hours} hours of the return; "
    "returns whose deadline has not yet passed are left out. The meeting list is ordered by the number of "
    "open alerts, then high CSE risk, then missing now. Places count distinct children linked to the "
    "premises (last seen, found, or named at a return interview) in the period; family homes are left out "
    "and residential addresses never carry a name."
)


class PackError(Exception):
    """The store cannot give a pack (missing database or tables, or no data yet)."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # the pack's as-of moment
    days: int


# --- reading the store ------------------------------------------------------------------------------


def check_store(client: Client, database: str) -> None:
    """Raise PackError unless `database` holds the tables the pack reads and some children."""
    exists = client.command("SELECT count() FROM system.databases WHERE name = {name:String}", {"name": database})
    if not int(exists):
        raise PackError(f"database {database!r} does not exist: {SET_UP_HINT}")
    found = client.query(
        "SELECT name FROM system.tables WHERE database = {database:String}", parameters={"database": database}
    ).result_rows
    missing = sorted(set(REQUIRED_TABLES) - {row[0] for row in found})
    if missing:
        raise PackError(f"database {database!r} has no table {', '.join(missing)}: {SET_UP_HINT}")
    children = client.command(f"SELECT count() FROM {database}.child_state")
    if not int(children):
        raise PackError(f"the store is empty (no children in {database}.child_state): {SET_UP_HINT}")


def run_query(client: Client, name: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(QUERIES[name], parameters=parameters, settings={"join_use_nulls": 1})
    columns = list(result.column_names)
    return [dict(zip(columns, row, strict=True)) for row in result.result_rows]


def one(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return rows[0] if rows else {}


# --- formatting -------------------------------------------------------------------------------------


def text(value: Any) -> str:
    """Any value as escaped HTML text; None as a dash."""
    if value is None or value == "":
        return "&ndash;"
    return escape(str(value))


def local_time(moment: datetime | None, with_time: bool = True) -> str:
    if moment is None:
        return "–"
    local = moment.astimezone(LONDON)
    return local.strftime("%d %b %Y %H:%M") if with_time else local.strftime("%d %b %Y")


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "–"


def short_key(key: str) -> str:
    return key[:KEY_CHARS]


def rule_label(rule: str) -> str:
    return RULE_LABELS.get(rule, rule.replace("_", " "))


AGENCY_LABELS = {"childrens_social_care": "social care", "voluntary_sector": "voluntary",
                 "youth_justice": "youth justice"}


def agency_label(agency: str) -> str:
    return AGENCY_LABELS.get(agency, agency.replace("_", " "))


def badge(label: str, kind: str) -> str:
    return f'<span class="badge {escape(kind, quote=True)}">{escape(label)}</span>'


# --- charts -----------------------------------------------------------------------------------------


def chart_html(figure: go.Figure, div_id: str, first: bool) -> str:
    """A figure as a <div> plus its script; the first chart of the page carries plotly.js itself,
    inline (never a CDN link), so the file needs no network."""
    figure.update_layout(
        template="plotly_white",
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        font={"family": "Arial, sans-serif", "size": 12},
    )
    return str(
        figure.to_html(
            full_html=False,
            include_plotlyjs=first,  # True: plotly.js inline, in this chart's script
            div_id=div_id,
            config={"displayModeBar": False, "responsive": True},
        )
    )


def empty_note(figure: go.Figure, message: str) -> go.Figure:
    figure.add_annotation(text=escape(message), showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    return figure


def alerts_chart(rows: list[dict[str, Any]]) -> go.Figure:
    ordered = sorted(rows, key=lambda row: (row["alerts"], row["rule"]))
    figure = go.Figure(
        go.Bar(
            x=[int(row["alerts"]) for row in ordered],
            y=[escape(rule_label(row["rule"])) for row in ordered],
            orientation="h",
            marker_color=["#8e44ad" if row["subject_kind"] == "place" else "#c0392b" for row in ordered],
            text=[int(row["alerts"]) for row in ordered],
            textposition="auto",
            hovertemplate="%{y}: %{x} open<extra></extra>",
        )
    )
    figure.update_layout(title="Open alerts by rule (red: children, purple: places)",
                         height=max(260, 28 * len(ordered) + 80))
    return empty_note(figure, "No open alerts") if not rows else figure


def cp_chart(rows: list[dict[str, Any]]) -> go.Figure:
    figure = go.Figure(
        go.Bar(
            x=[escape(CP_CATEGORIES.get(row["category"], row["category"])) for row in rows],
            y=[int(row["children"]) for row in rows],
            marker_color="#2c7fb8",
            text=[int(row["children"]) for row in rows],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{x}: %{y} children<extra></extra>",
        )
    )
    figure.update_layout(title="Children on a CP plan by category", height=300)
    return empty_note(figure, "No child protection plans") if not rows else figure


def trend_chart(rows: list[dict[str, Any]], rhi_hours: float) -> go.Figure:
    weeks = [row["week"].isoformat() for row in rows]
    returns = [int(row["returns"]) for row in rows]
    within = [int(row["within_deadline"]) for row in rows]
    shares = [round(100 * met / due, 1) if due else None for met, due in zip(within, returns, strict=True)]
    figure = go.Figure(
        [
            # Counts on the base axis, the share on the overlaying one: plotly draws the overlay on top.
            go.Bar(x=weeks, y=returns, name="returns due", marker_color="#e0e0e0",
                   hovertemplate="Week of %{x}: %{y} returns<extra></extra>"),
            go.Scatter(
                x=weeks, y=shares, yaxis="y2", name=f"% within {rhi_hours:g} h", mode="lines+markers+text",
                line={"color": "#1b7837", "width": 3},
                text=[f"{share:.0f}%" if share is not None else "" for share in shares],
                textposition="top center", customdata=[[met, due] for met, due in zip(within, returns, strict=True)],
                hovertemplate="Week of %{x}: %{y}% (%{customdata[0]} of %{customdata[1]})<extra></extra>",
            ),
        ]
    )
    figure.update_layout(
        title=f"Return interviews within {rhi_hours:g} h, % by week of return (Monday; grey: returns due)",
        height=320,
        showlegend=False,
        yaxis={"side": "right", "rangemode": "tozero", "tickformat": "d", "showgrid": False, "title": "returns due"},
        yaxis2={"overlaying": "y", "side": "left", "range": [0, 110], "tickmode": "linear", "tick0": 0, "dtick": 20,
                "ticksuffix": "%", "showgrid": True, "title": "within deadline"},
        xaxis={"type": "date", "tickformat": "%d %b", "dtick": 7 * 24 * 3600 * 1000,
               "tick0": weeks[0] if weeks else None},
    )
    return empty_note(figure, "No returns due in the period") if not rows else figure


def places_chart(rows: list[dict[str, Any]]) -> go.Figure:
    ordered = list(reversed(rows))
    labels = [escape(place_label(row)) for row in ordered]
    at_risk = [int(row["children_at_cse_risk"]) for row in ordered]
    others = [int(row["children"]) - risk for row, risk in zip(ordered, at_risk, strict=True)]
    figure = go.Figure(
        [
            go.Bar(x=at_risk, y=labels, orientation="h", name="at CSE risk (medium/high)", marker_color="#d95f0e",
                   hovertemplate="%{y}: %{x} at CSE risk<extra></extra>"),
            go.Bar(x=others, y=labels, orientation="h", name="other children", marker_color="#fec44f",
                   hovertemplate="%{y}: %{x} other<extra></extra>"),
        ]
    )
    figure.update_layout(title="Places by distinct children linked in the period", barmode="stack",
                         height=max(300, 26 * len(ordered) + 100),
                         legend={"orientation": "h", "y": -0.08})
    return empty_note(figure, "No places linked in the period") if not rows else figure


def place_label(row: dict[str, Any]) -> str:
    category = (row["category"] or "place").replace("_", " ")
    name = row["name"] or f"{category} (name withheld)"
    return f"{name}, {row['ward'] or row['sector'] or 'ward unknown'}"


# --- sections ---------------------------------------------------------------------------------------


def overview_html(figures: dict[str, Any]) -> str:
    tiles = [
        ("Children missing now", figures["missing_now"], "as of the pack's date"),
        ("Missing episodes", figures["episodes"], f"{figures['episode_children']} children, in the period"),
        (f"Return interviews within {figures['rhi_hours']:g} h", figures["rhi_percent"],
         f"{figures['rhi_within']} of {figures['rhi_returns']} returns due"),
        ("Open alerts", figures["open_alerts"], f"{figures['open_child_alerts']} on children"),
        ("High CSE risk", figures["high_cse"], "children, latest assessment"),
        ("On a CP plan", figures["cp_children"], "children, latest records"),
        ("Repeat CP plans", figures["repeat_percent"],
         f"{figures['repeat_plans']} of {figures['plans']} plans started in the period"),
    ]
    cells = "".join(
        f'<div class="tile"><div class="figure">{text(value)}</div><div class="label">{text(label)}</div>'
        f'<div class="note">{text(note)}</div></div>'
        for label, value, note in tiles
    )
    return f'<div class="tiles" id="overview">{cells}</div>'


def meeting_list_html(rows: list[dict[str, Any]], total: int) -> str:
    if not rows:
        return '<p class="empty">No child has an open alert.</p>'
    body = []
    for row in rows:
        flags = []
        if row["cp_plan_active"]:
            category = row["cp_category"]
            flags.append(badge(f"CP plan{f' ({category})' if category else ''}", "cp"))
        if row["looked_after"]:
            flags.append(badge("Looked after", "lac"))
        if row["cse_level"] and row["cse_level"] != "none":
            flags.append(badge(f"CSE {row['cse_level']}", f"cse-{row['cse_level']}"))
        if row["missing_now"]:
            flags.append(badge("Missing now", "missing"))
        agencies = ", ".join(agency_label(agency) for agency in row["agencies"] or [])
        rules = "<br>".join(escape(rule_label(rule)) for rule in row["rules"])
        body.append(
            '<tr class="child">'
            f'<td class="key">{text(short_key(row["child_key"]))}</td>'
            f"<td>{text(row['age_band'])}</td>"
            f"<td>{''.join(flags) or '&ndash;'}</td>"
            f'<td class="num">{text(row["episodes_30d"])}</td>'
            f'<td class="num">{text(row["episodes_90d"])}</td>'
            f"<td>{text(local_time(row['last_interview_at'], with_time=False))}</td>"
            f"<td>{text(agencies)}</td>"
            f'<td class="num">{text(row["open_alerts"])}</td>'
            f"<td>{rules}</td>"
            "</tr>"
        )
    shown = (
        f'<p class="note">Showing {len(rows)} of {total} children with open alerts, most alerts first; '
        "the full list is on the Grafana board.</p>"
        if total > len(rows) else f'<p class="note">{total} children with open alerts.</p>'
    )
    header = (
        "<tr><th>Child (key)</th><th>Age band</th><th>Flags</th><th>Episodes 30 d</th><th>Episodes 90 d</th>"
        "<th>Last return interview</th><th>Agencies</th><th>Open alerts</th><th>Alert rules</th></tr>"
    )
    return f'{shown}<table id="meeting-list"><thead>{header}</thead><tbody>{"".join(body)}</tbody></table>'


def places_html(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return '<p class="empty">No premises linked to a child in the period.</p>'
    body = "".join(
        '<tr class="place">'
        f'<td class="num">{rank}</td>'
        f"<td>{text((row['category'] or '').replace('_', ' '))}</td>"
        f"<td>{text(row['name'] or 'name withheld (residential)')}</td>"
        f"<td>{text(row['ward'])}</td>"
        f"<td>{text(row['sector'])}</td>"
        f'<td class="num">{text(row["children"])}</td>'
        f'<td class="num">{text(row["children_at_cse_risk"])}</td>'
        f'<td class="num">{text(row["events"])}</td>'
        f'<td class="num">{text(row["open_alerts"])}</td>'
        "</tr>"
        for rank, row in enumerate(rows, start=1)
    )
    header = (
        "<tr><th>#</th><th>Category</th><th>Premises</th><th>Ward</th><th>Sector</th><th>Children</th>"
        "<th>At CSE risk</th><th>Events</th><th>Open place alerts</th></tr>"
    )
    return f'<table id="top-places"><thead>{header}</thead><tbody>{body}</tbody></table>'


# --- the page ---------------------------------------------------------------------------------------

STYLE = """
body { font-family: Arial, Helvetica, sans-serif; color: #222; margin: 0 auto; max-width: 1300px; padding: 0 16px; }
.marking { background: #222; color: #fff; text-align: center; font-weight: bold; letter-spacing: 2px;
           padding: 6px; margin: 0 -16px; }
h1 { margin: 16px 0 4px; font-size: 26px; }
h2 { border-bottom: 2px solid #2c7fb8; padding-bottom: 4px; margin-top: 28px; font-size: 20px; }
.meta { color: #555; font-size: 13px; margin: 2px 0; }
.how { background: #f4f7fb; border-left: 4px solid #2c7fb8; padding: 8px 12px; font-size: 13px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr)); gap: 10px; }
.tile { border: 1px solid #ccd; border-radius: 6px; padding: 10px; background: #fafbfd; }
.tile .figure { font-size: 28px; font-weight: bold; color: #2c3e50; }
.tile .label { font-weight: bold; font-size: 13px; }
.tile .note, .note { color: #666; font-size: 12px; }
.charts { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { border: 1px solid #d5d8dc; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
tbody tr:nth-child(even) { background: #fafafa; }
td.num { text-align: right; }
td.key { font-family: Consolas, monospace; }
.badge { display: inline-block; border-radius: 3px; padding: 1px 5px; margin: 1px 2px; font-size: 11px; color: #fff; }
.badge.cp { background: #2c7fb8; } .badge.lac { background: #5e3c99; } .badge.missing { background: #b2182b; }
.badge.cse-high { background: #d7301f; } .badge.cse-medium { background: #fc8d59; } .badge.cse-low { background: #999; }
#meeting-list td:nth-child(3) { width: 150px; } #meeting-list td:nth-child(7) { width: 190px; }
#meeting-list td:nth-child(9) { width: 260px; }
.empty { color: #666; font-style: italic; }
@media print { .charts { grid-template-columns: 1fr; } tr { page-break-inside: avoid; } }
"""


def page_html(sections: list[tuple[str, str, str]], period: Period, database: str, generated_at: datetime,
              rhi_hours: float) -> str:
    marking = escape(MARKING)
    title = f"{MARKING} - CMOG meeting pack {period.end.astimezone(LONDON):%d %b %Y}"
    how = HOW_TO_READ.format(key_chars=KEY_CHARS, as_of=escape(local_time(period.end)), days=period.days,
                             rhi_hours=f"{rhi_hours:g}")
    body = "".join(
        f'<section id="{escape(section_id, quote=True)}"><h2>{escape(heading)}</h2>{content}</section>'
        for section_id, heading, content in sections
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body>"
        f'<div class="marking" id="marking-top">{marking}</div>'
        "<h1>Child Missing Operational Group (CMOG) meeting pack</h1>"
        f'<p class="meta">Period: {escape(local_time(period.start))} to {escape(local_time(period.end))} '
        f"(Europe/London), the {period.days} days before the pack's date.</p>"
        f'<p class="meta" id="generated-at">Generated {escape(local_time(generated_at))} (Europe/London) '
        f"from the safeguarding store ({escape(database)}) by <code>sgi pack</code>. "
        "Pseudonymous keys only.</p>"
        f'<div class="how" id="how-to-read"><strong>How to read this pack.</strong> {how}</div>'
        f"{body}"
        f'<div class="marking" id="marking-bottom">{marking}</div>'
        "</body></html>\n"
    )


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
    """Write DIR/cmog-pack-YYYY-MM-DD.html (the as-of date in London) and return its path.

    Raises PackError when the store has no database, tables or children yet; the client's errors
    pass through."""
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    if days < 1:
        raise ValueError("days must be at least 1")
    config = config if config is not None else load_rules()
    generated_at = now if now is not None else datetime.now(UTC)
    period = Period(start=as_of - timedelta(days=days), end=as_of, days=days)
    rhi_hours = config.rules.rhi_overdue.hours
    parameters: dict[str, Any] = {
        "start": period.start.astimezone(UTC),
        "end": period.end.astimezone(UTC),
        "rhi_seconds": round(rhi_hours * 3600),
        "repeat_min": config.rules.cp_repeat_plan.previous_plans_min,
    }

    check_store(client, database)
    previous_database = client.database
    client.database = database
    try:
        results = {
            name: run_query(client, name, {**parameters, "limit": TOP_PLACES if name == "top_places" else max_children})
            for name in QUERIES
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
        "high_cse": one(results["high_cse_risk_children"]).get("children", 0),
        "cp_children": sum(int(row["children"]) for row in cp_plans),
        "repeat_percent": percent(repeat.get("repeat_plans", 0), repeat.get("plans", 0)),
        "repeat_plans": repeat.get("repeat_plans", 0),
        "plans": repeat.get("plans", 0),
    }
    meeting_total = int(one(results["meeting_list_count"]).get("children", 0))

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
        ("meeting-list-section", "Meeting list: children with open alerts",
         meeting_list_html(results["meeting_list"], meeting_total)),
        ("places", "Places: where children were last seen, found or named",
         chart_divs["chart-top-places"] + places_html(results["top_places"])),
        ("return-interviews", "Return interview compliance", chart_divs["chart-rhi-trend"]),
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"cmog-pack-{as_of.astimezone(LONDON).date().isoformat()}.html"
    path.write_text(page_html(sections, period, database, generated_at, rhi_hours), encoding="utf-8")
    return path


# --- the command ------------------------------------------------------------------------------------


def parse_as_of(value: str) -> datetime:
    """argparse type for --as-of: an ISO 8601 date or datetime; one without an offset is UTC
    (a bare date means that day's midnight in London: the pack for a meeting that day)."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, datetime.min.time(), tzinfo=LONDON).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or datetime: {value!r}") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from error
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def run(args: argparse.Namespace) -> int:
    """The `sgi pack` handler."""
    from sgi.db import error_text
    from sinks.clickhouse import connect

    try:
        config = load_rules(WorkerSettings().rules)
    except (OSError, ValueError) as error:
        print(f"error: cannot load the rules config: {error}", file=sys.stderr)
        return 2
    as_of = args.as_of if args.as_of is not None else datetime.now(UTC)
    try:
        settings = ClickHouseSettings()
        client = connect(settings, create_database=False)
    except (ClickHouseClientError, OSError, ValidationError) as error:
        print(f"error: cannot open the store: {error_text(error)}; {SET_UP_HINT}", file=sys.stderr)
        return 2
    try:
        path = build_pack(client, settings.database, Path(args.out), as_of, args.days, config=config,
                          max_children=args.max_children)
    except PackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ClickHouseClientError as error:
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot write the pack: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(f"wrote {path} ({MARKING}: share only with the CMOG members)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `pack`."""
    parser = subparsers.add_parser(
        "pack",
        help="write the CMOG meeting pack: one self-contained HTML file (OFFICIAL-SENSITIVE)",
        description="Write the CMOG meeting pack from the configured store (SGI_CLICKHOUSE_*): overview "
        "figures, the meeting list of children with open alerts, the places most children were linked to, "
        "and the weekly return-interview trend. One HTML file with charts inline, no network needed to open "
        "it; pseudonymous keys only. Needs a filled store: run `make demo` or `sgi db migrate` first.",
    )
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory to write cmog-pack-YYYY-MM-DD.html into (created if missing)")
    parser.add_argument("--days", type=positive, default=DEFAULT_DAYS, metavar="N",
                        help=f"the period: the N days before --as-of (default {DEFAULT_DAYS})")
    parser.add_argument("--as-of", type=parse_as_of, default=None, metavar="TIMESTAMP",
                        help="the pack's moment, ISO 8601 (e.g. 2015-03-02T09:00:00Z; no offset means UTC; "
                        "a bare date means 00:00 that day in London); default now")
    parser.add_argument("--max-children", type=positive, default=DEFAULT_MAX_CHILDREN, metavar="N",
                        help=f"list at most N children in the meeting list (default {DEFAULT_MAX_CHILDREN})")
    parser.set_defaults(func=run)
