"""`sgi grafana build` and `sgi grafana push`: the Safeguarding boards and alerting as files, or deployed.

    sgi grafana build --out grafana/provisioning [--rules CONFIG]
    sgi grafana push --url http://localhost:3000 [--token TOKEN] [--dir grafana/provisioning]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from grafana.build import build
from grafana.push import DEFAULT_TIMEOUT, PushError, push
from settings import PROJECT_ROOT, GrafanaSettings

DEFAULT_DIR = PROJECT_ROOT / "grafana" / "provisioning"


def run_build(args: argparse.Namespace) -> int:
    rules_path = Path(args.rules) if args.rules else None
    try:
        written = build(Path(args.out), rules_path, webhook=args.with_webhook)
    except (OSError, ValueError) as error:
        source = f"rules config {rules_path}" if rules_path else "the shipped rules config"
        print(f"error: cannot build the Grafana provisioning from {source}: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def run_push(args: argparse.Namespace) -> int:
    try:
        token = args.token or GrafanaSettings().token.get_secret_value()
    except ValidationError as error:
        print(f"error: bad SGI_GRAFANA_* settings: {error}", file=sys.stderr)
        return 2
    try:
        report = push(args.url, token, Path(args.dir), env=dict(os.environ), datasource=args.datasource,
                      editable=args.editable, timeout=args.timeout)
    except PushError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for line in report.lines():
        print(line)
    print(f"pushed to {args.url} (folder uid {report.folder_uid})")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "grafana",
        help="build the Grafana boards and alerting as provisioning files, or push them to a Grafana",
        description="The CMOG boards (overview, meeting list, child timeline, hotspots, data quality) and the "
        "alerting (CMOG chair and pipeline-health rules, contact point, notification policy), built as code "
        "with thresholds from the rules config.",
    )
    commands = parser.add_subparsers(title="grafana commands", metavar="COMMAND", required=True)

    build_parser = commands.add_parser(
        "build",
        help="write the provisioning files (data source, dashboards, alerting) to a directory",
        description="Write Grafana's provisioning layout to DIR: datasources/, dashboards/ (provider + JSON), "
        "alerting/ (rules, contact points, policies). Deterministic: the same config gives the same bytes. "
        "The committed copy lives in grafana/provisioning (`make grafana-build`).",
    )
    build_parser.add_argument("--out", required=True, metavar="DIR", help="directory to write (created if missing)")
    build_parser.add_argument(
        "--with-webhook",
        action="store_true",
        help="add a webhook receiver for the chair (URL from $CMOG_WEBHOOK_URL in Grafana's environment) "
        "beside the email one",
    )
    build_parser.add_argument(
        "--rules",
        metavar="CONFIG",
        help="rules config JSON merged over the shipped defaults: pass the one the workers use (SGI_WORKER_RULES) "
        "so the boards and alerts share their thresholds (default: the shipped streams/core/rules.default.json)",
    )
    build_parser.set_defaults(func=run_build)

    push_parser = commands.add_parser(
        "push",
        help="deploy the built files to a running Grafana through its HTTP API",
        description="Create or update the Safeguarding folder, the dashboards, the contact point, the notification "
        "policy and the alert rules on the Grafana at URL. Contact point settings are expanded from the "
        "environment (CMOG_CHAIR_EMAIL, CMOG_WEBHOOK_URL); with --datasource also CLICKHOUSE_HOST and "
        "GRAFANA_READER_PASSWORD.",
    )
    push_parser.add_argument("--url", required=True, metavar="URL", help="Grafana's base URL, e.g. http://localhost:3000")
    push_parser.add_argument(
        "--token", metavar="TOKEN", help="service account token with the Admin role (default: $SGI_GRAFANA_TOKEN)"
    )
    push_parser.add_argument(
        "--dir", default=str(DEFAULT_DIR), metavar="DIR",
        help="the built provisioning directory (default: grafana/provisioning)",
    )
    push_parser.add_argument(
        "--datasource", action="store_true",
        help="also create or update the ClickHouse data source (needs CLICKHOUSE_HOST and GRAFANA_READER_PASSWORD)",
    )
    push_parser.add_argument(
        "--editable", action="store_true",
        help="send X-Disable-Provenance so the alerting resources stay editable in the UI (default: read-only, "
        "managed as code)",
    )
    push_parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help=f"HTTP timeout per request (default: {DEFAULT_TIMEOUT:g})",
    )
    push_parser.set_defaults(func=run_push)
