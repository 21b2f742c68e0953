"""End to end on real Kafka and chDB: contract events into the inbound topic, the worker and the sink
running as processes, and each expected row found in events, episodes, child_state, alerts and places
exactly once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from settings import ClickHouseSettings
from sgi.privacy_scan import Finder, kafka_texts, log_texts, scan, secret_values, table_texts
from sgi.publish import publish_messages
from sinks.clickhouse import connect
from sinks.kafka_sink import SINK_TOPICS
from streams.kafka_admin import group_lag
from streams.topics import DEADLETTER, INBOUND, WORKER_TOPICS
from tests.integration.support import log_tail, running, worker_env
from tests.unit.builders import DAY, HOUR, Kid, episode, missing_ended, missing_started, place, plan_started

pytestmark = pytest.mark.integration

APP_ID = "sgi-test-e2e"


def wait_until_stored(bootstrap: str, published: int, procs: dict, logs: dict, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 3:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited:\n{log_tail(logs[name])}"
        assert time.monotonic() < deadline, f"not caught up:\n{log_tail(logs['worker'])}\n{log_tail(logs['sink'])}"
        try:
            lag, by_topic = group_lag(bootstrap, {APP_ID: WORKER_TOPICS, "sgi-sink": SINK_TOPICS})
        except Exception:  # noqa: BLE001 - the groups' coordinator is not up yet
            lag, by_topic = -1, {}
        quiet = quiet + 1 if by_topic.get(INBOUND, 0) >= published and lag == 0 else 0
        time.sleep(2)


def test_contract_events_reach_every_table_exactly_once(fresh_topics, tmp_path):
    bootstrap = fresh_topics
    t0 = (datetime.now(UTC) - 6 * DAY).replace(microsecond=0)
    runaway, repeat = Kid.make(501, birth_month="2011-03"), Kid.make(502, birth_month="2014-09")
    hotel = place("CV1 2GN", premises={"category": "hotel", "name": "Larkspur Lodge", "ref": "HOTEL-1"})
    docs = [
        missing_started(runaway, t0, "MFH-2026-1", location=hotel),
        missing_ended(runaway, t0 + 2 * HOUR, "MFH-2026-1"),  # and no return interview: rhi_overdue after 72 h
        plan_started(repeat, t0 + DAY, "CP-2026-9", previous=1),  # a repeat plan: cp_repeat_plan
    ]
    lines = [json.dumps(doc).encode() for doc in docs] + [b'{"event_type": "missing.started"}']
    chdb = tmp_path / "chdb"
    env = worker_env(bootstrap, tmp_path / "faust", app_id=APP_ID, SGI_CLICKHOUSE_MODE="chdb",
                     SGI_CLICKHOUSE_PATH=str(chdb))
    logs = {"worker": tmp_path / "worker.log", "sink": tmp_path / "sink.log"}
    with running(["worker"], env, logs["worker"]) as worker, running(["sink", "--quiet"], env, logs["sink"]) as sink:
        published = publish_messages(lines + lines[:1], bootstrap, INBOUND, progress=False)  # one re-sent
        wait_until_stored(bootstrap, published, {"worker": worker, "sink": sink}, logs)

    client = connect(ClickHouseSettings(mode="chdb", path=chdb))
    try:
        def rows(query: str) -> list[tuple]:
            return [tuple(r) for r in client.query(query).result_rows]

        ids = [doc["event_id"] for doc in docs]
        assert sorted(rows("SELECT event_id FROM events FINAL")) == sorted((i,) for i in ids)
        assert rows("SELECT count() FROM events FINAL GROUP BY event_id HAVING count() > 1") == []

        (stored,) = rows("SELECT child_key, episode_ref, toUInt8(ended_at IS NOT NULL), interview FROM episodes FINAL")
        assert stored == (runaway.key, episode("MFH-2026-1"), 1, "none")  # the partner's ref, keyed

        states = rows("SELECT child_key, toUInt8(cp_plan_active) FROM child_state FINAL WHERE NOT retired")
        assert dict(states) == {runaway.key: 0, repeat.key: 1}

        alerts = rows("SELECT rule, subject, status FROM alerts FINAL WHERE status != 'withdrawn' ORDER BY rule")
        assert alerts == [("cp_repeat_plan", repeat.key, "open"), ("rhi_overdue", runaway.key, "open")]

        places = rows("SELECT place_kind, length(groupUniqArrayArray(children)) FROM places FINAL "
                      "WHERE premises_category = 'hotel' OR place_kind != 'premises' GROUP BY place_key, place_kind "
                      "ORDER BY place_kind")
        assert places == [("premises", 1), ("sector", 1)]
        assert rows("SELECT count() FROM place_links FINAL") == [(2,)]

        assert rows("SELECT uniqExact(topic, partition, offset) FROM deadletter FINAL") == [(1,)]

        # No identifier, reference or postcode of the inbound messages in a derived topic, a table or a log;
        # the same scan finds a value planted in a log, so it can fail.
        finder = Finder(value for line in lines for value in secret_values(json.loads(line)))
        assert len(finder) >= 6
        sources = [kafka_texts(bootstrap, frozenset({INBOUND, DEADLETTER})), table_texts(client, "safeguarding"),
                   log_texts(logs.values())]
        read, findings = scan(finder, (text for source in sources for text in source))
        assert read > 20 and findings == []
        planted = tmp_path / "planted.log"
        planted.write_text(f"worker: child {runaway.identifiers[0][1]} seen\n", encoding="utf-8")
        assert len(scan(finder, log_texts([planted]))[1]) == 1
    finally:
        client.close()
    assert t0 + 2 * HOUR + timedelta(hours=72) < datetime.now(UTC)
