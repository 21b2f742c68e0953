"""The sink in a process of its own for the benchmark: `python -m sgi.bench.sink_proc BOOTSTRAP CHDB_DIR
GROUP EXPECTED RESULT_FILE`. Runs sinks.kafka_sink.run_sink on a fresh group and a fresh embedded store;
with EXPECTED > 0 it stops once that many messages are committed and writes its own timing (first
commit to last: rows written after the first commit / seconds). With EXPECTED 0 it runs until SIGTERM."""

from __future__ import annotations

import json
import resource
import signal
import sys
import threading
import time
from pathlib import Path

from settings import ClickHouseSettings, KafkaSettings
from sinks.kafka_sink import SinkProgress, run_sink


def own_peak_rss_mib() -> float | None:
    """VmHWM of this process: ru_maxrss would include the parent's peak, kept across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def main(argv: list[str]) -> int:
    bootstrap, chdb_dir, group, expected, result_file = argv
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    marks: list[tuple[float, int, int]] = []  # (time, messages committed, rows written)

    def progress(totals: SinkProgress) -> None:
        marks.append((time.perf_counter(), totals.committed, totals.rows))
        if int(expected) and totals.committed >= int(expected):
            stop.set()

    run_sink(KafkaSettings(bootstrap=bootstrap), ClickHouseSettings(mode="chdb", path=Path(chdb_dir), database="bench"),
             stop, on_progress=progress, group_id=group)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result: dict[str, object] = {"rss_mib": own_peak_rss_mib(),
                                 "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "flushes": len(marks)}
    if len(marks) >= 2 and marks[-1][0] > marks[0][0]:
        (t0, _, rows0), (t1, messages, rows1) = marks[0], marks[-1]
        result.update(rows_s=round((rows1 - rows0) / (t1 - t0), 1), rows=rows1, messages=messages,
                      seconds=round(t1 - t0, 3))
    else:
        result.update(rows_s=None, rows=marks[-1][2] if marks else 0, messages=marks[-1][1] if marks else 0,
                      why="everything was written in one flush: too few rows to time")
    Path(result_file).write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
