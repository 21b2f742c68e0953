"""Child processes the demo and the tests run: `sgi worker`, `sgi sink`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def background(
    args: list[str], env: dict[str, str], log_path: Path, name: str = "process", cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `sgi ARGS` as a child process in its own session, output to `log_path`; stop it with
    SIGTERM (then SIGKILL after 60 s) at the end."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "sgi.cli", *args], env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, cwd=cwd)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    print(f"{name} did not stop in 60 s; killing it", file=sys.stderr)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
