"""`sgi bench`: throughput and memory of the pipeline's stages on simulated events, on this machine.

Benchmarks prove speed and memory targets; tests never time anything. Stages measured:
- ingest core: validate + pseudonymise (events/s)
- correlation core: identity, child state, places, rules, as `sgi replay` runs them (events/s, peak memory)
- sink: row mapping + batched inserts into embedded ClickHouse (rows/s)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.derived import DeadLetter, Fact
from sgi.settings import ClickHouseSettings
from sgi.simulate import CityConfig, simulate
from streams.core.config import load_rules
from streams.core.engine import Engine
from streams.core.ingest import Origin, ingest


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def run_bench(days: int, scale: float, seed: int, with_sink: bool = True) -> dict[str, object]:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    lines = list(simulate(days=days, seed=seed, start=start, config=CityConfig(scale=scale)))
    secret = b"bench-key"
    origin = Origin("bench", 0, 0, start)
    results: dict[str, object] = {"days": days, "scale": scale, "messages": len(lines)}

    began = time.perf_counter()
    outcomes = [ingest(secret, raw, origin) for raw in lines]
    ingest_seconds = time.perf_counter() - began
    facts = sorted((o for o in outcomes if isinstance(o, Fact)), key=lambda f: f.occurred_at)
    results["ingest_events_per_s"] = round(_rate(len(lines), ingest_seconds))
    results["dead_letters"] = sum(isinstance(o, DeadLetter) for o in outcomes)

    engine = Engine(load_rules(None))
    tracemalloc.start()
    began = time.perf_counter()
    records = []
    watermark = facts[0].occurred_at if facts else start
    for fact in facts:
        watermark = max(watermark, fact.occurred_at)
        records += engine.process(fact, watermark)
        records += engine.advance(watermark)
    records += engine.advance(watermark + timedelta(days=1))
    core_seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results["correlation_events_per_s"] = round(_rate(len(facts), core_seconds))
    results["correlation_peak_mib"] = round(peak / 2**20, 1)
    results["children_in_state"] = len(engine.children)
    results["alerts"] = len(engine.alerts)

    if with_sink:
        from sinks.clickhouse import BatchWriter, connect
        from sinks.migrate import migrate
        from sinks.rows import rows_for

        with tempfile.TemporaryDirectory() as folder:
            client = connect(ClickHouseSettings(mode="chdb", path=Path(folder), database="bench"))
            try:
                migrate(client, "bench")
                writer = BatchWriter(client, database="bench", batch_size=5000, auto_flush=True)
                rows = 0
                began = time.perf_counter()
                kinds = {"Fact": "events", "Alert": "alerts", "Episode": "episodes", "ChildSnapshot": "child_state"}
                for record in [*facts, *records]:
                    table, mapped = rows_for(kinds[type(record).__name__], record)
                    for row in mapped:
                        writer.add(table, row)
                        rows += 1
                writer.flush()
                sink_seconds = time.perf_counter() - began
            finally:
                client.close()
        results["sink_rows_per_s"] = round(_rate(rows, sink_seconds))
    results["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return results


def _run(args: argparse.Namespace) -> int:
    print(f"bench: {args.days} days at scale {args.scale} (seed {args.seed}) ...", file=sys.stderr)
    results = run_bench(args.days, args.scale, args.seed, with_sink=not args.no_sink)
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "bench",
        help="measure throughput and memory of ingest, correlation and sink",
        description="Benchmark the pipeline's stages on simulated events (no Kafka): ingest (validate + "
        "pseudonymise), correlation (as `sgi replay`), and sink inserts into embedded ClickHouse.",
    )
    parser.add_argument("--days", type=int, default=30, help="days of the simulated city (default: 30)")
    parser.add_argument("--scale", type=float, default=1.0, help="city scale (default: 1.0)")
    parser.add_argument("--seed", type=int, default=2015, help="simulator seed (default: 2015)")
    parser.add_argument("--no-sink", action="store_true", help="skip the ClickHouse stage")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.set_defaults(func=_run)
