"""The live Faust agents on real Kafka, given the same events, end with the same alerts as `sgi replay`.

The simulated period is the 3 days from 34 to 31 days before now: every deadline (<= 4 days) and every
28/30-day window edge is already past, every 365-day edge is far ahead, so the live run's wall clock
and the replay's `until` (taken after the live run) fall between the same edges; and the events are
still inside the place stage's horizon (28-day window + 7 days lateness) when the live agents see them.
Older history is a backfill: it belongs to `sgi replay`, not to the live clock.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

import pytest

from sgi.publish import publish_messages
from sgi.replay import replay_lines
from sgi.simulate import CityConfig, simulate
from streams.topics import ALERTS, INBOUND, WORKER_TOPICS, group_lag
from tests.integration.support import log_tail, read_topics, running, worker_env

pytestmark = pytest.mark.integration

APP_ID = "sgi-test-live"


def wait_for_quiet(bootstrap: str, published: int, proc, timeout: float = 300) -> None:
    """Until the worker has read every inbound message and has nothing left on any topic, 3 checks running."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        assert proc.poll() is None, "worker exited"
        assert time.monotonic() < deadline, "the live pipeline did not catch up"
        try:
            lag, by_topic = group_lag(bootstrap, {APP_ID: WORKER_TOPICS})
        except Exception:  # the group's coordinator is not up yet  # noqa: BLE001
            lag, by_topic = -1, {}
        quiet = quiet + 1 if by_topic.get(INBOUND, 0) >= published and lag == 0 else 0
        time.sleep(2)


def comparable(alerts) -> dict[str, tuple]:
    return {
        a["alert_id"]: (a["rule"], a["subject"], a["status"], a["opened_at"], a["resolved_at"], sorted(a["evidence"]))
        for a in alerts
    }


def test_live_agents_produce_the_same_alerts_as_replay(fresh_topics, tmp_path):
    kafka_bootstrap = fresh_topics
    start = datetime.now(UTC) - timedelta(days=34)
    lines = list(simulate(days=3, seed=11, start=start, malformed_share=0.02, config=CityConfig(scale=1.0)))
    assert len(lines) > 500

    env = worker_env(kafka_bootstrap, tmp_path / "faust", app_id=APP_ID)
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as proc:
        published = publish_messages(lines, kafka_bootstrap, INBOUND, progress=False)
        try:
            wait_for_quiet(kafka_bootstrap, published, proc)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{log_tail(log)}") from error
        records = read_topics(kafka_bootstrap, [ALERTS], until_count=1, timeout=60, settle=3, proc=proc)
    until = datetime.now(UTC)

    latest: dict[str, dict] = {}
    for record in records:  # one alert id is one key, so one partition, in order: the last version wins
        alert = json.loads(record.value)
        latest[alert["alert_id"]] = alert
    live = [a for a in latest.values() if a["status"] != "withdrawn"]

    secret = os.environ["SGI_PSEUDONYMISATION_KEY"].encode()
    replayed = [json.loads(a.model_dump_json()) for a in replay_lines(lines, secret, until=until)]

    assert len(live) > 20, "the scenario must raise alerts to compare"
    assert {a["rule"] for a in live} >= {"rhi_overdue", "encompass_overdue", "hotspot_emerging", "cp_repeat_plan"}
    live_view, replay_view = comparable(live), comparable(replayed)
    missing = sorted(set(replay_view) - set(live_view))
    extra = sorted(set(live_view) - set(replay_view))
    differ = sorted(k for k in set(live_view) & set(replay_view) if live_view[k] != replay_view[k])
    assert not missing and not extra and not differ, (
        f"{len(missing)} only in replay (e.g. {[replay_view[k] for k in missing[:2]]}), "
        f"{len(extra)} only live (e.g. {[live_view[k] for k in extra[:2]]}), "
        f"{len(differ)} differ (e.g. {[(live_view[k], replay_view[k]) for k in differ[:1]]})"
    )
