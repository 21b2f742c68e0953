"""`sgi pack`: the CMOG meeting pack (report/) from the configured store, as one self-contained HTML file."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from clickhouse_connect.driver.exceptions import Error as ClickHouseClientError
from pydantic import ValidationError

from report import DEFAULT_DAYS, DEFAULT_MAX_CHILDREN, MARKING, SET_UP_HINT, PackError, build_pack
from settings import ClickHouseSettings, WorkerSettings
from streams.core.config import load_rules


def parse_as_of(value: str) -> datetime | date:
    """argparse type for --as-of: an ISO 8601 date or datetime; one without an offset is UTC. A bare date
    stays a date: that day's midnight in the configured time zone (the pack for a meeting that day)."""
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
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
    if not isinstance(as_of, datetime):
        as_of = datetime.combine(as_of, datetime.min.time(), tzinfo=config.zone).astimezone(UTC)
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
                        "a bare date means 00:00 that day in the rules config's time zone); default now")
    parser.add_argument("--max-children", type=positive, default=DEFAULT_MAX_CHILDREN, metavar="N",
                        help=f"list at most N children in the meeting list (default {DEFAULT_MAX_CHILDREN})")
    parser.set_defaults(func=run)
