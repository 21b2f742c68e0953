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
    """Open alerts by rule and subject kind (child or place); new_alerts: those no review has named yet."""
    return f"""
        SELECT rule, subject_kind, count() AS alerts, countIf({alert_unreviewed(as_of)}) AS new_alerts
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


# --- the CMOG's own records (contract v1.1) ---------------------------------------------------------
# EVENTS.md: an alert is reviewed once a cmog.reviewed names its id (reviewed_at: the earliest such review's
# occurred_at); it keeps its open/resolved status. "New" means unreviewed. Read from the events, so the
# figure holds whether or not the core has stamped alerts.reviewed_at yet.

ACTION_ENDS = "('done', 'cancelled')"
OFF_LIST_DECISIONS = "('step_down', 'close')"


def alert_reviews(as_of: str) -> str:
    """A subquery: (alert_id, reviewed_at) for every alert named in a cmog.reviewed by `as_of`."""
    return f"""(
        SELECT alert_id, min(occurred_at) AS reviewed_at
        FROM (
            SELECT arrayJoin(alert_ids) AS alert_id, occurred_at
            FROM events FINAL
            WHERE event_type = 'cmog.reviewed' AND occurred_at <= {as_of}
        )
        GROUP BY alert_id
    )"""


def alert_unreviewed(as_of: str, column: str = "alert_id") -> str:
    """An alert no cmog.reviewed had named by `as_of`: "new"."""
    return f"{column} NOT IN (SELECT alert_id FROM {alert_reviews(as_of)})"


def canonical_keys() -> str:
    """A subquery: (key, canonical) for every key merged into a child. Events keep their first identifier's
    key; alerts and child_state use the canonical one."""
    return """(
        SELECT arrayJoin(merged_keys) AS key, child_key AS canonical
        FROM child_state FINAL
        WHERE NOT retired
    )"""


def cmog_records(as_of: str) -> str:
    """A subquery: the CMOG's records (cmog.* events) by `as_of`, each under its child's canonical key."""
    return f"""(
        SELECT
            e.event_id AS event_id,
            e.event_type AS event_type,
            e.occurred_at AS occurred_at,
            if(empty(ifNull(m.canonical, '')), e.child_key, m.canonical) AS child_key,
            e.decision AS decision,
            e.alert_ids AS alert_ids,
            e.action_ref AS action_ref,
            e.owner_agency AS owner_agency,
            e.due_at AS due_at,
            e.action_kind AS action_kind,
            e.action_status AS action_status
        FROM events AS e FINAL
        LEFT JOIN {canonical_keys()} AS m ON m.key = e.child_key
        WHERE e.event_type LIKE 'cmog.%' AND e.occurred_at <= {as_of}
    )"""


def cmog_actions(as_of: str) -> str:
    """A subquery: one row per action (action_ref) set by `as_of`. The latest cmog.action.set gives its child,
    owner, due time and kind; the first done or cancelled update ends it (ended_at, end_status NULL while open)."""
    is_set = "event_type = 'cmog.action.set'"
    is_end = f"event_type = 'cmog.action.updated' AND action_status IN {ACTION_ENDS}"
    return f"""(
        SELECT
            action_ref,
            argMaxIf(child_key, (occurred_at, event_id), {is_set}) AS child_key,
            argMaxIf(owner_agency, (occurred_at, event_id), {is_set}) AS owner_agency,
            argMaxIf(due_at, (occurred_at, event_id), {is_set}) AS due_at,
            argMaxIf(action_kind, (occurred_at, event_id), {is_set}) AS action_kind,
            minIf(toNullable(occurred_at), {is_end}) AS ended_at,
            argMinIf(action_status, (occurred_at, event_id), {is_end}) AS end_status
        FROM {cmog_records(as_of)}
        WHERE action_ref IS NOT NULL
        GROUP BY action_ref
        HAVING countIf({is_set}) > 0
    )"""


def accountability(as_of: str) -> str:
    """Actions by owning agency: set, done in time (done by due_at), done late, overdue now (neither done
    nor cancelled and due_at before `as_of`; at exactly due_at an action is not overdue yet)."""
    return f"""
        SELECT
            owner_agency,
            count() AS actions_set,
            countIf(end_status = 'done' AND ended_at <= due_at) AS done_in_time,
            countIf(end_status = 'done' AND ended_at > due_at) AS done_late,
            countIf(ended_at IS NULL AND due_at < {as_of}) AS overdue_now
        FROM {cmog_actions(as_of)}
        GROUP BY owner_agency
        ORDER BY overdue_now DESC, owner_agency"""


def _weight_of(rule: str, weights: dict[str, int]) -> str:
    names = sql_strings(weights)
    values = ", ".join(str(int(weight)) for weight in weights.values())
    return f"transform({rule}, [{names}], [{values}], 0)" if weights else "0"


def agenda(as_of: str, weights: dict[str, int]) -> str:
    """The CMOG agenda as SQL, the same ranking as report/agenda.py's `rank`: every child with a priority
    above 0, where priority is the sum of the weights of the distinct rules among its open unreviewed alerts;
    ties go to the most recent scoring alert, then the key. With on-list, open and overdue actions, and the
    last review and its decision."""
    weight = _weight_of("rule", weights)
    return f"""
        WITH
            scoring AS (
                SELECT subject AS child_key, rule, opened_at
                FROM alerts FINAL
                WHERE subject_kind = 'child' AND {alert_open_at(as_of)} AND {alert_unreviewed(as_of)}
                  AND {weight} > 0
            ),
            ranked AS (
                SELECT
                    child_key,
                    arraySort(groupUniqArray(rule)) AS rules,
                    toInt64(arraySum(arrayMap(rule -> {weight}, groupUniqArray(rule)))) AS priority,
                    max(opened_at) AS latest_alert_at
                FROM scoring
                GROUP BY child_key
            ),
            records AS (
                SELECT
                    child_key,
                    maxIf(toNullable(occurred_at), event_type = 'cmog.listed') AS listed_at,
                    maxIf(toNullable(occurred_at),
                          event_type = 'cmog.reviewed' AND decision IN {OFF_LIST_DECISIONS}) AS off_at,
                    maxIf(toNullable(occurred_at), event_type = 'cmog.reviewed') AS last_review,
                    argMaxIf(decision, (occurred_at, event_id), event_type = 'cmog.reviewed') AS last_decision
                FROM {cmog_records(as_of)}
                GROUP BY child_key
            ),
            actions AS (
                SELECT
                    child_key,
                    countIf(ended_at IS NULL) AS open_actions,
                    countIf(ended_at IS NULL AND due_at < {as_of}) AS overdue_actions
                FROM {cmog_actions(as_of)}
                GROUP BY child_key
            )
        SELECT
            toUInt32(row_number() OVER (ORDER BY r.priority DESC, r.latest_alert_at DESC, r.child_key)) AS rank,
            r.child_key AS child_key,
            r.priority AS priority,
            r.rules AS rules,
            ifNull(c.listed_at IS NOT NULL AND (c.off_at IS NULL OR c.listed_at > c.off_at), false) AS on_list,
            toUInt64(ifNull(a.open_actions, 0)) AS open_actions,
            toUInt64(ifNull(a.overdue_actions, 0)) AS overdue_actions,
            c.last_review AS last_review,
            c.last_decision AS last_decision
        FROM ranked AS r
        LEFT JOIN records AS c ON c.child_key = r.child_key
        LEFT JOIN actions AS a ON a.child_key = r.child_key
        ORDER BY rank"""
