"""`sgi bench`: the live pipeline on real Kafka side by side with the ceilings of the tools it is built
on and with a peer framework, plus the pure core without Kafka, all in one run on this machine.

Benchmarks prove speed and memory; tests never time anything. Parts (`--only`):
- core: ingest and correlation without Kafka, memory (separate untimed pass), state size, cost growth
- peers: Faust's bare ceiling, aiokafka + json.loads, a quix-streams per-key count, on one topic
- stages: each worker stage alone on its pre-loaded input topic, then the sink alone
- e2e, e2e2w: inbound topic -> worker(s) -> sink -> ClickHouse, with one and with two workers
- latency: a steady rate for a while; publish -> alert, publish -> stored
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

PEERS = ("faust_bare", "aiokafka_raw", "quixstreams")
PARTS = ("core", "peers", "stages", "e2e", "e2e2w", "latency")
STAGE_KEYS = ("ingest_ev_s", "resolve_ev_s", "child_ev_s", "place_ev_s", "sink_rows_s")
# Every key `--json` promises: a number, or null with a `notes` entry saying why.
KEYS = ("faust_bare_ev_s", "aiokafka_raw_ev_s", "quixstreams_ev_s", *STAGE_KEYS, "stage_ratio_min",
        "e2e_ev_s", "e2e_events", "e2e_2w_ev_s", "alert_p50_ms", "alert_p99_ms", "store_p99_ms",
        "core_ingest_ev_s", "core_correlate_ev_s", "core_peak_mib", "state_bytes_p50", "state_bytes_p99",
        "cost_growth", "worker_rss_mib", "events", "seconds")
DEFAULTS = {"events": 2000, "peer_events": 50_000, "latency_rate": 1000, "latency_seconds": 60}
QUICK = {"events": 1500, "peer_events": 5000, "latency_rate": 100, "latency_seconds": 5}
SIMULATED_PER_DAY = 250  # a little under the simulated city's ~290 messages a day at scale 1


def sample(count: int, seed: int) -> list[bytes]:
    """`count` simulated contract messages (2% malformed, as partners send them) ending today, so
    the live clock treats them as recent. The one place the simulator is imported."""
    from simulator import CityConfig, simulate

    days = max(3, min(60, math.ceil(count / SIMULATED_PER_DAY) + 1))
    scale = max(1.0, count / (SIMULATED_PER_DAY * days))
    start = (datetime.now(UTC) - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    lines = list(simulate(days=days, seed=seed, start=start, config=CityConfig(scale=scale)))
    while len(lines) < count:  # a quiet seed: simulate a busier city
        scale *= 1.5
        lines = list(simulate(days=days, seed=seed, start=start, config=CityConfig(scale=scale)))
    return lines[:count]


def machine(kafka_home: Path) -> dict[str, object]:
    memory_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_kib = int(line.split()[1])
    except OSError:
        pass
    jars = sorted((kafka_home / "lib").glob("kafka_2.13-*.jar"))
    found = re.search(r"kafka_2\.13-([\d.]+)\.jar", jars[0].name) if jars else None
    return {"cores": os.cpu_count(), "memory_gib": round(memory_kib / 2**20, 1), "python": platform.python_version(),
            "kafka": found.group(1) if found else None, "platform": platform.platform()}


def run(args: argparse.Namespace) -> dict[str, object]:
    """Every part asked for, in one run; a part that fails leaves its keys null with a note."""
    from settings import KafkaSettings
    from sgi.bench import live
    from sgi.bench.core import run_core
    from sgi.kafka_local import LocalKafka, fetch_jars, free_port

    began = time.monotonic()
    parts = set(args.only.split(",")) if args.only else set(PARTS)
    unknown = parts - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown part(s) {sorted(unknown)}; known: {', '.join(PARTS)}")
    sizes = dict(QUICK if args.quick else DEFAULTS)
    for name in sizes:
        if getattr(args, name, None) is not None:
            sizes[name] = getattr(args, name)
    results: dict[str, object] = {key: None for key in KEYS}
    notes: list[str] = []
    home = KafkaSettings().home
    results.update(events=sizes["events"], date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                   machine=machine(home), parts=sorted(parts))
    log = live.log
    log(f"simulating {sizes['events']} contract messages ...")
    # A sample of its own for each size: the simulated stream opens with a burst of plans already
    # open, so the head of a bigger sample would not be a typical mix.
    events = sample(sizes["events"], args.seed)
    lines = events
    if "latency" in parts:
        log(f"simulating {sizes['latency_rate'] * sizes['latency_seconds']} contract messages for latency ...")
        lines = sample(sizes["latency_rate"] * sizes["latency_seconds"], args.seed)

    if "core" in parts:
        core = run_core(events, growth_facts=200 if args.quick else 2000)
        notes += core.pop("notes", [])  # type: ignore[arg-type]
        results.update(core)

    kafka_parts = parts - {"core"}
    if kafka_parts:
        with live.fresh_work_dir() as folder:
            work = Path(folder)
            broker = None
            bootstrap = args.kafka
            if bootstrap is None:
                fetch_jars(home)
                broker = LocalKafka(home=home, data_dir=work / "kafka", port=free_port(), controller_port=free_port())
                log(f"starting a local Kafka broker on {broker.bootstrap} ...")
                broker.start()
                bootstrap = broker.bootstrap
            else:
                results["machine"]["kafka"] = f"{results['machine']['kafka']} (jars here; broker given by --kafka)"  # type: ignore[index]
            try:
                _live_parts(live, bootstrap, kafka_parts, events, lines, sizes, work, args, results, notes)
            finally:
                if broker is not None:
                    broker.stop()

    bare = results.get("faust_bare_ev_s")
    stage_values = [float(v) for k in STAGE_KEYS if isinstance(v := results.get(k), int | float)]
    if isinstance(bare, int | float) and bare and stage_values:
        results["stage_ratio_min"] = round(min(stage_values) / bare, 4)
        if len(stage_values) < len(STAGE_KEYS):
            notes.append("stage_ratio_min: over the stages measured only")
    else:
        notes.append("stage_ratio_min: needs faust_bare_ev_s and at least one stage figure")
    rss = [float(v) for k in ("e2e_rss_mib", "e2e_2w_rss_mib", "ingest_rss_mib", "forward_rss_mib",
                              "resolve_rss_mib", "child_rss_mib", "place_rss_mib")
           if isinstance(v := results.get(k), int | float)]
    results["worker_rss_mib"] = max(rss) if rss else None
    if not rss:
        notes.append("worker_rss_mib: no worker ran (stages and e2e not selected or failed)")
    for key in KEYS:
        if key in ("events", "seconds"):
            continue
        if results.get(key) is None and not any(note.startswith(key) or f" {key}" in note or f"{key}," in note
                                                 for note in notes):
            notes.append(f"{key}: not measured: its part ({_part_of(key)}) was not run")
    results["seconds"] = round(time.monotonic() - began, 1)
    results["notes"] = notes
    return results


def _part_of(key: str) -> str:
    if key.startswith(("core_", "state_", "cost_")):
        return "core"
    if key in ("faust_bare_ev_s", "aiokafka_raw_ev_s", "quixstreams_ev_s"):
        return "peers"
    if key.startswith("e2e_2w"):
        return "e2e2w"
    if key.startswith("e2e"):
        return "e2e"
    if key.startswith(("alert_", "store_")):
        return "latency"
    return "stages"


def _live_parts(live, bootstrap: str, parts: set[str], events: Sequence[bytes], lines: Sequence[bytes],  # type: ignore[no-untyped-def]
                sizes: dict[str, int], work: Path, args: argparse.Namespace, results: dict[str, object],
                notes: list[str]) -> None:
    run_id = uuid.uuid4().hex[:8]
    timeout = args.timeout
    if "peers" in parts:
        figures, more = live.bench_peers(bootstrap, events, sizes["peer_events"], work, PEERS)
        results.update(figures)
        notes += more
    if "stages" in parts:
        try:
            figures, more = live.bench_stages(bootstrap, events, work, run_id, timeout,
                                              ("ingest", "forward", "resolve", "child", "place", "sink"))
            results.update(figures)
            notes += more
        except live.BenchError as error:
            notes.append(f"ingest_ev_s, resolve_ev_s, child_ev_s, place_ev_s, sink_rows_s: {error}")
    for part, workers, key in (("e2e", 1, "e2e"), ("e2e2w", 2, "e2e_2w")):
        if part not in parts:
            continue
        try:
            figures = live.bench_e2e(bootstrap, events, work, run_id, workers, timeout)
            results[f"{key}_ev_s"], results[f"{key}_rss_mib"] = figures["ev_s"], figures["rss_mib"]
            if workers == 1:
                results["e2e_events"] = figures["events"]
        except live.BenchError as error:
            notes.append(f"{key}_ev_s: {error}")
    if "latency" in parts:
        try:
            figures, more = live.bench_latency(bootstrap, lines, work, run_id, sizes["latency_rate"],
                                               sizes["latency_seconds"], drain_timeout=args.latency_drain)
            results.update(figures)
            notes += more
        except live.BenchError as error:
            notes.append(f"alert_p50_ms, alert_p99_ms, store_p99_ms: {error}")


def print_table(results: dict[str, object]) -> None:
    width = max(len(k) for k in results)
    for key in sorted(results):
        if key != "notes":
            print(f"{key:<{width}}  {results[key]}", file=sys.stderr)
    for note in results.get("notes") or []:  # type: ignore[attr-defined]
        print(f"note: {note}", file=sys.stderr)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # so every `with` stops the broker and processes it started


def _run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    results = run(args)
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2, sort_keys=True))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.chart or args.readme:
        from sgi.bench.report import draw_chart, rewrite_readme

        if args.chart:
            draw_chart(results, Path(args.chart))
        if args.readme:
            chart = os.path.relpath(args.chart, Path(args.readme).parent) if args.chart else None
            rewrite_readme(Path(args.readme), results, chart)
            print(f"bench: wrote the benchmark section of {args.readme}", file=sys.stderr)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "bench",
        help="benchmark every stage on real Kafka against Faust's ceiling and peer frameworks",
        description="Benchmark, in one run on this machine: the core without Kafka; Faust's bare ceiling, a "
        "plain aiokafka consumer and a quix-streams application draining one topic; each worker stage alone "
        "on its pre-loaded input topic and the sink alone; end to end with one and two workers; alert and "
        "store latency at a steady rate. Progress and a table go to stderr. Without --kafka it starts and "
        "stops a local broker of its own.",
    )
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")
    parser.add_argument("--out", metavar="FILE", help="also write the JSON results to FILE")
    parser.add_argument("--kafka", metavar="BOOTSTRAP",
                        help="use this running broker instead of starting one. The bench DELETES every "
                        "non-internal topic on it before each part: never a broker whose data you need")
    parser.add_argument("--events", type=int, help=f"messages per live part and for the core "
                        f"(default {DEFAULTS['events']})")
    parser.add_argument("--peer-events", type=int, help=f"messages on the peers' topic "
                        f"(default {DEFAULTS['peer_events']}; the sample repeated)")
    parser.add_argument("--latency-rate", type=int, help=f"messages/s for the latency part "
                        f"(default {DEFAULTS['latency_rate']})")
    parser.add_argument("--latency-seconds", type=int, help=f"seconds of steady publishing "
                        f"(default {DEFAULTS['latency_seconds']})")
    parser.add_argument("--latency-drain", type=float, default=60.0,
                        help="seconds to wait after the latency run for everything to be stored (default 60)")
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny sizes for a smoke test ({', '.join(f'{k} {v}' for k, v in QUICK.items())})")
    parser.add_argument("--only", metavar="PART,...", help=f"run some parts only, of: {', '.join(PARTS)}")
    parser.add_argument("--seed", type=int, default=2015, help="simulator seed (default: 2015)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a live part may take (default 600)")
    parser.add_argument("--readme", metavar="FILE", help="rewrite FILE's benchmark section from this run")
    parser.add_argument("--chart", metavar="PNG", help="draw stage throughputs against the ceilings into PNG")
    parser.set_defaults(func=_run)
