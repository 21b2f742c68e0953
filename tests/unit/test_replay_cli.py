"""`sgi replay`: JSON Lines in, alerts as JSON Lines out; invalid lines reported and skipped."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sgi.replay import ALERT_FIELDS, add_parser, replay_lines, run
from tests.unit.builders import (
    DAY,
    HOUR,
    T0,
    Kid,
    cse,
    episode,
    interview_completed,
    missing_ended,
    missing_started,
    secret,
)

ROOT = Path(__file__).resolve().parents[2]
KID = Kid.make(300)
RETURN = T0 + 2 * HOUR
DUE = RETURN + 72 * HOUR

# The handler behind `sgi replay`, with its own parser, in a real process (stdout/stderr/exit code).
RUNNER = (
    "import argparse, sys\n"
    "from sgi.replay import add_parser\n"
    "parser = argparse.ArgumentParser(prog='sgi')\n"
    "add_parser(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.func(args))\n"
)


def _lines(*docs: dict[str, Any] | str) -> str:
    return "".join((doc if isinstance(doc, str) else json.dumps(doc)) + "\n" for doc in docs)


def _log() -> str:
    bad = missing_started(KID, T0, "E9")
    bad["child"]["identifiers"][0]["value"] = "1234567890"  # fails the modulus-11 check
    return _lines(
        missing_started(KID, T0, "E1"),
        missing_ended(KID, RETURN, "E1"),
        bad,
        "",
        "not json at all",
        missing_started(KID, T0 + 10 * DAY, "E2"),  # moves the clock past the RHI deadline
        missing_ended(KID, T0 + 10 * DAY + HOUR, "E2"),
        interview_completed(KID, T0 + 10 * DAY + 2 * HOUR, "E2"),
    )


def _replay(
    *argv: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", RUNNER, "replay", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env if env is not None else {**os.environ, "SGI_PSEUDONYMISATION_KEY": "test-key-not-secret"},
        timeout=120,
    )


def test_replay_prints_alerts_and_reports_invalid_lines(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text(_log())
    result = _replay(str(log))
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [tuple(alert) for alert in alerts] == [ALERT_FIELDS] * len(alerts)
    overdue = [a for a in alerts if a["rule"] == "rhi_overdue"]
    assert len(overdue) == 1
    assert overdue[0] | {"alert_id": "", "subject": "", "evidence": []} == {
        "alert_id": "",
        "rule": "rhi_overdue",
        "subject_kind": "child",
        "subject": "",
        "status": "open",
        "opened_at": DUE.isoformat(),
        "resolved_at": None,
        "evidence": [],
        "summary": f"No return home interview within 72 h of the return (episode {episode('E1')})",
    }
    assert overdue[0]["subject"] == KID.key and len(overdue[0]["evidence"]) == 2
    assert f"{log}:3: child.identifiers.0.value: nhs_number fails its modulus-11 check digit" in result.stderr
    assert f"{log}:5: (message): not a JSON object" in result.stderr
    assert "2 invalid line(s) skipped" in result.stderr
    assert KID.identifiers[0][1] not in result.stdout + result.stderr  # no raw identifier leaks
    assert _replay(str(log)).stdout == result.stdout  # deterministic


def test_replay_reads_stdin_and_moves_the_clock_to_until() -> None:
    log = _lines(missing_started(KID, T0, "E1"), missing_ended(KID, RETURN, "E1"))
    assert _replay("-", stdin=log).stdout == ""  # the watermark is the return: nothing overdue yet
    result = _replay("-", "--until", (DUE + HOUR).isoformat(), stdin=log)
    assert [json.loads(line)["rule"] for line in result.stdout.splitlines()] == ["rhi_overdue"]


def test_until_skips_later_events_and_says_so() -> None:
    log = _lines(missing_started(KID, T0, "E1"), missing_started(KID, T0 + 3 * DAY, "E2"))
    result = _replay("-", "--until", (T0 + DAY + HOUR).isoformat(), stdin=log)
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["rule"] for a in alerts] == ["long_missing"]
    assert "-:2: skipped: occurred_at" in result.stderr


def test_replay_refuses_without_the_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SGI_PSEUDONYMISATION_KEY"}
    result = _replay("-", stdin="", env=env)
    assert result.returncode == 2
    assert "SGI_PSEUDONYMISATION_KEY is not set" in result.stderr


def test_replay_rejects_a_naive_until() -> None:
    result = _replay("-", "--until", "2026-03-01T10:00:00", stdin="")
    assert result.returncode == 2 and "UTC offset" in result.stderr


def test_a_bad_rules_file_is_a_clear_error(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": {"rhi_overdue": {"hours": -1}}}')
    result = _replay("-", "--rules", str(rules), stdin="")
    assert result.returncode == 2 and "rules config" in result.stderr


def test_resolved_alerts_print_once_and_withdrawn_ones_not_at_all(tmp_path: Path) -> None:
    other = Kid.make(301)
    docs = [
        missing_started(KID, T0, "E1"),
        missing_ended(KID, RETURN, "E1"),
        cse(other, DUE + HOUR, "none"),  # clock passes the deadline: rhi_overdue opens
        interview_completed(KID, RETURN + DAY, "E1"),  # late arrival, done in time: withdrawn
        missing_started(other, T0, "O1"),
        missing_ended(other, T0 + HOUR, "O1"),
        cse(other, T0 + 6 * DAY, "none"),
        interview_completed(other, T0 + 5 * DAY, "O1"),  # late: resolved
    ]
    alerts = replay_lines([json.dumps(doc) for doc in docs], secret())
    overdue = [(a.subject, a.status) for a in alerts if a.rule == "rhi_overdue"]
    assert overdue == [(other.key, "resolved")]


def test_replay_lines_reports_problems_by_line_number() -> None:
    problems: list[tuple[int, str]] = []
    replay_lines(["{}", "", json.dumps(missing_started(KID, T0, "E1"))], secret(),
                 on_problem=lambda n, m: problems.append((n, m)))
    assert [n for n, _ in problems] == [1]
    assert "event_type" in problems[0][1]


def test_every_option_has_help() -> None:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    replay = parser._subparsers._group_actions[0].choices["replay"]  # type: ignore[union-attr]
    for action in replay._actions:
        assert action.help, action.dest
    assert replay.get_default("func") is run


@pytest.mark.parametrize("until", ["2026-03-01T10:00:00Z", "2026-03-01T10:00:00+01:00"])
def test_until_accepts_offsets(until: str) -> None:
    from sgi.replay import parse_until

    assert parse_until(until).tzinfo is not None
