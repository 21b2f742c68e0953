"""The pure core without Kafka: ingest and correlation throughput, memory, state size, cost growth.

Memory is measured in a pass of its own: tracemalloc slows every allocation, so the timed passes
run without it.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from models.derived import DeadLetter, Fact
from streams.core.config import load_rules
from streams.core.engine import Engine
from streams.core.ingest import Origin, ingest

SECRET = b"bench-key-not-secret"


def _received() -> Origin:
    """Messages received now: the contract bounds occurred_at by the moment of validation."""
    return Origin("bench", 0, 0, datetime.now(UTC))


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def ingest_all(lines: Sequence[bytes]) -> tuple[list[Fact], int, float]:
    """(facts in event-time order, dead letters, seconds spent in ingest)."""
    origin = _received()
    began = time.perf_counter()
    outcomes = [ingest(SECRET, raw, origin) for raw in lines]
    seconds = time.perf_counter() - began
    facts = sorted((o for o in outcomes if isinstance(o, Fact)), key=lambda f: f.occurred_at)
    return facts, sum(isinstance(o, DeadLetter) for o in outcomes), seconds


def correlate(facts: Sequence[Fact]) -> Engine:
    """Every fact through one Engine as `sgi replay` does, the clock following event time."""
    engine = Engine(load_rules(None))
    if not facts:
        return engine
    watermark = facts[0].occurred_at
    for fact in facts:
        watermark = max(watermark, fact.occurred_at)
        engine.process(fact, watermark)
        engine.advance(watermark)
    engine.advance(watermark + timedelta(days=1))
    return engine


def _percentile(values: Sequence[int], share: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _one_child_facts(template: bytes, count: int) -> list[Fact]:
    """`count` facts of one synthetic child: the template event again with new ids, 10 minutes
    apart, so all of them stay within every window and none is pruned."""
    doc = json.loads(template)
    origin = _received()
    start = datetime.fromisoformat(doc["occurred_at"]) - timedelta(minutes=10 * count)
    facts = []
    for index in range(count):
        when = (start + timedelta(minutes=10 * index)).isoformat()
        doc.update(event_id=str(uuid.UUID(int=index + 1)), occurred_at=when, recorded_at=when)
        outcome = ingest(SECRET, json.dumps(doc).encode(), origin)
        if not isinstance(outcome, Fact):
            raise ValueError(f"the cost-growth template was rejected: {outcome}")
        facts.append(outcome)
    return facts


def cost_growth(template: bytes, small: int = 10, large: int = 2000, timed: int = 20) -> dict[str, float | None]:
    """Time per event of the core for one child already holding `large` facts, divided by that for
    one holding `small`: 1.0 means a step costs the same however much history the child has."""
    facts = _one_child_facts(template, large + timed)

    def per_event(held: int) -> float:
        engine = Engine(load_rules(None))
        for fact in facts[:held]:
            engine.process(fact, fact.occurred_at)
        tail = facts[held:held + timed]
        began = time.perf_counter()
        for fact in tail:
            engine.process(fact, fact.occurred_at)
        return (time.perf_counter() - began) / len(tail)

    small_s, large_s = per_event(small), per_event(large)
    return {"cost_growth": round(large_s / small_s, 2) if small_s > 0 else None,
            "cost_small_ms": round(small_s * 1000, 3), "cost_large_ms": round(large_s * 1000, 3)}


def run_core(lines: Sequence[bytes], growth_facts: int = 2000) -> dict[str, object]:
    """The core figures for `lines` (contract messages): three passes, only the first two timed."""
    results: dict[str, object] = {}
    notes: list[str] = []
    print(f"bench core: ingest of {len(lines)} messages ...", file=sys.stderr)
    facts, dead, ingest_seconds = ingest_all(lines)
    results["core_ingest_ev_s"] = _rate(len(lines), ingest_seconds)
    results["core_dead_letters"] = dead

    print(f"bench core: correlation of {len(facts)} facts ...", file=sys.stderr)
    began = time.perf_counter()
    engine = correlate(facts)
    results["core_correlate_ev_s"] = _rate(len(facts), time.perf_counter() - began)
    sizes = [len(state.to_json()) for state in engine.children.values()]
    results["state_bytes_p50"] = int(statistics.median(sizes)) if sizes else None
    results["state_bytes_p99"] = _percentile(sizes, 0.99)
    results["core_children"] = len(engine.children)
    results["core_alerts"] = len(engine.alerts)
    del engine

    print("bench core: memory pass (tracemalloc, untimed) ...", file=sys.stderr)
    tracemalloc.start()
    correlate(facts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    results["core_peak_mib"] = round(peak / 2**20, 1)

    template = next((raw for raw in lines if b'"da.incident"' in raw
                     and isinstance(ingest(SECRET, raw, _received()), Fact)), None)
    if template is None:
        results["cost_growth"] = None
        notes.append("cost_growth: no da.incident message in the sample to use as template")
    else:
        print(f"bench core: cost growth (one child, 10 vs {growth_facts} facts) ...", file=sys.stderr)
        results.update(cost_growth(template, large=growth_facts))
        results["cost_growth_facts"] = growth_facts
        if growth_facts != 2000:
            notes.append(
                f"cost_growth: this run compares a child with {growth_facts} facts with one with 10 "
                "(2,000 in a full run)")
    if notes:
        results["notes"] = notes
    return results
