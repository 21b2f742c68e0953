"""The ceilings and the peers: each drains the same pre-loaded topic in a process of its own.

Run as `python -m sgi.bench.peers NAME BOOTSTRAP TOPIC COUNT RESULT_FILE WORK_DIR`; it writes one JSON
object to RESULT_FILE and exits once it has seen COUNT messages. Its clock starts at the first
message it receives (so connecting, joining the group and Faust's start-up are not counted) and the
first batch is left out of the count: rate = messages after the first batch / seconds from the first
batch to the last message.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import time
from pathlib import Path

PEERS = ("faust_bare", "aiokafka_raw", "quixstreams")


class Stopwatch:
    """Counts messages; when `expected` have arrived, writes the result and ends the process (the
    frameworks' own shutdown is slow and not what is measured)."""

    def __init__(self, expected: int, result_file: Path) -> None:
        self.expected = expected
        self.result_file = result_file
        self.first_at: float | None = None
        self.first_batch = 0
        self.seen = 0

    def saw(self, count: int) -> None:
        now = time.perf_counter()
        if self.first_at is None:
            self.first_at, self.first_batch = now, count
        self.seen += count
        if self.seen >= self.expected:
            seconds = now - self.first_at
            usage = resource.getrusage(resource.RUSAGE_SELF)
            result = {
                "ev_s": round((self.seen - self.first_batch) / seconds, 1) if seconds > 0 else None,
                "events": self.seen,
                "seconds": round(seconds, 3),
                "rss_mib": own_peak_rss_mib(),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            }
            self.result_file.write_text(json.dumps(result))
            os._exit(0)


def faust_bare(bootstrap: str, topic: str, watch: Stopwatch, work: Path) -> None:
    """Faust's own ceiling: an agent taking batches of raw bytes and doing nothing with them."""
    import logging

    import faust
    from faust import Worker

    app = faust.App(f"bench-faust-{os.getpid()}", broker=f"kafka://{bootstrap}", store="memory://",
                    datadir=str(work / "faust"), web_enabled=False, consumer_auto_offset_reset="earliest",
                    topic_partitions=4)
    source = app.topic(topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")

    @app.agent(source)
    async def drain(stream):  # type: ignore[no-untyped-def]
        async for batch in stream.take(5000, within=1):
            watch.saw(len(batch))

    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


def aiokafka_raw(bootstrap: str, topic: str, watch: Stopwatch, work: Path) -> None:
    """The Python consumer's ceiling: aiokafka batches, `json.loads` on each value."""
    import asyncio

    from aiokafka import AIOKafkaConsumer

    async def main() -> None:
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-aiokafka-{os.getpid()}",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
                for records in batches.values():
                    for record in records:
                        with contextlib.suppress(ValueError):  # the simulator's malformed share: decoding still ran
                            json.loads(record.value)
                    watch.saw(len(records))
        finally:
            await consumer.stop()

    asyncio.run(main())


def quixstreams_app(bootstrap: str, topic: str, watch: Stopwatch, work: Path) -> None:
    """What a Python team would pick instead of Faust: a quix-streams application counting events
    per key (child) in its state store, like the child stage at its simplest."""
    from quixstreams import Application

    app = Application(broker_address=bootstrap, consumer_group=f"bench-quix-{os.getpid()}",
                      auto_offset_reset="earliest", state_dir=str(work / "quix"), loglevel="WARNING")
    source = app.topic(topic, key_deserializer="bytes", value_deserializer="bytes")
    frame = app.dataframe(source)

    def count(value: bytes, state) -> None:  # type: ignore[no-untyped-def]
        state.set("events", state.get("events", 0) + 1)
        watch.saw(1)

    frame = frame.update(count, stateful=True)
    app.run()


def own_peak_rss_mib() -> float | None:
    """VmHWM of this process: ru_maxrss would include the parent's peak, kept across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def main(argv: list[str]) -> int:
    name, bootstrap, topic, count, result_file, work = argv
    watch = Stopwatch(int(count), Path(result_file))
    runner = {"faust_bare": faust_bare, "aiokafka_raw": aiokafka_raw, "quixstreams": quixstreams_app}[name]
    runner(bootstrap, topic, watch, Path(work))
    return 1  # only reached when the runner stopped before seeing every message


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
