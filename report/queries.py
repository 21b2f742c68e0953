"""What the meeting pack reads from the store: its queries, built from the shared measures (report/measures.py)
where a board shows the same figure, and the check that the store can give a pack at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from report import measures
from report.measures import PACK_PERIOD
from sinks.migrate import sql_string
from streams.core.config import RulesConfig

REQUIRED_TABLES = ("events", "episodes", "child_state", "alerts", "places")
SET_UP_HINT = "run `make demo` or `sgi db migrate` first"


class PackError(Exception):
    """The store cannot give a pack (missing database or tables, or no data yet)."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime  # the pack's as-of moment
    days: int


def rhi_seconds(config: RulesConfig) -> int:
    """The return interview deadline (the rhi_overdue rule's), in whole seconds as the boards use it."""
    return round(config.rules.rhi_overdue.hours * 3600)


def pack_queries(config: RulesConfig) -> dict[str, str]:
    """Every query of the pack, named by what it shows. Parameters: {start} and {end} bound the period
    (end = as of); {limit} caps a list; {children} are the agenda's children (report/agenda.py ranks them).
    Thresholds and the time zone come from the rules config, so the pack, the rules and the Grafana boards
    agree."""
    start, end = PACK_PERIOD.start, PACK_PERIOD.end
    open_at_end = measures.alert_open_at(end)
    deadline = rhi_seconds(config)
    zone = sql_string(config.timezone)
    return {
        "children_missing_now": measures.children_missing(end),
        "episodes_in_period": measures.missing_episodes(PACK_PERIOD),
        "return_interviews_within_deadline": measures.return_interviews(PACK_PERIOD, deadline),
        "open_alerts_by_rule": measures.open_alerts_by_rule(end),
        "high_cse_risk_children": measures.high_cse_risk(),
        "cp_plans_by_category": measures.cp_plans_by_category(),
        "repeat_cp_plans": measures.repeat_cp_plans(PACK_PERIOD, config.rules.cp_repeat_plan.previous_plans_min),
        "meeting_list": f"""
            WITH
                open_by_child AS (
                    SELECT subject AS child_key, count() AS open_alerts, arraySort(groupUniqArray(rule)) AS rules
                    FROM alerts FINAL
                    WHERE subject_kind = 'child' AND {open_at_end}
                      AND subject IN {{children:Array(String)}}
                    GROUP BY subject
                ),
                episodes_by_child AS (
                    SELECT
                        child_key,
                        countIf(started_at > {end} - INTERVAL 30 DAY AND started_at <= {end}) AS episodes_30d,
                        countIf(started_at > {end} - INTERVAL 90 DAY AND started_at <= {end}) AS episodes_90d,
                        countIf(started_at <= {end} AND (ended_at IS NULL OR ended_at > {end})) > 0 AS missing_now,
                        maxIf(interview_at, interview = 'completed' AND interview_at <= {end}) AS last_interview_at
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
        # Premises only (sector and ward links repeat the same events), of the categories the place rules judge.
        "top_places": f"""
            WITH open_by_place AS (
                SELECT subject AS place_key, count() AS open_alerts
                FROM alerts FINAL
                WHERE subject_kind = 'place' AND {open_at_end}
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
                    AND day >= toDate({start}, {zone}) AND day <= toDate({end}, {zone})
                GROUP BY place_key
                HAVING {measures.premises_ranked(config.place_exclude_categories, "category")}
            ) AS p
            LEFT JOIN open_by_place AS o ON o.place_key = p.place_key
            ORDER BY children DESC, children_at_cse_risk DESC, events DESC, place_key
            LIMIT {{limit:UInt32}}""",
        "return_interview_trend": measures.return_interviews_by_week(PACK_PERIOD, deadline, config.timezone),
    }


def check_store(client: Client, database: str) -> None:
    """Raise PackError unless `database` holds the tables the pack reads and some children."""
    exists = client.command("SELECT count() FROM system.databases WHERE name = {name:String}", {"name": database})
    if not int(str(exists)):
        raise PackError(f"database {database!r} does not exist: {SET_UP_HINT}")
    found = client.query(
        "SELECT name FROM system.tables WHERE database = {database:String}", parameters={"database": database}
    ).result_rows
    missing = sorted(set(REQUIRED_TABLES) - {row[0] for row in found})
    if missing:
        raise PackError(f"database {database!r} has no table {', '.join(missing)}: {SET_UP_HINT}")
    children = client.command(f"SELECT count() FROM {database}.child_state")
    if not int(str(children)):
        raise PackError(f"the store is empty (no children in {database}.child_state): {SET_UP_HINT}")


def run_query(client: Client, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    result = client.query(sql, parameters=parameters, settings={"join_use_nulls": 1})
    columns = list(result.column_names)
    return [dict(zip(columns, row, strict=True)) for row in result.result_rows]


def one(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return rows[0] if rows else {}

