"""`sgi validate FILE|-`: a partner developer's checker, run as a real process.

One JSON object per input line with exactly {line, valid, event_id, event_type, errors}; exit 0 when
every line is valid, 1 otherwise, 2 when the file cannot be read (message on stderr).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.unit.contract_builders import EVENT_ID, EVENT_TYPES, full, minimal, mutate

ROOT = Path(__file__).parents[2]
KEYS = {"line", "valid", "event_id", "event_type", "errors"}


def sgi_validate(target: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "sgi.cli", "validate", target],
        cwd=ROOT,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=60,
        check=False,
    )


def results(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    out = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    for result in out:
        assert set(result) == KEYS, result
        assert isinstance(result["valid"], bool)
        assert isinstance(result["errors"], list)
        for error in result["errors"]:
            assert set(error) == {"loc", "msg"}
            assert isinstance(error["loc"], str) and isinstance(error["msg"], str) and error["msg"]
        assert (result["errors"] == []) == result["valid"]
    return out


def jsonl(*lines: Any) -> bytes:
    """Documents are dumped as JSON; bytes are written as they are (for broken lines)."""
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


def test_all_valid_file_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    docs = [minimal(t) for t in EVENT_TYPES] + [full(t) for t in EVENT_TYPES]
    path.write_bytes(jsonl(*docs))
    proc = sgi_validate(str(path))
    assert proc.returncode == 0, proc.stderr
    out = results(proc)
    assert [r["line"] for r in out] == list(range(1, len(docs) + 1))
    assert all(r["valid"] for r in out)
    assert [r["event_type"] for r in out] == [d["event_type"] for d in docs]
    assert {r["event_id"] for r in out} == {EVENT_ID}


MIXED = [
    minimal("missing.started"),  # 1 valid
    mutate(minimal("da.incident"), "payload.dash_score", 25),  # 2 invalid field
    b"this is not json",  # 3
    b"[1, 2]",  # 4 a JSON array
    minimal("cp_plan.ended"),  # 5 valid
    b"",  # 6 a blank line still counts
    b'"x"',  # 7
    mutate(minimal("missing.ended"), "event_type", "missing.finished"),  # 8 unknown type
    {"event_id": 5, "event_type": ["x"]},  # 9 id and type unreadable
]


def check_mixed(proc: subprocess.CompletedProcess[bytes]) -> None:
    assert proc.returncode == 1, proc.stderr
    out = results(proc)
    assert [r["line"] for r in out] == list(range(1, 10))
    assert [r["valid"] for r in out] == [True, False, False, False, True, False, False, False, False]

    assert out[0]["event_type"] == "missing.started"
    assert out[0]["event_id"] == EVENT_ID
    # an invalid event still says which event it was, when that can be read
    assert out[1]["event_type"] == "da.incident"
    assert out[1]["event_id"] == EVENT_ID
    assert [e["loc"] for e in out[1]["errors"]] == ["payload.dash_score"]
    for i in (2, 3, 5, 6):
        assert out[i]["event_id"] is None
        assert out[i]["event_type"] is None
        assert [e["loc"] for e in out[i]["errors"]] == ["(message)"]
    assert out[7]["event_type"] == "missing.finished"
    assert [e["loc"] for e in out[7]["errors"]] == ["event_type"]
    assert out[8]["event_id"] is None
    assert out[8]["event_type"] is None


def test_mixed_file_exits_1_with_one_result_per_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(jsonl(*MIXED))
    check_mixed(sgi_validate(str(path)))


def test_stdin(tmp_path: Path) -> None:
    check_mixed(sgi_validate("-", stdin=jsonl(*MIXED)))


def test_stdin_all_valid_exits_0() -> None:
    proc = sgi_validate("-", stdin=jsonl(minimal("identity.linked"), full("da.incident")))
    assert proc.returncode == 0, proc.stderr
    assert [(r["line"], r["valid"]) for r in results(proc)] == [(1, True), (2, True)]


def test_crlf_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(
        json.dumps(minimal("missing.ended")).encode() + b"\r\n" + json.dumps(minimal("cp_plan.ended")).encode()
    )
    proc = sgi_validate(str(path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["line"] for r in results(proc)] == [1, 2]


def test_invalid_utf8_line_is_an_invalid_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"event_type": "caf\xe9"}\n' + jsonl(minimal("missing.ended")))
    proc = sgi_validate(str(path))
    assert proc.returncode == 1
    assert [(r["line"], r["valid"]) for r in results(proc)] == [(1, False), (2, True)]


def test_empty_input_is_valid() -> None:
    proc = sgi_validate("-", stdin=b"")
    assert proc.returncode == 0
    assert proc.stdout == b""


def test_missing_file_exits_2_with_message(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file.jsonl"
    proc = sgi_validate(str(missing))
    assert proc.returncode == 2
    assert proc.stdout == b""
    err = proc.stderr.decode()
    assert "no-such-file.jsonl" in err
    assert "Traceback" not in err


def test_directory_exits_2(tmp_path: Path) -> None:
    proc = sgi_validate(str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip()
    assert b"Traceback" not in proc.stderr


def test_deeply_nested_line_is_an_invalid_line_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b"[" * 100_000 + b"\n" + jsonl(minimal("missing.ended")))
    proc = sgi_validate(str(path))
    assert b"Traceback" not in proc.stderr, proc.stderr[-300:]
    assert proc.returncode == 1
    assert [(r["line"], r["valid"]) for r in results(proc)] == [(1, False), (2, True)]


def test_echoed_values_are_truncated(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    path.write_bytes(jsonl({"event_type": "x" * 5000, "event_id": "y" * 5000}))
    (result,) = results(sgi_validate(str(path)))
    assert len(result["event_type"]) == 60 and result["event_type"].endswith("…")
    assert len(result["event_id"]) == 60
