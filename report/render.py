"""The pack's page: plotly charts (plotly.js inlined once, so the file opens with no network), HTML
sections and tables. Every value put into the page is escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from report.agenda import AgencyAccount, Agenda
from report.labels import (
    CP_CATEGORIES,
    HOW_TO_READ,
    KEY_CHARS,
    MARKING,
    agency_label,
    badge,
    local_time,
    place_label,
    rule_label,
    short_key,
    text,
)
from report.queries import Period

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


# --- sections ---------------------------------------------------------------------------------------


def overview_html(figures: dict[str, Any]) -> str:
    tiles = [
        ("Children missing now", figures["missing_now"], "as of the pack's date"),
        ("Missing episodes", figures["episodes"], f"{figures['episode_children']} children, in the period"),
        (f"Return interviews within {figures['rhi_hours']:g} h", figures["rhi_percent"],
         f"{figures['rhi_within']} of {figures['rhi_returns']} returns due"),
        ("Open alerts", figures["open_alerts"],
         f"{figures['open_child_alerts']} on children; {figures['new_alerts']} new (not yet reviewed)"),
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


def meeting_list_html(rows: list[dict[str, Any]], agenda: Agenda, zone: ZoneInfo) -> str:
    """The agenda's children in rank order, with the details `rows` (the meeting_list query) give by key."""
    if not agenda.entries:
        return '<p class="empty">No child has a new (unreviewed) alert that scores.</p>'
    details = {row["child_key"]: row for row in rows}
    body = []
    for entry in agenda.entries:
        row = details.get(entry.child_key, {})
        flags = []
        if row.get("cp_plan_active"):
            category = row.get("cp_category")
            flags.append(badge(f"CP plan{f' ({category})' if category else ''}", "cp"))
        if row.get("looked_after"):
            flags.append(badge("Looked after", "lac"))
        if row.get("cse_level") and row["cse_level"] != "none":
            flags.append(badge(f"CSE {row['cse_level']}", f"cse-{row['cse_level']}"))
        if row.get("missing_now"):
            flags.append(badge("Missing now", "missing"))
        if entry.on_list:
            flags.append(badge("On the CMOG list", "listed"))
        agencies = ", ".join(agency_label(agency) for agency in row.get("agencies") or [])
        rules = "<br>".join(escape(rule_label(rule)) for rule in entry.rules)
        actions = f"{entry.open_actions} open, {entry.overdue_actions} overdue" if entry.open_actions else None
        review = (f"{local_time(entry.last_review, zone, with_time=False)} ({entry.last_decision})"
                  if entry.last_review is not None else None)
        body.append(
            '<tr class="child">'
            f'<td class="num">{entry.rank}</td>'
            f'<td class="key">{text(short_key(entry.child_key))}</td>'
            f'<td class="num">{entry.priority}</td>'
            f"<td>{rules}</td>"
            f"<td>{text(row.get('age_band'))}</td>"
            f"<td>{''.join(flags) or '&ndash;'}</td>"
            f'<td class="num">{text(row.get("episodes_30d"))}</td>'
            f"<td>{text(local_time(row.get('last_interview_at'), zone, with_time=False))}</td>"
            f"<td>{text(agencies)}</td>"
            f'<td class="num">{text(row.get("open_alerts"))}</td>'
            f"<td>{text(actions)}</td>"
            f"<td>{text(review)}</td>"
            "</tr>"
        )
    shown = (
        f'<p class="note" id="agenda-rest">The top {len(agenda.entries)} children; {agenda.rest} more have new '
        "alerts that score (see <code>sgi agenda</code> or the CMOG agenda board).</p>"
    )
    header = (
        "<tr><th>#</th><th>Child (key)</th><th>Priority</th><th>Rules that scored</th><th>Age band</th>"
        "<th>Flags</th><th>Episodes 30 d</th><th>Last return interview</th><th>Agencies</th><th>Open alerts</th>"
        "<th>Actions</th><th>Last review</th></tr>"
    )
    return f'{shown}<table id="meeting-list"><thead>{header}</thead><tbody>{"".join(body)}</tbody></table>'


def accountability_html(accounts: list[AgencyAccount]) -> str:
    if not accounts:
        return '<p class="empty">No actions set by the CMOG yet.</p>'
    body = "".join(
        '<tr class="agency">'
        f"<td>{text(agency_label(account.owner_agency))}</td>"
        f'<td class="num">{account.actions_set}</td>'
        f'<td class="num">{account.done_in_time}</td>'
        f'<td class="num">{account.done_late}</td>'
        f'<td class="num">{account.overdue_now}</td>'
        "</tr>"
        for account in accounts
    )
    header = ("<tr><th>Owning agency</th><th>Actions set</th><th>Done in time</th><th>Done late</th>"
              "<th>Overdue now</th></tr>")
    return f'<table id="accountability-table"><thead>{header}</thead><tbody>{body}</tbody></table>'


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
.badge.listed { background: #1b7837; }
.badge.cse-high { background: #d7301f; } .badge.cse-medium { background: #fc8d59; } .badge.cse-low { background: #999; }
#meeting-list td:nth-child(4) { width: 220px; } #meeting-list td:nth-child(6) { width: 150px; }
#meeting-list td:nth-child(9) { width: 170px; }
.empty { color: #666; font-style: italic; }
@media print { .charts { grid-template-columns: 1fr; } tr { page-break-inside: avoid; } }
"""


def page_html(sections: list[tuple[str, str, str]], period: Period, database: str, generated_at: datetime,
              rhi_hours: float, zone: ZoneInfo) -> str:
    marking = escape(MARKING)
    title = f"{MARKING} - CMOG meeting pack {period.end.astimezone(zone):%d %b %Y}"
    how = HOW_TO_READ.format(key_chars=KEY_CHARS, as_of=escape(local_time(period.end, zone)), days=period.days,
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
        f'<p class="meta">Period: {escape(local_time(period.start, zone))} to {escape(local_time(period.end, zone))} '
        f"({escape(zone.key)}), the {period.days} days before the pack's date.</p>"
        f'<p class="meta" id="generated-at">Generated {escape(local_time(generated_at, zone))} ({escape(zone.key)}) '
        f"from the safeguarding store ({escape(database)}) by <code>sgi pack</code>. "
        "Pseudonymous keys only.</p>"
        f'<div class="how" id="how-to-read"><strong>How to read this pack.</strong> {how}</div>'
        f"{body}"
        f'<div class="marking" id="marking-bottom">{marking}</div>'
        "</body></html>\n"
    )

