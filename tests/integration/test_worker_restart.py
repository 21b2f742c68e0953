"""Fault: the worker is killed (SIGKILL, no clean shutdown) halfway through and started again. Kafka
redelivers what was not committed, the tables come back from their changelogs, and the core ignores
what it has already seen: the final alerts still equal `sgi replay` over the same events."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from sgi.publish import publish_messages
from simulator import CityConfig, simulate
from streams.kafka_admin import group_lag
from streams.topics import ALERTS, INBOUND, WORKER_TOPICS
from tests.integration.support import compare_alerts, log_tail, read_topics, running, wait_for_quiet, worker_env

pytestmark = pytest.mark.integration

APP_ID = "sgi-test-restart"


def test_a_killed_worker_restarts_without_losing_or_doubling_anything(fresh_topics, tmp_path):
    bootstrap = fresh_topics
    # see test_live_matches_replay for why this window
    start = (datetime.now(UTC) - timedelta(days=33.5)).replace(minute=0, second=0, microsecond=0)
    lines = list(simulate(days=3, seed=23, start=start, malformed_share=0.02, config=CityConfig(scale=1.0)))
    half = len(lines) // 2
    env = worker_env(bootstrap, tmp_path / "faust", app_id=APP_ID)

    first_log = tmp_path / "worker-1.log"
    with running(["worker"], env, first_log) as proc:
        publish_messages(lines[:half], bootstrap, INBOUND, progress=False)
        deadline = time.monotonic() + 120
        while True:  # kill it mid-stream: once it has committed part of the inbound topic
            assert proc.poll() is None, log_tail(first_log)
            assert time.monotonic() < deadline, f"the worker committed nothing:\n{log_tail(first_log)}"
            try:
                _, by_topic = group_lag(bootstrap, {APP_ID: WORKER_TOPICS})
            except Exception:  # noqa: BLE001 - coordinator not up yet
                by_topic = {}
            if by_topic.get(INBOUND, 0) > half // 4:
                break
            time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    publish_messages(lines[half:], bootstrap, INBOUND, progress=False)
    second_log = tmp_path / "worker-2.log"
    with running(["worker"], env, second_log) as proc:
        try:
            # the dead member must time out of the group first: the rebalance can take minutes
            wait_for_quiet(bootstrap, APP_ID, len(lines), proc, timeout=600)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log_tail(second_log)}") from error
        records = read_topics(bootstrap, [ALERTS], until_count=1, timeout=60, settle=3, proc=proc)

    compare_alerts(records, lines, datetime.now(UTC), expect_rules={"rhi_overdue", "encompass_overdue"})
