"""`sgi simulate`: synthetic partner events of the simulated city (the simulator package), to a file or Kafka."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

from settings import KafkaSettings, WorkerSettings
from simulator import CityConfig, SimMessage, generate, summary
from streams.core.config import load_rules
from streams.kafka_security import kafka_python_options

DAY = timedelta(days=1)


def _parse_start(text: str) -> datetime:
    """An ISO date (midnight UTC) or an ISO datetime (UTC when it has no offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO date or datetime: {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _default_start(days: int) -> datetime:
    """Today's UTC midnight minus `days`, so the data ends now."""
    today = datetime.now(UTC).date()
    return datetime.combine(today - days * DAY, clock_time(0), tzinfo=UTC)


def _paced(messages: Sequence[SimMessage], speedup: float, start: datetime) -> Iterator[bytes]:
    """Messages at their recorded_at pace (compressed by `speedup`); history before `start` at once."""
    began = time.monotonic()
    for message in messages:
        due = max(timedelta(0), message.arrival - start) / timedelta(seconds=1) / speedup
        wait = due - (time.monotonic() - began)
        if wait > 0:
            time.sleep(wait)
        yield message.raw


def _write(lines: Iterable[bytes], out: str, total: int) -> None:
    if out == "-":
        stream = sys.stdout.buffer
        for raw in lines:
            stream.write(raw + b"\n")
        stream.flush()
        return
    from tqdm import tqdm

    with Path(out).open("wb") as handle:
        for raw in tqdm(lines, total=total, unit="msg", desc=f"simulate -> {out}"):
            handle.write(raw + b"\n")




def _run(args: argparse.Namespace) -> int:
    start = args.start or _default_start(args.days)
    try:
        zone = load_rules(WorkerSettings().rules).zone
    except (OSError, ValueError) as error:
        print(f"error: cannot load the rules config: {error}", file=sys.stderr)
        return 2
    config = CityConfig(scale=args.scale, zone=zone)
    messages = generate(args.days, args.seed, start, args.malformed_share, config)
    lines: Iterable[bytes] = (m.raw for m in messages)
    if args.rate == "realtime":
        lines = _paced(messages, args.speedup, start.astimezone(UTC))
    try:
        if args.publish:
            from sgi.publish import publish_messages

            kafka = KafkaSettings()
            publish_messages(lines, args.bootstrap or kafka.bootstrap, total=len(messages), progress=True,
                             security=kafka_python_options(kafka))
        else:
            _write(lines, args.out, len(messages))
    except BrokenPipeError:  # e.g. `sgi simulate | head`
        return 0
    print(summary(messages), file=sys.stderr)
    return 0


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "simulate",
        help="generate deterministic synthetic partner events for a Coventry-like city",
        description="Generate synthetic partner events (JSON Lines, contract v1) for a city like Coventry "
        "in 2014/15: missing episodes, return interviews, CSE assessments, domestic abuse incidents, "
        "child protection plans and MASH identity links, with planted hotspots, late arrivals and a share "
        "of malformed messages. No real person's data. The same seed gives the same bytes.",
    )
    parser.add_argument("--days", type=int, default=90, help="length of the simulated period in days (default: 90)")
    parser.add_argument("--seed", type=int, default=2015, help="random seed; same seed, same output (default: 2015)")
    parser.add_argument("--start", type=_parse_start, default=None,
                        help="first day, ISO date or datetime (default: today's UTC midnight minus --days)")
    parser.add_argument("--malformed-share", type=float, default=0.02,
                        help="share of messages broken on purpose, 0..1 (default: 0.02)")
    parser.add_argument("--scale", type=_positive, default=1.0,
                        help="multiplies the population and every rate, e.g. 0.1 for a quick run (default: 1.0)")
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--out", default="-", help="JSON Lines file to write, or - for stdout (default: -)")
    target.add_argument("--publish", action="store_true", help="publish to the inbound Kafka topic instead")
    parser.add_argument("--bootstrap",
                        help="Kafka bootstrap servers for --publish (default: SGI_KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    parser.add_argument("--rate", choices=("fast", "realtime"), default="fast",
                        help="fast: as fast as possible; realtime: at the recorded_at pace (default: fast)")
    parser.add_argument("--speedup", type=_positive, default=1.0,
                        help="with --rate realtime, compress time by this factor, e.g. 3600 (default: 1.0)")
    parser.set_defaults(func=_run)
