"""Helpers for tests on the real broker: run a worker process, read topics back."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import datetime
from pathlib import Path

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from sgi.processes import background
from sgi.replay import replay_lines
from streams.kafka_admin import group_lag
from streams.topics import INBOUND, WORKER_TOPICS

ROOT = Path(__file__).resolve().parents[2]


def worker_env(bootstrap: str, data_dir: Path, app_id: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SGI_KAFKA_BOOTSTRAP=bootstrap,
        SGI_WORKER_DATA_DIR=str(data_dir),
        SGI_WORKER_APP_ID=app_id,
        SGI_PSEUDONYMISATION_KEY=os.environ["SGI_PSEUDONYMISATION_KEY"],
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def running(args: list[str], env: dict[str, str], log_path: Path):  # type: ignore[no-untyped-def]
    """Run `python -m sgi.cli ARGS` in the background; stopped with SIGTERM at the end."""
    return background(args, env, log_path, name=" ".join(args), cwd=ROOT)


def log_tail(log_path: Path, lines: int = 40) -> str:
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])


def read_topics(
    bootstrap: str,
    topics: list[str],
    until_count: int,
    timeout: float = 120.0,
    settle: float = 3.0,
    proc: subprocess.Popen[bytes] | None = None,
) -> list[ConsumerRecord]:
    """Every record on the topics from the start: reads until `until_count` arrived, then `settle`
    seconds more so anything extra shows up too. Fails early when the worker process died."""
    consumer = KafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None, consumer_timeout_ms=500)
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout
    settled_at: float | None = None
    try:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"worker exited with {proc.returncode}")
            batch = consumer.poll(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
            if len(records) >= until_count and settled_at is None:
                settled_at = time.monotonic()
            if settled_at is not None and time.monotonic() - settled_at >= settle:
                break
    finally:
        consumer.close()
    return records


def wait_for_quiet(bootstrap: str, app_id: str, published: int, proc: subprocess.Popen[bytes],
                   timeout: float = 300) -> None:
    """Until the worker has read every inbound message and has nothing left on any topic, 3 checks running."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        assert proc.poll() is None, "worker exited"
        assert time.monotonic() < deadline, "the live pipeline did not catch up"
        try:
            lag, by_topic = group_lag(bootstrap, {app_id: WORKER_TOPICS})
        except Exception:  # noqa: BLE001 - the group's coordinator is not up yet
            lag, by_topic = -1, {}
        quiet = quiet + 1 if by_topic.get(INBOUND, 0) >= published and lag == 0 else 0
        time.sleep(2)


def compare_alerts(records: list[ConsumerRecord], lines: list[bytes], until: datetime,
                   expect_rules: set[str]) -> None:
    """The latest version of each alert on the alerts topic (withdrawn ones hidden) equals what
    `sgi replay` prints for the same lines with the clock moved to `until`."""
    latest: dict[str, dict] = {}
    for record in records:  # one alert id is one key, so one partition, in order: the last version wins
        alert = json.loads(record.value)
        latest[alert["alert_id"]] = alert
    live = [a for a in latest.values() if a["status"] != "withdrawn"]
    secret = os.environ["SGI_PSEUDONYMISATION_KEY"].encode()
    replayed = [json.loads(a.model_dump_json()) for a in replay_lines(lines, secret, until=until)]
    assert len(live) > 20, "the scenario must raise alerts to compare"
    assert {a["rule"] for a in live} >= expect_rules

    def comparable(alerts: list[dict]) -> dict[str, tuple]:
        return {a["alert_id"]: (a["rule"], a["subject"], a["status"], a["opened_at"], a["resolved_at"],
                                sorted(a["evidence"])) for a in alerts}

    live_view, replay_view = comparable(live), comparable(replayed)
    missing = sorted(set(replay_view) - set(live_view))
    extra = sorted(set(live_view) - set(replay_view))
    differ = sorted(k for k in set(live_view) & set(replay_view) if live_view[k] != replay_view[k])
    assert not missing and not extra and not differ, (
        f"{len(missing)} only in replay (e.g. {[replay_view[k] for k in missing[:2]]}), "
        f"{len(extra)} only live (e.g. {[live_view[k] for k in extra[:2]]}), "
        f"{len(differ)} differ (e.g. {[(live_view[k], replay_view[k]) for k in differ[:1]]})"
    )
