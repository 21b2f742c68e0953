"""`sgi`: one console script; every command has --help."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module registers its own commands with `add_parser(subparsers)`.
COMMAND_MODULES = (
    "sgi.contract",  # schema, validate
    "sgi.publish",
    "sgi.kafka_local",
    "sgi.worker",
    "sgi.replay",
    "sgi.simulate",
    "sgi.db",
    "sgi.sink_cmd",
    "sgi.grafana_cmd",
    "sgi.pack",
    "sgi.agenda",
    "sgi.bench",
    "sgi.demo",
    "sgi.privacy_scan",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sgi",
        description="Safeguarding intelligence pipeline: validate, pseudonymise and correlate partner events.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
