"""The live Faust agents on real Kafka, given the same events, end with the same alerts as `sgi replay`.

The simulated period is the 3 days from 33.5 to 30.5 days before now (to the hour): every deadline (<= 4
days) and every 28/30-day window edge is at least half a day past, every 365-day edge is far ahead, so the
live run's wall clock and the replay's `until` (taken after the live run) fall between the same edges;
and the events are still inside the place stage's horizon (28-day window + 7 days lateness) when the
live agents see them.
Older history is a backfill: it belongs to `sgi replay`, not to the live clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sgi.publish import publish_messages
from simulator import CityConfig, simulate
from streams.topics import ALERTS, INBOUND
from tests.integration.support import compare_alerts, log_tail, read_topics, running, wait_for_quiet, worker_env

pytestmark = pytest.mark.integration

APP_ID = "sgi-test-live"


def test_live_agents_produce_the_same_alerts_as_replay(fresh_topics, tmp_path):
    kafka_bootstrap = fresh_topics
    start = (datetime.now(UTC) - timedelta(days=33.5)).replace(minute=0, second=0, microsecond=0)
    lines = list(simulate(days=3, seed=11, start=start, malformed_share=0.02, config=CityConfig(scale=1.0)))
    assert len(lines) > 500

    env = worker_env(kafka_bootstrap, tmp_path / "faust", app_id=APP_ID)
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as proc:
        published = publish_messages(lines, kafka_bootstrap, INBOUND, progress=False)
        try:
            wait_for_quiet(kafka_bootstrap, APP_ID, published, proc)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log_tail(log)}") from error
        records = read_topics(kafka_bootstrap, [ALERTS], until_count=1, timeout=60, settle=3, proc=proc)
    until = datetime.now(UTC)

    compare_alerts(records, lines, until, expect_rules={"rhi_overdue", "encompass_overdue", "cp_repeat_plan"})
