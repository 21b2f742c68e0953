"""Smoke test of `sgi bench`: every part runs once at tiny sizes on the session broker. It asserts
that every promised key is there and is a number or explained in `notes`; never a speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sgi.bench import KEYS
from tests.integration.support import ROOT

pytestmark = pytest.mark.integration


def test_quick_bench_reports_every_key(fresh_topics: str) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "sgi.cli", "bench", "--json", "--quick", "--kafka", fresh_topics],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout)
    notes = results["notes"]
    assert isinstance(notes, list)
    for key in KEYS:
        assert key in results, key
        value = results[key]
        if value is None:
            assert any(key in note for note in notes), f"{key} is null with no note saying why: {notes}"
        else:
            assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
    # Every part ran: a part that did not would leave a "was not run" note.
    assert not [note for note in notes if "was not run" in note], notes
    assert results["parts"] == sorted(["core", "peers", "stages", "e2e", "e2e2w", "latency"])
    assert results["machine"]["cores"] >= 1 and results["machine"]["python"]
