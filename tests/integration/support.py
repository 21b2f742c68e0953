"""Helpers for tests on the real broker: run a worker process, read topics back."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from sgi.processes import background

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
