"""`sgi sink`: derived topics -> ClickHouse (embedded chDB or a server), at least once, stored once."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from settings import ClickHouseSettings, KafkaSettings, WorkerSettings
from sinks.kafka_sink import SinkProgress, run_sink
from streams.core.config import load_rules


def _run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    ch = ClickHouseSettings()
    try:
        zone = load_rules(WorkerSettings().rules).zone
    except (OSError, ValueError) as error:
        print(f"error: cannot load the rules config: {error}", file=sys.stderr)
        return 2
    where = ch.path if ch.mode == "chdb" else f"{ch.host}:{ch.port}"

    def report(progress: SinkProgress) -> None:
        if not args.quiet:
            print(f"\rsink: {progress.messages} messages read, {progress.rows} rows written, "
                  f"{progress.committed} committed", end="", file=sys.stderr, flush=True)

    print(f"sink: {KafkaSettings().bootstrap} -> ClickHouse ({ch.mode}: {where}, database {ch.database})",
          file=sys.stderr)
    totals = run_sink(KafkaSettings(), ch, stop, batch_size=args.batch_size, max_wait=args.max_wait,
                      on_progress=report, zone=zone)
    print(f"\nsink stopped: {totals.messages} messages, {totals.rows} rows, {totals.committed} committed",
          file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "sink",
        help="write the derived topics into ClickHouse",
        description="Consume events, alerts, episodes, child states, place links and dead letters into "
        "ClickHouse (SGI_CLICKHOUSE_MODE=chdb|server). Offsets are committed only after an insert "
        "succeeded; tables deduplicate re-sent batches. Stops cleanly on Ctrl-C / SIGTERM.",
    )
    parser.add_argument("--batch-size", type=int, default=5000, help="rows per table that trigger a flush")
    parser.add_argument("--max-wait", type=float, default=1.0, help="seconds before a partial batch is flushed")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=_run)
