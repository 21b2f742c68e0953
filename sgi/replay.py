"""`sgi replay FILE`: run the correlation core over a JSON Lines log, no Kafka, and print the alerts.

The same code path as the stream (validate + pseudonymise -> identity -> child -> place), with the
clock set to the event-time watermark: the latest occurred_at seen so far, nothing subtracted.
At the end the clock moves to --until (default: the latest occurred_at). Replaying the same log
always prints the same alerts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.derived import Alert, DeadLetter, Fact
from settings import MISSING_KEY, WorkerSettings, load_secret
from streams.core.clock import advance_watermark, iso
from streams.core.config import RulesConfig, load_rules
from streams.core.engine import Engine
from streams.core.ingest import Origin, ingest

ALERT_FIELDS = (
    "alert_id", "rule", "subject_kind", "subject", "status", "opened_at", "resolved_at", "evidence", "summary",
)

Problem = Callable[[int, str], None]  # (line number, message)


def replay_lines(
    lines: Iterable[bytes | str],
    secret: bytes,
    until: datetime | None = None,
    config: RulesConfig | None = None,
    *,
    on_problem: Problem | None = None,
    source: str = "replay",
    engine: Engine | None = None,
    on_fact: Callable[[Fact], None] | None = None,
) -> list[Alert]:
    """Replay contract events (one JSON object per line) and return the open and resolved alerts,
    sorted by (opened_at, alert_id). Withdrawn alerts are not returned.

    Invalid lines are skipped and reported to `on_problem(line_number, message)`. With `until`, the
    clock ends there and events that occurred after it are skipped (and reported): the result is
    the picture as of `until`. `engine`: run on this one (the caller reads its identity afterwards);
    `on_fact`: sees every accepted fact, in order (`sgi agenda --replay` takes the cmog.* records from it).
    """
    engine = engine if engine is not None else Engine(config if config is not None else load_rules())
    received_at = datetime.now(UTC)  # only for the dead letters' Origin; never reaches the output
    watermark: datetime | None = None
    for number, line in enumerate(lines, start=1):
        raw = (line.encode("utf-8") if isinstance(line, str) else line).strip()
        if not raw:
            continue
        result = ingest(secret, raw, Origin(topic=source, partition=0, offset=number, received_at=received_at))
        if isinstance(result, DeadLetter):
            if on_problem is not None:
                on_problem(number, "; ".join(f"{e['loc']}: {e['msg']}" for e in result.errors))
            continue
        if until is not None and result.occurred_at > until:
            if on_problem is not None:
                on_problem(number, f"skipped: occurred_at {result.occurred_at.isoformat()} is after --until")
            continue
        if on_fact is not None:
            on_fact(result)
        watermark = advance_watermark(watermark, result.occurred_at)
        engine.process(result, watermark)
        engine.advance(watermark)
    end = until if until is not None else watermark
    if end is not None:
        engine.advance(end)
    return engine.current_alerts()


def alert_json(alert: Alert) -> str:
    """One alert as a JSON line with exactly ALERT_FIELDS, datetimes as ISO 8601 in UTC (+00:00)."""
    document: dict[str, Any] = {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "subject_kind": alert.subject_kind,
        "subject": alert.subject,
        "status": alert.status,
        "opened_at": iso(alert.opened_at),
        "resolved_at": iso(alert.resolved_at) if alert.resolved_at is not None else None,
        "evidence": list(alert.evidence),
        "summary": alert.summary,
    }
    return json.dumps(document, ensure_ascii=False)


def parse_until(text: str) -> datetime:
    """argparse type for --until: an ISO 8601 datetime with a UTC offset (Z allowed)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 datetime: {text!r}") from error
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"--until needs a UTC offset, e.g. {text}+00:00")
    return moment


def run(args: argparse.Namespace) -> int:
    """The `sgi replay` handler: alerts as JSON Lines on stdout, problems on stderr."""
    secret = load_secret()
    if secret is None:
        print(MISSING_KEY, file=sys.stderr)
        return 2
    rules_path = Path(args.rules) if args.rules else WorkerSettings().rules
    try:
        config = load_rules(rules_path)
    except (OSError, ValueError) as error:
        print(f"error: cannot load rules config {rules_path}: {error}", file=sys.stderr)
        return 2

    invalid = 0

    def report(number: int, message: str) -> None:
        nonlocal invalid
        if not message.startswith("skipped:"):
            invalid += 1
        print(f"{args.file}:{number}: {message}", file=sys.stderr)

    try:
        if args.file == "-":
            alerts = replay_lines(sys.stdin.buffer, secret, args.until, config, on_problem=report, source="stdin")
        else:
            with Path(args.file).open("rb") as handle:
                alerts = replay_lines(handle, secret, args.until, config, on_problem=report, source=args.file)
    except OSError as error:
        print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
        return 2
    for alert in alerts:
        print(alert_json(alert))
    if invalid:
        print(f"{invalid} invalid line(s) skipped", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "replay",
        help="replay a JSON Lines event log through the correlation rules and print the alerts",
        description="Validate, pseudonymise and correlate a JSON Lines log of contract events without Kafka, "
        "with the clock at the event-time watermark, and print the final open and resolved alerts as JSON "
        "Lines sorted by (opened_at, alert_id). Invalid lines are reported on stderr and skipped. "
        "Needs SGI_PSEUDONYMISATION_KEY.",
    )
    parser.add_argument("file", metavar="FILE", help="JSON Lines file of contract events, or - for stdin")
    parser.add_argument(
        "--until",
        type=parse_until,
        metavar="TIMESTAMP",
        help="ISO 8601 time with offset to move the clock to at the end (default: the latest occurred_at); "
        "events that occurred after it are skipped",
    )
    parser.add_argument(
        "--rules",
        metavar="CONFIG",
        help="rules config JSON merged over the shipped defaults (default: SGI_WORKER_RULES or the shipped "
        "streams/core/rules.default.json)",
    )
    parser.set_defaults(func=run)
