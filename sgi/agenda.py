"""`sgi agenda`: the CMOG agenda, ranked by report/agenda.py, from the store or (`--replay FILE`) from a log.

Both modes rank with the same pure function; the replay runs the correlation core as `sgi replay` does and
takes the cmog.* records from the same log, with no storage, so a ranking (or a change of weights) can be
back-tested on history.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from models.derived import Fact
from report.agenda import CMOG_PREFIX, Agenda, alert_rows, rank, record_of, reviews
from report.labels import KEY_CHARS
from settings import MISSING_KEY, WorkerSettings, load_secret
from sgi.pack import parse_as_of, positive
from sgi.replay import Problem, parse_until, replay_lines
from streams.core.config import RulesConfig, load_rules
from streams.core.engine import Engine


def replay_agenda(
    lines: Iterable[bytes | str],
    secret: bytes,
    config: RulesConfig,
    until: datetime | None = None,
    top: int | None = None,
    on_problem: Problem | None = None,
) -> Agenda:
    """The agenda of a replayed log as of `until` (default: its latest occurred_at)."""
    engine = Engine(config)
    facts: list[Fact] = []
    latest: datetime | None = None  # the log's latest moment: the default as-of

    def keep(fact: Fact) -> None:
        nonlocal latest
        latest = fact.occurred_at if latest is None else max(latest, fact.occurred_at)
        if fact.event_type.startswith(CMOG_PREFIX):
            facts.append(fact)

    alerts = replay_lines(lines, secret, until, config, engine=engine, on_fact=keep, on_problem=on_problem)
    as_of = until if until is not None else (latest if latest is not None else datetime.now(UTC))
    # Events keep their first identifier's key; the agenda reads children by their canonical key.
    records = [record_of(fact, engine.identity.find(fact.child_keys[0])) for fact in facts]
    return rank(alert_rows(alerts, reviews(records, as_of)), records, config.agenda.weights, as_of,
                top if top is not None else config.agenda.top)


def store_agenda(config: RulesConfig, as_of: datetime, top: int | None = None) -> Agenda:
    """The agenda from the configured store (SGI_CLICKHOUSE_*)."""
    from report.agenda_store import load
    from settings import ClickHouseSettings
    from sinks.clickhouse import connect

    settings = ClickHouseSettings()
    client = connect(settings, create_database=False)
    try:
        client.database = settings.database
        alerts, records = load(client, as_of)
    finally:
        client.close()
    return rank(alerts, records, config.agenda.weights, as_of, top if top is not None else config.agenda.top)


def table_text(agenda: Agenda) -> str:
    """A plain text table, keys shortened as the pack shortens them."""
    header = ("rank", "child", "priority", "on list", "open actions", "overdue", "last review", "rules")
    rows = [header] + [
        (str(entry.rank), entry.child_key[:KEY_CHARS], str(entry.priority), "yes" if entry.on_list else "no",
         str(entry.open_actions), str(entry.overdue_actions),
         entry.last_review.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if entry.last_review else "-",
         ", ".join(entry.rules))
        for entry in agenda.entries
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]])
             for row in rows]
    lines.append(f"{len(agenda.entries)} children on the agenda as of {agenda.as_of.astimezone(UTC).isoformat()}; "
                 f"{agenda.rest} more with a priority above 0")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """The `sgi agenda` handler."""
    try:
        config = load_rules(WorkerSettings().rules)
    except (OSError, ValueError) as error:
        print(f"error: cannot load the rules config: {error}", file=sys.stderr)
        return 2
    if args.replay is not None:
        secret = load_secret()
        if secret is None:
            print(MISSING_KEY, file=sys.stderr)
            return 2

        def report(number: int, message: str) -> None:
            print(f"{args.replay}:{number}: {message}", file=sys.stderr)

        try:
            with Path(args.replay).open("rb") as handle:
                agenda = replay_agenda(handle, secret, config, args.until, args.top, report)
        except OSError as error:
            print(f"error: cannot read {args.replay}: {error}", file=sys.stderr)
            return 2
    else:
        from clickhouse_connect.driver.exceptions import Error as ClickHouseClientError

        from sgi.db import error_text

        as_of = args.as_of if args.as_of is not None else datetime.now(UTC)
        if not isinstance(as_of, datetime):
            as_of = datetime.combine(as_of, datetime.min.time(), tzinfo=config.zone).astimezone(UTC)
        try:
            agenda = store_agenda(config, as_of, args.top)
        except (ClickHouseClientError, OSError, ValueError) as error:
            print(f"error: cannot read the store: {error_text(error)}; run `make demo` or `sgi db migrate` first",
                  file=sys.stderr)
            return 2
    if args.format == "json":
        for entry in agenda.entries:
            print(json.dumps(entry.as_json()))
        print(f"{agenda.rest} more children with a priority above 0", file=sys.stderr)
    else:
        print(table_text(agenda))
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "agenda",
        help="the CMOG agenda: children ranked by the weights of their open unreviewed alerts' rules",
        description="Rank children for the CMOG meeting: priority is the sum of the weights (rules config, "
        "`agenda.weights`) of the distinct rules among a child's open alerts that no cmog.reviewed has named; "
        "ties go to the most recent alert. Prints the top N (`agenda.top`, default 30) with on-list, open and "
        "overdue actions and the last review, then how many more children have a priority. From the store "
        "(SGI_CLICKHOUSE_*), or with --replay from a JSON Lines log through the correlation core (no storage; "
        "needs SGI_PSEUDONYMISATION_KEY).",
    )
    parser.add_argument("--as-of", type=parse_as_of, default=None, metavar="TIMESTAMP",
                        help="the store's agenda at this moment, ISO 8601 (no offset means UTC; a bare date means "
                        "00:00 that day in the rules config's time zone); default now")
    parser.add_argument("--top", type=positive, default=None, metavar="N",
                        help="show the top N children (default: the rules config's agenda.top, 30)")
    parser.add_argument("--format", choices=("table", "json"), default="table",
                        help="table (default) or JSON Lines, one object per child with exactly: rank, child_key, "
                        "priority, rules, on_list, open_actions, overdue_actions, last_review")
    parser.add_argument("--replay", metavar="FILE", default=None,
                        help="rank from this JSON Lines log of contract events instead of the store")
    parser.add_argument("--until", type=parse_until, metavar="TIMESTAMP", default=None,
                        help="with --replay: the agenda as of this ISO 8601 time with offset (default: the log's "
                        "latest occurred_at); later events are skipped")
    parser.set_defaults(func=run)
