"""`sgi worker`: the Faust worker running the ingest and correlation agents."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import timedelta

from settings import MISSING_KEY, KafkaSettings, WorkerSettings, load_secret, selected_stages
from streams.kafka_admin import ensure_changelogs, ensure_topics
from streams.kafka_security import kafka_python_options


def build_worker_app(kafka: KafkaSettings, worker: WorkerSettings, secret: bytes):  # type: ignore[no-untyped-def]
    """The app with every agent registered; separate from running it so tests can inspect it."""
    from streams.agents import correlate, ingest
    from streams.app import build_app
    from streams.core.config import load_rules

    app, topics = build_app(kafka, worker)
    rules = load_rules(worker.rules)
    stages = selected_stages(worker)
    if "ingest" in stages:
        ingest.register(app, topics, secret, dedup_window=timedelta(days=rules.lateness_days + 1))
    correlate.register(app, topics, rules, stages=stages)
    return app


def _run(args: argparse.Namespace) -> int:
    secret = load_secret()
    if secret is None:
        print(MISSING_KEY, file=sys.stderr)
        return 2
    kafka = KafkaSettings()
    worker = WorkerSettings()
    security = kafka_python_options(kafka)
    created = ensure_topics(kafka.bootstrap, kafka.partitions, kafka.replication, security)
    if created:
        print(f"created topics: {', '.join(created)}", file=sys.stderr)
    app = build_worker_app(kafka, worker, secret)
    ensure_changelogs(
        kafka.bootstrap,
        {t.changelog_topic.get_topic_name(): t.partitions or kafka.partitions for t in app.tables.values()},
        kafka.replication,
        security,
    )
    from faust import Worker

    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    Worker(app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "worker",
        help="run the Faust worker (ingest, identity, child state, hotspots, alerts)",
        description="Run the stream worker against SGI_KAFKA_BOOTSTRAP. Creates missing topics first. "
        "Needs SGI_PSEUDONYMISATION_KEY. Run several workers with the same SGI_WORKER_APP_ID to scale out.",
    )
    parser.add_argument("--loglevel", default="WARNING", help="log level (default: WARNING)")
    parser.set_defaults(func=_run)
