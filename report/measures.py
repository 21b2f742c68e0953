"""The figures the CMOG reads, each written once as a named SQL fragment: the meeting pack and the Grafana
boards (grafana/dashboards.py) build their queries from these, so a board and the pack cannot disagree.

A fragment reads the store's tables by their bare names (the client's or the datasource's database), the
ReplacingMergeTree tables with FINAL. A `Period` says how the caller writes the period's bounds: the pack
as query parameters, a board as the ClickHouse plugin's time macros.

Missing episodes are counted by their reference. Before the MASH links two identifiers, each one's key
holds the part of an episode it saw (one row of `episodes` per key); after the merge the surviving key
holds the whole episode and the retired key's row stays. Counting rows would count such an episode
twice, and reading only the surviving keys would lose the part of an episode whose keys are not linked
yet; `episodes_by_reference` takes each episode once, with its first start, first return and first
interview over all of its rows, as the stream's own episode view (streams/core/view.py) takes them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sinks.migrate import sql_string

# What meets the return-interview need: completed, or declined by the child (an offer alone does not).
INTERVIEW_DONE = "('completed', 'declined')"


@dataclass(frozen=True)
class Period:
    """SQL expressions for a period's first moment and its end (the as-of moment)."""

    start: str
    end: str


# The pack binds the period as query parameters; a board as the plugin's macros for the chosen range.
PACK_PERIOD = Period("{start:DateTime64(3, 'UTC')}", "{end:DateTime64(3, 'UTC')}")
BOARD_PERIOD = Period("$__fromTime", "$__toTime")


def sql_strings(values: Iterable[str]) -> str:
    return ", ".join(sql_string(value) for value in values)


# --- missing episodes and return interviews ---------------------------------------------------------


def episodes_by_reference(row_filter: str = "1") -> str:
    """A subquery: one row per missing episode (episode_ref) of the `episodes` rows that pass `row_filter`.

    latest_child_key is the key written last (after a merge, the surviving key; named apart from child_key so
    that `row_filter` still reads the rows' own key); started_at and ended_at the first start and first return;
    interview_done_at the first interview completed or declined."""
    return f"""(
        SELECT
            episode_ref,
            argMax(child_key, changed_at) AS latest_child_key,
            min(started_at) AS started_at,
            min(ended_at) AS ended_at,
            minIf(interview_at, interview IN {INTERVIEW_DONE}) AS interview_done_at
        FROM episodes FINAL
        WHERE {row_filter}
        GROUP BY episode_ref
    )"""


def interview_in_time(rhi_seconds: int, done_at: str = "interview_done_at") -> str:
    """Return interview in time: completed or declined within the rhi_overdue rule's deadline of the return.
    `done_at`: the moment the interview was done (NULL when it was not)."""
    return f"{done_at} <= ended_at + INTERVAL {rhi_seconds} SECOND"


def row_interview_done_at() -> str:
    """`done_at` for one row of `episodes` (as the child timeline lists them)."""
    return f"if(interview IN {INTERVIEW_DONE}, interview_at, NULL)"


def return_due(period: Period, rhi_seconds: int) -> str:
    """A return counts once its deadline has passed by the period's end: returned in the period, due by its end."""
    return f"ended_at >= {period.start} AND ended_at + INTERVAL {rhi_seconds} SECOND <= {period.end}"


def missing_episodes(period: Period, row_filter: str = "1") -> str:
    """Missing episodes this period: episodes (by reference) that started in the period, and their children."""
    return f"""
        SELECT count() AS episodes, uniqExact(latest_child_key) AS children
        FROM {episodes_by_reference(row_filter)}
        WHERE started_at >= {period.start} AND started_at < {period.end}"""


def missing_episodes_by_time(period: Period, bucket: str, row_filter: str = "1") -> str:
    """Missing episodes started in the period, per `bucket` (an SQL expression of started_at named `time`)."""
    return f"""
        SELECT {bucket} AS time, count() AS missing_episodes
        FROM {episodes_by_reference(row_filter)}
        WHERE started_at >= {period.start} AND started_at < {period.end}
        GROUP BY time
        ORDER BY time"""


def return_interviews(period: Period, rhi_seconds: int, row_filter: str = "1") -> str:
    """Return interviews in time: of the returns due in the period, how many had one in time."""
    return f"""
        SELECT countIf({interview_in_time(rhi_seconds)}) AS within_deadline, count() AS returns
        FROM {episodes_by_reference(row_filter)}
        WHERE {return_due(period, rhi_seconds)}"""


def return_interviews_by_week(period: Period, rhi_seconds: int, time_zone: str) -> str:
    """Return interviews in time per week of return (local Mondays)."""
    return f"""
        SELECT
            toMonday(ended_at, {sql_string(time_zone)}) AS week,
            count() AS returns,
            countIf({interview_in_time(rhi_seconds)}) AS within_deadline
        FROM {episodes_by_reference()}
        WHERE {return_due(period, rhi_seconds)}
        GROUP BY week
        ORDER BY week"""


def children_missing(as_of: str, row_filter: str = "1") -> str:
    """Children missing at `as_of`: children with an episode started by then and not yet returned."""
    return f"""
        SELECT uniqExact(latest_child_key) AS children
        FROM {episodes_by_reference(row_filter)}
        WHERE started_at <= {as_of} AND (ended_at IS NULL OR ended_at > {as_of})"""


# --- alerts -----------------------------------------------------------------------------------------


def alert_open_at(as_of: str) -> str:
    """An alert open at `as_of`: raised by then and not yet resolved; a withdrawn alert never counts."""
    return f"status != 'withdrawn' AND opened_at <= {as_of} AND (resolved_at IS NULL OR resolved_at > {as_of})"


def open_alerts_by_rule(as_of: str, row_filter: str = "1") -> str:
    """Open alerts by rule and subject kind (child or place)."""
    return f"""
        SELECT rule, subject_kind, count() AS alerts
        FROM alerts FINAL
        WHERE {alert_open_at(as_of)}
          AND {row_filter}
        GROUP BY rule, subject_kind
        ORDER BY alerts DESC, rule, subject_kind"""


# --- children's latest records ----------------------------------------------------------------------


def high_cse_risk(child_filter: str = "1") -> str:
    """Children whose latest CSE assessment is high."""
    return f"""
        SELECT count() AS children
        FROM child_state FINAL
        WHERE NOT retired AND cse_level = 'high'
          AND {child_filter}"""


def cp_plans_by_category(child_filter: str = "1") -> str:
    """Children on an active child protection plan, by CIN census category."""
    return f"""
        SELECT ifNull(cp_category, 'unknown') AS category, count() AS children
        FROM child_state FINAL
        WHERE NOT retired AND cp_plan_active
          AND {child_filter}
        GROUP BY category
        ORDER BY children DESC, category"""


def repeat_cp_plans(period: Period, previous_plans_min: int, event_filter: str = "1") -> str:
    """Repeat CP plans: plans started in the period that are a second or later plan (the cp_repeat_plan rule)."""
    return f"""
        SELECT countIf(previous_plans >= {previous_plans_min}) AS repeat_plans, count() AS plans
        FROM events FINAL
        WHERE event_type = 'cp_plan.started'
          AND occurred_at >= {period.start} AND occurred_at < {period.end}
          AND {event_filter}"""


# --- places -----------------------------------------------------------------------------------------


def premises_ranked(excluded_categories: Iterable[str], column: str = "premises_category") -> str:
    """Premises worth ranking: not of the categories the place rules leave out (RulesConfig.place_exclude_categories,
    family and foster homes: the children linked to one are mostly the siblings who live there)."""
    excluded = sql_strings(excluded_categories)
    return f"({column} IS NULL OR {column} NOT IN ({excluded}))" if excluded else "1"
