"""The command line (help everywhere, the worker's refusal without a key, the publisher's key) and the
docker-compose stack (parses; every file and folder it mounts or builds from exists)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sgi.cli import build_parser
from sgi.publish import message_key

ROOT = Path(__file__).resolve().parents[2]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_help() -> None:
    commands = dict(_commands(build_parser()))
    assert {("schema",), ("validate",), ("publish",), ("kafka", "start"), ("worker",), ("replay",), ("sink",),
            ("db", "migrate"), ("sql",), ("simulate",), ("demo",), ("grafana", "build"), ("grafana", "push"),
            ("pack",), ("bench",)} <= set(commands)
    for path, parser in commands.items():
        assert parser.description or parser.format_help(), path
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue  # its commands are checked themselves
            if action.option_strings or action.dest not in {"help", "==SUPPRESS=="}:
                assert action.help, f"sgi {' '.join(path)}: {action.dest} has no help"


def test_worker_refuses_to_start_without_the_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SGI_PSEUDONYMISATION_KEY"}
    done = subprocess.run([sys.executable, "-m", "sgi.cli", "worker"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "SGI_PSEUDONYMISATION_KEY is not set" in done.stderr


def test_publish_key_is_a_stable_hash_of_the_first_identifier() -> None:
    def doc(value: str) -> bytes:
        return json.dumps({"child": {"identifiers": [{"scheme": "nhs_number", "value": value}]}}).encode()

    assert message_key(doc("943 476 5919")) == message_key(doc("9434765919"))
    assert b"9434765919" not in (message_key(doc("9434765919")) or b"")
    linked = json.dumps({"payload": {"identifiers": [{"scheme": "nhs_number", "value": "9434765919"}]}}).encode()
    assert message_key(linked) == message_key(doc("9434765919"))
    assert message_key(b"not json") is None


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_compose_parses_and_runs_the_whole_stack(compose: dict) -> None:  # type: ignore[type-arg]
    services = compose["services"]
    assert {"kafka", "clickhouse", "grafana", "worker", "sink", "migrate", "simulator"} <= set(services)
    assert services["simulator"]["profiles"] == ["simulate"]
    for name in ("kafka", "clickhouse", "grafana"):
        assert "healthcheck" in services[name], name
    assert services["grafana"]["image"].startswith("grafana/grafana-oss:11.6")
    assert "grafana-clickhouse-datasource" in services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]


def test_compose_mounts_and_builds_only_what_exists(compose: dict) -> None:  # type: ignore[type-arg]
    for name, service in compose["services"].items():
        build = service.get("build")
        if build:
            context = ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert (context / "Dockerfile").is_file(), name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_compose_commits_no_secret(compose: dict) -> None:  # type: ignore[type-arg]
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    for secret in ("SGI_PSEUDONYMISATION_KEY", "CLICKHOUSE_PASSWORD", "GRAFANA_READER_PASSWORD", "GF_ADMIN_PASSWORD"):
        assert f"${{{secret}:?" in text, f"{secret} must come from the environment, required"
    assert not (ROOT / ".env").exists()
