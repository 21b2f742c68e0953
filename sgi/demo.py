"""`sgi demo`: the whole pipeline on a simulated city, on this machine, then a summary.

local Kafka -> worker (ingest, identity, child state, hotspots, alerts) -> sink -> embedded
ClickHouse; ~90 days of simulated partner events; wait until everything is processed; print a
summary read from ClickHouse and the CMOG agenda; write the meeting pack; stop everything it started; and end
with the privacy scan (exit status 1 if any identifier, reference or free text got through).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from tqdm import tqdm

from report.agenda import rank
from report.agenda_store import load as load_agenda
from report.measures import premises_ranked
from settings import PROJECT_ROOT, ClickHouseSettings, KafkaSettings, WorkerSettings
from sgi.agenda import table_text
from sgi.kafka_access import AccessError
from sgi.kafka_local import KafkaLaunchError, LocalKafka, fetch_jars, free_port
from sgi.privacy_scan import finder_of, kafka_texts, log_texts, scan, table_texts
from sgi.processes import background
from sinks.kafka_sink import SINK_TOPICS
from streams.core.config import RulesConfig, load_rules
from streams.kafka_admin import ensure_topics, group_lag
from streams.kafka_security import kafka_python_options
from streams.topics import DEADLETTER, INBOUND, WORKER_TOPICS

STALL_SECONDS = 180  # no change in what is read or left for this long: something has stopped
DEMO_KEY = "demo-only-key-never-use-for-real-data"
SUMMARY_QUERIES = {
    "Events processed": "SELECT count() FROM events FINAL",
    "Children": "SELECT count() FROM child_state FINAL WHERE NOT retired",
    "Rejected messages (dead letters)": "SELECT uniqExact(topic, partition, offset) FROM deadletter FINAL",
    "Open alerts": "SELECT count() FROM alerts FINAL WHERE status = 'open'",
}
OPEN_BY_RULE = (
    "SELECT rule, count() AS open_alerts FROM alerts FINAL WHERE status = 'open' "
    "GROUP BY rule ORDER BY open_alerts DESC"
)


def top_places(config: RulesConfig) -> str:
    """The five premises most children were linked to, of the categories the place rules judge."""
    return f"""
SELECT any(premises_category) AS category, any(premises_name) AS name, any(ward_name) AS ward,
       length(groupUniqArrayArray(children)) AS children
FROM places FINAL
WHERE place_kind = 'premises'
  AND {premises_ranked(config.place_exclude_categories)}
GROUP BY place_key ORDER BY children DESC, name LIMIT 5
"""


def wait_until_caught_up(bootstrap: str, published: int, app_id: str, procs: dict[str, subprocess.Popen[bytes]],
                         timeout: float, security: Mapping[str, Any] | None = None) -> None:
    """Progress bars until the worker has read every published message and neither the worker nor the
    sink has anything left to read (three quiet checks in a row)."""
    groups = {app_id: WORKER_TOPICS, "sgi-sink": SINK_TOPICS}
    deadline = time.monotonic() + timeout
    quiet = 0
    progress_at, last_seen = time.monotonic(), (-1, -1)
    with tqdm(total=published, desc="ingest", unit="msg") as ingest_bar, \
            tqdm(desc="pipeline backlog", unit="msg", bar_format="{desc}: {n} left") as backlog:
        while quiet < 3:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"the {name} stopped (exit {proc.returncode}); see its log under var/demo/")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the pipeline did not catch up within {timeout:.0f} s")
            try:
                lag, by_topic = group_lag(bootstrap, groups, security)
            except KafkaError:  # the groups' coordinator is not up yet
                lag, by_topic = -1, {}
            read = min(by_topic.get(INBOUND, 0), published)
            ingest_bar.update(read - ingest_bar.n)
            backlog.n = lag
            backlog.refresh()
            quiet = quiet + 1 if read >= published and lag == 0 else 0
            if (read, lag) != last_seen:
                progress_at, last_seen = time.monotonic(), (read, lag)
            elif time.monotonic() - progress_at > STALL_SECONDS:
                raise RuntimeError(f"the pipeline made no progress for {STALL_SECONDS} s; see var/demo/worker.log "
                                   "and var/demo/sink.log")
            time.sleep(2)


def print_summary(client: object, config: RulesConfig) -> None:
    from sgi.db import run_sql

    print("\n== Summary (read from ClickHouse) ==")
    for label, query in SUMMARY_QUERIES.items():
        value = client.command(query)  # type: ignore[attr-defined]
        print(f"{label:<34} {value}")
    print("\nOpen alerts by rule:")
    run_sql(client, OPEN_BY_RULE)
    print("\nTop places (distinct children, whole period; homes left out as the place rules leave them):")
    run_sql(client, top_places(config))
    print(f"\nExplore further: .venv/bin/sgi sql \"SELECT ...\"   (data in {ClickHouseSettings().path})")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # so every `with` below stops what it started


def _run(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    if not env.get("SGI_PSEUDONYMISATION_KEY"):
        env["SGI_PSEUDONYMISATION_KEY"] = DEMO_KEY
        os.environ["SGI_PSEUDONYMISATION_KEY"] = DEMO_KEY
        print("demo: SGI_PSEUDONYMISATION_KEY not set; using a throw-away demo key (never for real data)")
    try:
        config = load_rules(WorkerSettings().rules)
    except (OSError, ValueError) as error:
        print(f"error: cannot load the rules config: {error}", file=sys.stderr)
        return 2
    work = PROJECT_ROOT / "var" / "demo"
    ch = ClickHouseSettings()
    if not args.keep_store:
        print(f"demo: starting from an empty store ({ch.path} and {work} are reset; --keep-store to keep them)")
        shutil.rmtree(work, ignore_errors=True)
        if ch.mode == "chdb":
            shutil.rmtree(ch.path, ignore_errors=True)
    kafka_settings = KafkaSettings()
    try:
        print("demo: fetching Kafka (first run only) ...")
        fetch_jars(kafka_settings.home)
    except KafkaLaunchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    port, controller = free_port(), free_port()
    app_id = "sgi-demo"
    broker = LocalKafka(home=kafka_settings.home, data_dir=work / "kafka", port=port, controller_port=controller,
                        secure=args.secure, worker_app_id=app_id)
    env.update(SGI_WORKER_APP_ID=app_id, SGI_WORKER_DATA_DIR=str(work / "faust"), PYTHONUNBUFFERED="1")
    with ExitStack() as stack:
        try:
            print(f"demo: starting Kafka{' (secured)' if args.secure else ''} on {broker.bootstrap} ...")
            broker.start()
        except (KafkaLaunchError, AccessError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        stack.callback(broker.stop)
        # Each part logs in as its own principal, so a secured demo runs under the ACLs production would.
        admin = kafka_python_options(broker.client_settings("admin"))
        ensure_topics(broker.bootstrap, kafka_settings.partitions, security=admin)
        worker = stack.enter_context(background(["worker"], {**env, **broker.client_env("worker")},
                                                work / "worker.log", "worker"))
        sink = stack.enter_context(background(["sink", "--quiet"], {**env, **broker.client_env("sink")},
                                              work / "sink.log", "sink"))

        from sgi.publish import publish_messages
        from simulator import CityConfig, simulate

        start = (datetime.now(UTC) - timedelta(days=args.days)).replace(hour=0, minute=0, second=0, microsecond=0)
        print(f"demo: simulating {args.days} days of the city from {start:%Y-%m-%d} (seed {args.seed}) ...")
        lines = list(simulate(days=args.days, seed=args.seed, start=start, malformed_share=0.02,
                              config=CityConfig(zone=config.zone)))
        published = publish_messages(lines, broker.bootstrap, INBOUND, total=len(lines),
                                     security=kafka_python_options(broker.client_settings("partner")))
        print(f"demo: published {published} partner messages; waiting for the pipeline to catch up ...")
        try:
            wait_until_caught_up(broker.bootstrap, published, app_id, {"worker": worker, "sink": sink},
                                 timeout=args.timeout, security=admin)
        except RuntimeError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        # The privacy scan's first part, while the broker runs: every derived topic against the inbound messages.
        finder = finder_of(lines)
        print(f"demo: privacy scan: looking for {len(finder)} values of the inbound messages in every derived "
              "topic ...")
        topic_texts = kafka_texts(broker.bootstrap, frozenset({INBOUND, DEADLETTER}), security=admin)
        topics_read, leaks = scan(finder, tqdm(topic_texts, unit="msg", desc="privacy scan: topics", leave=False))
        print("demo: caught up; stopping the sink and the worker ...")
    # Everything started above is stopped here; chDB can now be opened by this process.
    from sinks.clickhouse import connect

    client = connect(ch)
    try:
        print_summary(client, config)
        as_of = datetime.now(UTC)
        alerts, records = load_agenda(client, as_of)
        agenda = rank(alerts, records, config.agenda.weights, as_of, config.agenda.top)
        print(f"\nThe CMOG agenda (top {config.agenda.top}; `sgi agenda` prints it again):")
        print(table_text(agenda))
        from report import build_pack

        pack = build_pack(client, ch.database, Path(args.pack_dir), as_of=as_of, days=28, config=config)
        print(f"\nMeeting pack (OFFICIAL-SENSITIVE): {pack}")
        store_read, store_leaks = scan(finder, table_texts(client, ch.database))
    finally:
        client.close()
    logs_read, log_leaks = scan(finder, log_texts(sorted(work.glob("*.log"))))
    leaks += store_leaks + log_leaks
    print(f"\nPrivacy scan: {len(finder)} values of the inbound messages looked for in {topics_read} topic messages, "
          f"{store_read} table rows and {logs_read} log lines: {len(leaks)} found")
    for leak in leaks[:20]:
        print(f"LEAK {leak.kind} ({leak.value_hint}) in {leak.where}", file=sys.stderr)
    return 1 if leaks else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on a simulated city and print a summary",
        description="Start local Kafka, the worker and the sink (embedded ClickHouse), publish ~90 days of a "
        "simulated city, wait until the pipeline has caught up, print a summary read from ClickHouse, write "
        "the meeting pack, and stop everything it started. The data stays for `sgi sql`.",
    )
    parser.add_argument("--days", type=int, default=90, help="days of the city to simulate (default: 90)")
    parser.add_argument("--seed", type=int, default=2015, help="simulator seed (default: 2015)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for catch-up (default: 1800)")
    parser.add_argument("--pack-dir", default=str(PROJECT_ROOT / "out"), help="where to write the pack (default: out)")
    parser.add_argument("--keep-store", action="store_true", help="add to the existing store instead of resetting it")
    parser.add_argument("--secure", action="store_true",
                        help="run the broker secured (SASL_SSL, SCRAM, ACLs; see `sgi kafka start --secure`), the "
                             "worker, sink and publisher each logging in as its own principal")
    parser.set_defaults(func=_run)
