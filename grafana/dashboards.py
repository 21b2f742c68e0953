"""The six Safeguarding boards, built with grafana-foundation-sdk. One function per board; each takes
the rules config so every number a panel shares with a stream rule (the 72 h interview deadline, the
repeat-plan count, the lateness bound, the hotspot window) is the rule's own.

Tables are read as the schema asks: ReplacingMergeTree tables with FINAL, the `places` rollup by
re-aggregating its sets, and alerts with status 'withdrawn' never shown. Every figure the meeting pack
shows too is one of report/measures.py's fragments, as of the end of the board's time range.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import barchart, geomap, piechart, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import common as common_sdk
from grafana_foundation_sdk.builders import dashboard as sdk
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as piechart_model

from grafana.panels import (
    BOARD_TAG,
    DATA_QUALITY_UID,
    HOTSPOTS_UID,
    MEETING_UID,
    OVERVIEW_UID,
    SQL,
    TIMELINE_UID,
    agency_variable,
    board_links,
    child_in_ward,
    child_with_agency,
    datasource,
    dedent_sql,
    episode_in_ward,
    event_from_agency,
    event_in_ward,
    keys_in_ward,
    links_property,
    place_in_ward,
    selected_one,
    subject_in_ward,
    thresholds,
    timeline_link,
    ward_variable,
)
from report import measures
from report.measures import BOARD_PERIOD
from streams.core.config import RulesConfig

REFRESH = "5m"
NAME_AND_VALUE = [piechart_model.PieChartLabels.NAME, piechart_model.PieChartLabels.VALUE]
GREEN, ORANGE, RED, BLUE = "green", "orange", "red", "blue"


def _seconds(hours: float) -> int:
    return round(hours * 3600)


def _board(uid: str, title: str, description: str, rules: RulesConfig, time_from: str) -> sdk.Dashboard:
    return (
        sdk.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([BOARD_TAG, "safeguarding"])
        .timezone(rules.timezone)
        .time(time_from, "now")
        .refresh(REFRESH)
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(board_links())
    )


def _stat(panel_id: int, title: str, description: str, query: str, unit: str = "none") -> stat.Panel:
    return (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .with_target(SQL(query))
        .unit(unit)
        .height(4)
        .span(4)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_sdk.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )


def _table(panel_id: int, title: str, description: str, *queries: SQL) -> table.Panel:
    panel = (
        table.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .filterable(True)
        .cell_height(common.TableCellHeight.SM)
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


def _series(panel_id: int, title: str, description: str, *queries: SQL, interval: str = "1d") -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .interval(interval)
        .height(9)
        .span(24)
        .draw_style(common.GraphDrawStyle.LINE)
        .line_width(2)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.AUTO)
        .legend(common_sdk.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM))
    )
    for query in queries:
        panel = panel.with_target(query)
    return panel


# --- CMOG overview ----------------------------------------------------------------------------------


def cmog_overview(rules: RulesConfig) -> sdk.Dashboard:
    rhi = rules.rules.rhi_overdue
    rhi_seconds = _seconds(rhi.hours)
    repeat_min = rules.rules.cp_repeat_plan.previous_plans_min
    child_filters = f"{child_in_ward()}\n  AND {child_with_agency()}"
    alert_filters = f"{subject_in_ward()}\n  AND {child_with_agency('subject')}"
    episode_filters = f"{episode_in_ward()}\n  AND {child_with_agency()}"
    return (
        _board(OVERVIEW_UID, "CMOG overview",
               "Children missing, exploited and at risk: the Complex and Missing Operational Group's picture "
               "for the chosen period, ward and agencies.", rules, "now-30d")
        .with_variable(ward_variable())
        .with_variable(agency_variable())
        .with_row(sdk.Row("Now and this period").id(100))
        .with_panel(_stat(1, "Children missing now", "Children with a missing episode still open at the end of "
                          "the period (now, unless the range ends earlier).", f"""
            SELECT children AS children_missing_now
            FROM ({measures.children_missing(BOARD_PERIOD.end, episode_filters)})
            """).thresholds(thresholds((None, GREEN), (1, ORANGE), (5, RED))))
        .with_panel(_stat(2, "Missing episodes this period", "Missing episodes that started in the period, each "
                          "once by its reference (whatever identifiers it was reported under).", f"""
            SELECT episodes AS missing_episodes
            FROM ({measures.missing_episodes(BOARD_PERIOD, episode_filters)})
            """).thresholds(thresholds((None, BLUE))))
        .with_panel(_stat(
            3, f"Return interviews within {rhi.hours:g} h",
            f"Of the returns in the period whose {rhi.hours:g} h deadline has passed, the share with a return "
            "interview completed (or declined by the child) in time: the rhi_overdue rule's deadline.", f"""
            SELECT round(100 * within_deadline / nullIf(returns, 0), 1) AS rhi_in_time_pct
            FROM ({measures.return_interviews(BOARD_PERIOD, rhi_seconds, episode_filters)})
            """, unit="percent").min(0).max(100).no_value("no returns due")
            .thresholds(thresholds((None, RED), (60, ORANGE), (90, GREEN))))
        .with_panel(_stat(4, "Open alerts", "Alerts open at the end of the period (withdrawn alerts are never "
                          "counted).", f"""
            SELECT sum(alerts) AS open_alerts
            FROM ({measures.open_alerts_by_rule(BOARD_PERIOD.end, alert_filters)})
            """).thresholds(thresholds((None, GREEN), (1, ORANGE))))
        .with_panel(_stat(5, "High CSE risk", "Children whose latest CSE assessment is high.", f"""
            SELECT children AS high_cse_risk
            FROM ({measures.high_cse_risk(child_filters)})
            """).thresholds(thresholds((None, GREEN), (1, RED))))
        .with_panel(_stat(
            6, "Repeat CP plans",
            f"Child protection plans started in the period that are a second or later plan (previous plans >= "
            f"{repeat_min}): the cp_repeat_plan rule's measure.", f"""
            SELECT round(100 * repeat_plans / nullIf(plans, 0), 1) AS repeat_plans_pct
            FROM ({measures.repeat_cp_plans(BOARD_PERIOD, repeat_min, f"{keys_in_ward()} AND {event_from_agency()}")})
            """, unit="percent").min(0).max(100).no_value("no plans started")
            .thresholds(thresholds((None, GREEN), (20, ORANGE), (30, RED))))
        .with_row(sdk.Row("Alerts and plans").id(101))
        .with_panel(
            barchart.Panel().id(7).title("Open alerts by rule")
            .description("Alerts open at the end of the period, by rule (withdrawn alerts are never shown).")
            .datasource(datasource())
            .with_target(SQL(f"""
                SELECT rule, sum(alerts) AS open_alerts
                FROM ({measures.open_alerts_by_rule(BOARD_PERIOD.end, alert_filters)})
                GROUP BY rule
                ORDER BY open_alerts DESC, rule
                """))
            .x_field("rule").orientation(common.VizOrientation.HORIZONTAL)
            .show_value(common.VisibilityMode.ALWAYS).height(10).span(12)
        )
        .with_panel(
            piechart.Panel().id(8).title("Children on CP plans by category")
            .description("Children on an active child protection plan, by CIN census category.")
            .datasource(datasource())
            .with_target(SQL(f"""
                SELECT category, children
                FROM ({measures.cp_plans_by_category(child_filters)})
                ORDER BY category
                """))
            .reduce_options(common_sdk.ReduceDataOptions().values(True).calcs(["lastNotNull"]))
            .display_labels(NAME_AND_VALUE).height(10).span(6)
        )
        .with_panel(
            piechart.Panel().id(9).title("Children by CSE risk")
            .description("Children by the level of their latest CSE assessment (none not shown).")
            .datasource(datasource())
            .with_target(SQL(f"""
                SELECT cse_level AS level, count() AS children
                FROM child_state FINAL
                WHERE cse_level != 'none' AND NOT retired
                  AND {child_filters}
                GROUP BY level
                ORDER BY level
                """))
            .reduce_options(common_sdk.ReduceDataOptions().values(True).calcs(["lastNotNull"]))
            .display_labels(NAME_AND_VALUE).height(10).span(6)
        )
        .with_row(sdk.Row("Trends").id(102))
        .with_panel(_series(
            10, "Trends", "Missing episodes started, alerts raised (not withdrawn) and domestic abuse incidents, "
            "per day.",
            SQL(measures.missing_episodes_by_time(BOARD_PERIOD, "$__timeInterval(started_at)", episode_filters),
                "A", series=True),
            SQL(f"""
                SELECT $__timeInterval(opened_at) AS time, count() AS alerts_raised
                FROM alerts FINAL
                WHERE status != 'withdrawn'
                  AND $__timeFilter(opened_at)
                  AND {alert_filters}
                GROUP BY time
                ORDER BY time
                """, "B", series=True),
            SQL(f"""
                SELECT $__timeInterval(occurred_at) AS time, count() AS da_incidents
                FROM events FINAL
                WHERE event_type = 'da.incident'
                  AND $__timeFilter(occurred_at)
                  AND {event_in_ward()}
                  AND {event_from_agency()}
                GROUP BY time
                ORDER BY time
                """, "C", series=True),
        ))
    )


# --- CMOG meeting list ------------------------------------------------------------------------------

MEETING_CHILDREN = """
SELECT
    c.child_key AS child,
    c.age_band AS age_band,
    arrayStringConcat(arrayFilter(flag -> flag != '', [
        if(c.cp_plan_active, concat('CP plan', if(c.cp_category IS NULL, '', concat(' ', c.cp_category))), ''),
        if(c.looked_after, 'looked after', ''),
        if(c.cse_level != 'none', concat('CSE ', c.cse_level), ''),
        if(c.missing_now, 'missing now', ''),
        if(c.learning_disability, 'learning disability', '')
    ]), ', ') AS flags,
    c.cp_plan_active AS cp_plan,
    c.looked_after AS looked_after,
    c.cse_level AS cse_level,
    c.episodes_30d AS episodes_30d,
    c.episodes_90d AS episodes_90d,
    c.last_interview_at AS last_return_interview,
    arrayStringConcat(arraySort(c.agencies), ', ') AS agencies_involved,
    a.open_alerts AS open_alerts,
    a.new_alerts AS new_alerts,
    a.rules AS alert_rules,
    a.oldest_opened_at AS oldest_open_alert
FROM child_state AS c FINAL
INNER JOIN (
    SELECT subject,
           count() AS open_alerts,
           countIf({unreviewed}) AS new_alerts,
           arrayStringConcat(arraySort(groupUniqArray(rule)), ', ') AS rules,
           min(opened_at) AS oldest_opened_at
    FROM alerts FINAL
    WHERE status = 'open' AND subject_kind = 'child'
    GROUP BY subject
) AS a ON a.subject = c.child_key
WHERE NOT c.retired
  AND {ward}
  AND {agency}
ORDER BY open_alerts DESC, oldest_open_alert, child
"""

MEETING_PLACES = """
SELECT
    a.subject AS place,
    a.rule AS rule,
    a.opened_at AS opened_at,
    a.summary AS summary,
    p.category AS premises_category,
    p.ward AS ward
FROM alerts AS a FINAL
LEFT JOIN (
    SELECT place_key, any(premises_category) AS category, ifNull(any(ward_name), any(ward_code)) AS ward
    FROM place_links
    GROUP BY place_key
) AS p ON p.place_key = a.subject
WHERE a.status = 'open' AND a.subject_kind = 'place'
  AND {ward}
ORDER BY a.opened_at DESC, place
"""


def cmog_meeting(rules: RulesConfig) -> sdk.Dashboard:
    children = MEETING_CHILDREN.format(ward=child_in_ward("c.child_key"), agency=child_with_agency("c.child_key"),
                                       unreviewed=measures.alert_unreviewed(BOARD_PERIOD.end))
    places = MEETING_PLACES.format(ward=subject_in_ward("a.subject"))
    return (
        _board(MEETING_UID, "CMOG meeting list",
               "The children and places to discuss: everyone with an open alert, with the flags and history the "
               "meeting needs. Child keys are pseudonymous; open one for the child's timeline.", rules, "now-30d")
        .with_variable(ward_variable())
        .with_variable(agency_variable())
        .with_panel(
            _table(1, "Children with open alerts",
                   "One row per child with at least one open alert. Flags: CP plan (category), looked after, "
                   "CSE level, missing now. New alerts: open ones no CMOG review has named yet. Click a child key "
                   "for the child's timeline.",
                   SQL(dedent_sql(children)))
            .height(16).span(24)
            .sort_by([common_sdk.TableSortByFieldState().display_name("open_alerts").desc(True)])
            .override_by_name("child", [links_property(timeline_link())])
            .override_by_name("open_alerts", [
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
                model.DynamicConfigValue(id_val="thresholds", value=thresholds(
                    (None, ORANGE), (3, RED)).build()),
            ])
        )
        .with_panel(
            _table(2, "Places with open alerts",
                   "Hotspots and places linking children at CSE risk (hotspot_emerging, linked_children).",
                   SQL(dedent_sql(places)))
            .height(9).span(24)
        )
    )


# --- CMOG agenda ------------------------------------------------------------------------------------

AGENDA_UID = "sgi-cmog-agenda"

# Open actions (neither done nor cancelled), overdue ones first, by owning agency.
AGENDA_ACTIONS = """
SELECT
    owner_agency,
    child_key AS child,
    action_kind,
    due_at,
    due_at < {as_of} AS overdue
FROM {actions}
WHERE ended_at IS NULL
  AND {agency}
ORDER BY overdue DESC, owner_agency, due_at, child
"""


def cmog_agenda(rules: RulesConfig) -> sdk.Dashboard:
    """The agenda (report/measures.py `agenda`, the same ranking as `sgi agenda`) as of the end of the range,
    with the open actions and each agency's accountability."""
    as_of = BOARD_PERIOD.end
    weights = ", ".join(f"{rule} {weight}" for rule, weight in rules.agenda.weights.items() if weight > 0)
    return (
        _board(AGENDA_UID, "CMOG agenda",
               "The children the CMOG discusses, ranked by priority: the sum of the weights of the distinct rules "
               "among the child's new alerts (open, not yet named in a CMOG review), as of the end of the time "
               "range. Child keys are pseudonymous; open one for the child's timeline.", rules, "now-30d")
        .with_variable(agency_variable())
        .with_panel(
            _table(1, "Agenda: children ranked by priority",
                   f"Rank, priority and the rules that scored (weights: {weights}); ties go to the most recent "
                   f"alert. The meeting takes the top {rules.agenda.top}. On list: listed and not stepped down or "
                   "closed since. Actions: open and overdue (neither done nor cancelled by their due time). Last "
                   "review and its decision.",
                   SQL(measures.agenda(as_of, rules.agenda.weights)))
            .height(14).span(24)
            .override_by_name("child_key", [links_property(timeline_link())])
            .override_by_name("overdue_actions", [
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
                model.DynamicConfigValue(id_val="thresholds", value=thresholds((None, GREEN), (1, RED)).build()),
            ])
        )
        .with_panel(
            _table(2, "Open actions by agency, overdue first",
                   "Every action set by the CMOG that is neither done nor cancelled, by owning agency; overdue: "
                   "its due time has passed.",
                   SQL(AGENDA_ACTIONS.format(as_of=as_of, actions=measures.cmog_actions(as_of),
                                             agency=event_from_agency("owner_agency"))))
            .height(10).span(14)
            .override_by_name("child", [links_property(timeline_link())])
        )
        .with_panel(
            _table(3, "Accountability: actions by owning agency",
                   "Actions set on each agency by the end of the range: done in time (by their due time), done "
                   "late, and overdue now (neither done nor cancelled, due time passed). The agency variable "
                   "picks owning agencies.",
                   SQL(f"""
                       SELECT *
                       FROM ({measures.accountability(as_of)})
                       WHERE {event_from_agency("owner_agency")}
                       """))
            .height(10).span(10)
        )
    )


# --- Child timeline ---------------------------------------------------------------------------------

# Every key the child has been known by: the canonical key and the keys merged into it.
CHILD = selected_one("child")
CHILD_KEYS = f"arrayConcat([{CHILD}], (SELECT any(merged_keys) FROM child_state FINAL WHERE child_key = {CHILD}))"

CHILD_VARIABLE_QUERY = """
SELECT child_key
FROM child_state FINAL
WHERE NOT retired
  AND (child_key IN (SELECT subject FROM alerts FINAL WHERE status = 'open' AND subject_kind = 'child')
       OR ($__timeFilter(last_event_at)))
ORDER BY child_key
"""


def child_variable() -> sdk.QueryVariable:
    return (
        sdk.QueryVariable("child")
        .label("Child (pseudonymous key)")
        .description("Children with an open alert or an event in the period.")
        .datasource(datasource())
        .query(dedent_sql(CHILD_VARIABLE_QUERY))
        .multi(False)
        .include_all(False)
        .allow_custom_value(False)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
    )


def child_timeline(rules: RulesConfig) -> sdk.Dashboard:
    rhi_seconds = _seconds(rules.rules.rhi_overdue.hours)
    child_events = f"hasAny(child_keys, {CHILD_KEYS})"
    return (
        _board(TIMELINE_UID, "Child timeline",
               "One child's events, missing episodes, assessments and alerts over time, across every key the "
               "child has been known by.", rules, "now-90d")
        .with_variable(child_variable())
        .with_panel(
            _table(1, "The child now", "The child's current state (pseudonymous; no names or dates of birth).",
                   SQL(f"""
                    SELECT child_key AS child, age_band, sex, looked_after, learning_disability, cse_level,
                           cp_plan_active AS cp_plan, cp_category, missing_now, episodes_30d, episodes_90d,
                           da_incidents_12m, last_interview_at AS last_return_interview,
                           arrayStringConcat(arraySort(agencies), ', ') AS agencies_involved,
                           length(merged_keys) AS merged_records, last_event_at
                    FROM child_state FINAL
                    WHERE child_key = {CHILD}
                    """))
            .height(5).span(24)
        )
        .with_panel(
            statetimeline.Panel().id(2).title("Missing, CP plan and CSE risk")
            .description("Missing episodes (with police risk), child protection plans and CSE risk levels, "
                         "each state lasting until the next event.")
            .datasource(datasource())
            .with_target(SQL(f"""
                SELECT occurred_at AS time,
                       multiIf(event_type = 'missing.ended', 'returned',
                               police_risk IS NULL, 'missing',
                               concat('missing (', police_risk, ' risk)')) AS missing
                FROM events FINAL
                WHERE event_type IN ('missing.started', 'missing.risk_graded', 'missing.ended')
                  AND {child_events}
                  AND $__timeFilter(occurred_at)
                ORDER BY time
                """, "A"))
            .with_target(SQL(f"""
                SELECT occurred_at AS time,
                       if(event_type = 'cp_plan.ended', 'no plan',
                          concat('CP plan', if(cp_category IS NULL, '', concat(' ', cp_category)))) AS cp_plan
                FROM events FINAL
                WHERE event_type IN ('cp_plan.started', 'cp_plan.category_changed', 'cp_plan.ended')
                  AND {child_events}
                  AND $__timeFilter(occurred_at)
                ORDER BY time
                """, "B"))
            .with_target(SQL(f"""
                SELECT occurred_at AS time, concat('CSE ', ifNull(cse_level, 'unknown')) AS cse_risk
                FROM events FINAL
                WHERE event_type = 'cse.risk_assessed'
                  AND {child_events}
                  AND $__timeFilter(occurred_at)
                ORDER BY time
                """, "C"))
            .show_value(common.VisibilityMode.AUTO).merge_values(True).row_height(0.8)
            .height(8).span(24)
        )
        .with_panel(
            _table(3, "Events", "Every event about the child in the period, newest first.", SQL(f"""
                SELECT occurred_at, event_type, agency, recorded_at, ward_name, postcode_sector, premises_category,
                       episode_ref, police_risk, cse_level, dash_score, dash_risk, marac_referred, cp_category,
                       previous_plans, arrayStringConcat(disclosures, ', ') AS disclosure_list, event_id
                FROM events FINAL
                WHERE {child_events}
                  AND $__timeFilter(occurred_at)
                ORDER BY occurred_at DESC, event_id
                LIMIT 1000
                """))
            .height(10).span(24)
        )
        .with_panel(
            _table(4, "Missing episodes",
                   f"Episodes in the period (and any still open). interview_in_time: a return interview completed "
                   f"or declined within {rules.rules.rhi_overdue.hours:g} h of return.", SQL(f"""
                SELECT episode_ref, started_at, ended_at,
                       round(dateDiff('minute', started_at, ifNull(ended_at, now64(3, 'UTC'))) / 60, 1)
                           AS hours_missing,
                       classification, setting, police_risk, interview, interview_at,
                       {measures.interview_in_time(rhi_seconds, measures.row_interview_done_at())}
                           AS interview_in_time,
                       arrayStringConcat(data_quality, ', ') AS data_quality_flags
                FROM episodes FINAL
                WHERE child_key = {CHILD}
                  AND (ended_at IS NULL OR ($__timeFilter(started_at)))
                ORDER BY started_at DESC, episode_ref
                """))
            .height(9).span(12)
        )
        .with_panel(
            _table(5, "Alerts", "The child's alerts: open ones, and any raised in the period (never withdrawn "
                   "ones).", SQL(f"""
                SELECT rule, status, opened_at, resolved_at, summary, length(evidence) AS evidence_events, alert_id
                FROM alerts FINAL
                WHERE subject_kind = 'child'
                  AND subject = {CHILD}
                  AND status != 'withdrawn'
                  AND (status = 'open' OR ($__timeFilter(opened_at)))
                ORDER BY opened_at DESC, alert_id
                """))
            .height(9).span(12)
        )
    )


# --- Hotspots ---------------------------------------------------------------------------------------

PLACES_IN_PERIOD = """
SELECT
    place_key AS place,
    any(place_kind) AS kind,
    max(premises_category) AS category,
    max(premises_name) AS name,
    ifNull(max(ward_name), max(ward_code)) AS ward,
    max(postcode_sector) AS sector,
    (min(lat_min) + max(lat_max)) / 2 AS latitude,
    (min(lon_min) + max(lon_max)) / 2 AS longitude,
    length(groupUniqArrayArray(children)) AS children_linked,
    length(groupUniqArrayArray(children_at_cse_risk)) AS children_at_risk,
    length(groupUniqArrayArray(events)) AS events_linked{extra}
FROM places
WHERE $__dateFilter(day)
  AND {where}
  AND {ward}
GROUP BY place_key
HAVING {having}
ORDER BY children_linked DESC, children_at_risk DESC, place
LIMIT {limit}
"""


def hotspots(rules: RulesConfig) -> sdk.Dashboard:
    linked = rules.rules.linked_children
    window_days = round(max(rules.rules.hotspot_emerging.window_days, linked.window_days))
    map_query = PLACES_IN_PERIOD.format(extra="", where="place_kind = 'premises'", ward=place_in_ward(),
                                        having="latitude IS NOT NULL", limit=500)
    table_query = PLACES_IN_PERIOD.format(
        extra=",\n    arrayStringConcat(arraySort(groupUniqArrayArray(children)), ', ') AS linked_children",
        where="1 = 1", ward=place_in_ward(), having=f"children_linked >= {linked.count}", limit=200)
    markers = (
        common_sdk.MapLayerOptions().type("markers").name("Places").tooltip(True)
        .location(common_sdk.FrameGeometrySource().mode(common.FrameGeometrySourceMode.COORDS)
                  .latitude("latitude").longitude("longitude"))
        .config({
            "showLegend": True,
            "style": {
                "color": {"field": "children_at_risk", "fixed": "dark-green"},
                "opacity": 0.7,
                "size": {"field": "children_linked", "fixed": 5, "min": 4, "max": 24},
                "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
            },
        })
    )
    return (
        _board(HOTSPOTS_UID, "Hotspots",
               "Places children are linked to (last seen, found, named in a return interview): where they are, "
               f"how many children, and which. Default period: the place rules' {window_days}-day window.",
               rules, f"now-{window_days}d")
        .with_variable(ward_variable())
        .with_panel(
            geomap.Panel().id(1).title("Places linked to children")
            .description("Premises with a location; marker size = distinct children, colour = children at CSE "
                         "risk (medium/high) when linked.")
            .datasource(datasource())
            .with_target(SQL(dedent_sql(map_query)))
            # The SDK types lat/lon as int; Grafana reads any number, and a city needs the decimals.
            .view(geomap.MapViewConfig().id("fit").lat(52.41).lon(-1.51).zoom(12))  # type: ignore[arg-type]
            .layers([markers])
            .thresholds(thresholds((None, GREEN), (1, ORANGE), (2, RED)))
            .height(14).span(14)
        )
        .with_panel(
            _table(2, f"Places linking {linked.count} or more children",
                   "Every place key (premises, postcode sector, ward) with the children linked to it in the period.",
                   SQL(dedent_sql(table_query)))
            .height(14).span(10)
        )
        .with_panel(
            _table(3, "Place alerts", "hotspot_emerging and linked_children alerts: open ones and any raised in the "
                   "period.", SQL(f"""
                SELECT opened_at, rule, status, subject AS place, summary, resolved_at
                FROM alerts FINAL
                WHERE subject_kind = 'place'
                  AND status != 'withdrawn'
                  AND (status = 'open' OR ($__timeFilter(opened_at)))
                  AND {subject_in_ward()}
                ORDER BY opened_at DESC, place
                LIMIT 500
                """))
            .height(9).span(24)
        )
    )


# --- Data quality -----------------------------------------------------------------------------------


def data_quality(rules: RulesConfig) -> sdk.Dashboard:
    health = rules.pipeline_health
    silence_seconds = _seconds(health.agency_silence_hours)
    lateness_seconds = round(rules.lateness.total_seconds())
    lateness_hours = rules.lateness_days * 24
    agency = event_from_agency()
    return (
        _board(DATA_QUALITY_UID, "Data quality",
               "Is every agency's feed arriving, on time and valid? Event volumes, dead letters, lateness and "
               "pipeline lag.", rules, "now-7d")
        .refresh("1m")
        .with_variable(agency_variable())
        .with_panel(_stat(1, "Pipeline lag", "Time since the newest event reached ClickHouse (now - max ingested_at).",
                          """
            SELECT dateDiff('second', max(ingested_at), now64(3, 'UTC')) AS seconds_since_last_event
            FROM events
            """, unit="s").thresholds(thresholds((None, GREEN), (silence_seconds / 4, ORANGE),
                                                 (silence_seconds, RED))))
        .with_panel(_stat(2, "Dead letters", "Rejected messages received in the period.", f"""
            SELECT uniqExact(topic, partition, offset) AS dead_letters
            FROM deadletter FINAL
            WHERE $__timeFilter(received_at)
              AND {agency}
            """).thresholds(thresholds((None, GREEN), (1, ORANGE), (health.deadletter_spike_per_hour, RED))))
        .with_panel(_stat(3, f"Events later than {rules.lateness_days:g} days",
                          "Events that arrived (ingested) in the period more than the pipeline's lateness bound "
                          "after they occurred: too late for the rules to judge in event time.", f"""
            SELECT countIf(lateness_seconds > {lateness_seconds}) AS beyond_lateness_bound
            FROM events FINAL
            WHERE $__timeFilter(ingested_at)
              AND {agency}
            """).thresholds(thresholds((None, GREEN), (1, ORANGE))))
        .with_panel(_stat(4, "Events in the period", "Accepted events that occurred in the period.", f"""
            SELECT count() AS events
            FROM events FINAL
            WHERE $__timeFilter(occurred_at)
              AND {agency}
            """).thresholds(thresholds((None, BLUE))))
        .with_panel(_stat(5, f"Agencies silent > {health.agency_silence_hours:g} h",
                          "Agencies whose newest event reached ClickHouse longer ago than the agency-silence alert's "
                          "threshold (pipeline_health.agency_silence_hours).", f"""
            SELECT countIf(hours_since_last_event > {health.agency_silence_hours:g}) AS silent_agencies
            FROM (
                SELECT agency, dateDiff('second', max(ingested_at), now64(3, 'UTC')) / 3600 AS hours_since_last_event
                FROM events
                WHERE {agency}
                GROUP BY agency
            )
            """).thresholds(thresholds((None, GREEN), (1, RED))))
        .with_panel(_stat(6, "Episodes with data-quality flags",
                          "Missing episodes changed in the period that carry a flag (e.g. ended without a start).",
                          f"""
            SELECT countIf(notEmpty(data_quality)) AS flagged_episodes
            FROM episodes FINAL
            WHERE $__timeFilter(changed_at)
              AND {child_with_agency()}
            """).thresholds(thresholds((None, GREEN), (1, ORANGE))))
        .with_panel(_series(7, "Events by agency", "Accepted events by source agency, by when they occurred.", SQL(f"""
            SELECT $__timeInterval(occurred_at) AS time, agency, count() AS events
            FROM events FINAL
            WHERE $__timeFilter(occurred_at)
              AND {agency}
            GROUP BY time, agency
            ORDER BY time, agency
            """, series=True), interval="1h"))
        .with_panel(
            _table(8, "Last event by agency",
                   f"When each agency's newest event arrived; red after {health.agency_silence_hours:g} h of silence "
                   "(the agency-silence alert's threshold).", SQL(f"""
                SELECT agency AS source_agency,
                       max(ingested_at) AS last_received,
                       max(occurred_at) AS last_occurred,
                       round(dateDiff('second', max(ingested_at), now64(3, 'UTC')) / 3600, 1) AS hours_since_last_event,
                       uniqExactIf(event_id, $__timeFilter(occurred_at)) AS events_in_period
                FROM events
                WHERE {agency}
                GROUP BY source_agency
                ORDER BY source_agency
                """))
            .height(9).span(12)
            .override_by_name("hours_since_last_event", [
                model.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
                model.DynamicConfigValue(id_val="thresholds", value=thresholds(
                    (None, GREEN), (health.agency_silence_hours, RED)).build()),
            ])
        )
        .with_panel(
            _table(9, "Dead letters by agency and error", "Rejected messages in the period by where they came from "
                   "and why (one message can break several rules).", SQL(f"""
                SELECT ifNull(agency, '(unknown)') AS source_agency,
                       ifNull(event_type, '(unknown)') AS type,
                       error_loc,
                       error_msg,
                       uniqExact(topic, partition, offset) AS messages,
                       max(received_at) AS last_received
                FROM deadletter FINAL
                WHERE $__timeFilter(received_at)
                  AND {agency}
                GROUP BY source_agency, type, error_loc, error_msg
                ORDER BY messages DESC, last_received DESC, source_agency, error_loc
                LIMIT 500
                """))
            .height(9).span(12)
        )
        .with_panel(
            _series(10, "Dead letters per hour",
                    f"Rejected messages per hour by agency; the line is the dead-letter spike alert's threshold "
                    f"({health.deadletter_spike_per_hour}/h).", SQL(f"""
                SELECT $__timeInterval(received_at) AS time,
                       ifNull(agency, '(unknown)') AS source_agency,
                       uniqExact(topic, partition, offset) AS dead_letters
                FROM deadletter FINAL
                WHERE $__timeFilter(received_at)
                  AND {agency}
                GROUP BY time, source_agency
                ORDER BY time, source_agency
                """, series=True), interval="1h")
            .draw_style(common.GraphDrawStyle.BARS)
            .thresholds(thresholds((None, GREEN), (health.deadletter_spike_per_hour, RED)))
            .thresholds_style(common_sdk.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE))
            .height(8).span(12)
        )
        .with_panel(
            _series(11, "Lateness (hours)",
                    f"How long after they occurred events arrived, by arrival time; the line is the pipeline's "
                    f"lateness bound ({rules.lateness_days:g} days).", SQL(f"""
                SELECT $__timeInterval(ingested_at) AS time,
                       quantile(0.5)(lateness_seconds) / 3600 AS median_hours,
                       quantile(0.95)(lateness_seconds) / 3600 AS p95_hours
                FROM events FINAL
                WHERE $__timeFilter(ingested_at)
                  AND {agency}
                GROUP BY time
                ORDER BY time
                """, series=True), interval="1h")
            .unit("h")
            .thresholds(thresholds((None, GREEN), (lateness_hours, RED)))
            .thresholds_style(common_sdk.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.LINE))
            .height(8).span(12)
        )
        .with_panel(
            _table(12, "Lateness by agency", "Arrival delay (ingested - occurred) and recording delay (recorded - "
                   "occurred) for events that arrived in the period.", SQL(f"""
                SELECT agency AS source_agency,
                       count() AS events,
                       round(quantile(0.5)(lateness_seconds) / 3600, 1) AS median_lateness_hours,
                       round(quantile(0.95)(lateness_seconds) / 3600, 1) AS p95_lateness_hours,
                       countIf(lateness_seconds > {lateness_seconds}) AS beyond_lateness_bound,
                       round(quantile(0.5)(recording_lag_seconds) / 3600, 1) AS median_recording_lag_hours
                FROM events FINAL
                WHERE $__timeFilter(ingested_at)
                  AND {agency}
                GROUP BY source_agency
                ORDER BY source_agency
                """))
            .height(8).span(12)
        )
    )


BOARDS = {
    "cmog-overview": cmog_overview,
    "cmog-meeting-list": cmog_meeting,
    "cmog-agenda": cmog_agenda,
    "child-timeline": child_timeline,
    "hotspots": hotspots,
    "data-quality": data_quality,
}


def dashboards(rules: RulesConfig) -> dict[str, sdk.Dashboard]:
    """File stem -> the board's builder."""
    return {stem: build(rules) for stem, build in BOARDS.items()}
