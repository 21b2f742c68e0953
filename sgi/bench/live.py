"""The live pipeline on a real broker: the peers, each stage alone, end to end, and latency.

Every part starts from empty pipeline topics (deleted and created anew) and fresh consumer groups,
and runs its consumer in a child process, so the RSS and CPU it reports are its own.

How a stage is timed: a worker runs that stage alone (SGI_WORKER_STAGES) on a topic the upstream
stages filled beforehand. The bench reads the worker's committed offsets every half second; the
clock starts at the first commit (so Faust's start-up, group join and table recovery are not
counted) and stops when the input topic is fully committed: rate = messages committed after the first
commit / seconds between the two. Commits come every 1,000 messages or every second.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from sgi.processes import background
from sgi.publish import message_key, publish_messages
from streams import topics as names

POLL_SECONDS = 0.5
STALL_SECONDS = 120
BENCH_KEY = "bench-key-not-secret"
PEER_TOPIC = "sgi-bench.peers.v1"
SINK_TOPICS = (names.EVENTS, names.ALERTS, names.EPISODES, names.CHILD_STATES, names.PLACE_LINKS,
               names.DEADLETTER)
# stage -> (worker stages, input topic); in pipeline order, so each one's output is the next one's input.
STAGE_CHAIN: tuple[tuple[str, str, str], ...] = (
    ("ingest", "ingest", names.INBOUND),
    ("forward", "forward", names.EVENTS),
    ("resolve", "identity", names.RESOLVE),
    ("child", "child", names.CHILDREN),
    ("place", "place", names.PLACE_STAGE),
)


class BenchError(RuntimeError):
    """A part could not be measured; the message says why (it goes into `notes`)."""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the broker -----------------------------------------------------------------------------------

def reset_topics(bootstrap: str, partitions: int = 4) -> None:
    """Delete every non-internal topic and create the pipeline's anew, so a part sees only its own
    messages. This is why `--kafka` must name a broker whose data nobody needs."""
    from streams.kafka_admin import reset_topics as reset

    try:
        reset(bootstrap, partitions)
    except TimeoutError as error:
        raise BenchError(str(error)) from error


def topic_sizes(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    """Messages on each topic (latest - earliest offset, summed over partitions)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="sgi-bench-sizes")
    try:
        sizes = {}
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
            latest, earliest = consumer.end_offsets(parts), consumer.beginning_offsets(parts)
            sizes[topic] = sum(latest[tp] - earliest[tp] for tp in parts)
        return sizes
    finally:
        consumer.close()


def wait_settled(bootstrap: str, topics: Sequence[str], seconds: float = 2.0) -> dict[str, int]:
    """The topics' sizes once they stopped growing for `seconds` (a stopped stage's last sends landed)."""
    sizes = topic_sizes(bootstrap, topics)
    while True:
        time.sleep(seconds)
        again = topic_sizes(bootstrap, topics)
        if again == sizes:
            return sizes
        sizes = again


def committed(bootstrap: str, group: str, topics: Sequence[str]) -> int:
    from streams.kafka_admin import group_lag

    _, by_topic = group_lag(bootstrap, {group: tuple(topics)})
    return sum(by_topic.get(t, 0) for t in topics)


def rss_mib(pid: int) -> float | None:
    """Peak resident memory of a live process (VmHWM), read before it is stopped."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


def worker_env(bootstrap: str, work: Path, app_id: str, stages: str = "") -> dict[str, str]:
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(SGI_KAFKA_BOOTSTRAP=bootstrap, SGI_WORKER_APP_ID=app_id, SGI_WORKER_DATA_DIR=str(work / app_id),
               SGI_WORKER_STAGES=stages, SGI_PSEUDONYMISATION_KEY=env.get("SGI_PSEUDONYMISATION_KEY") or BENCH_KEY,
               PYTHONUNBUFFERED="1")
    return env


def preload(bootstrap: str, lines: Sequence[bytes], topic: str = names.INBOUND) -> int:
    return publish_messages(lines, bootstrap, topic, total=len(lines), progress=False)


# --- the peers ------------------------------------------------------------------------------------

def run_peer(name: str, bootstrap: str, count: int, work: Path, timeout: float) -> dict[str, object]:
    result_file = work / f"peer-{name}.json"
    log_file = work / f"peer-{name}.log"
    log(f"peer {name}: draining {count} messages ...")
    with log_file.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sgi.bench.peers", name, bootstrap, PEER_TOPIC, str(count),
                                 str(result_file), str(work)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"{name} did not drain {count} messages within {timeout:.0f} s "
                             f"(log: {_tail(log_file)})") from None
        finally:
            if proc.poll() is None:  # timed out or interrupted; Faust would take its time over SIGTERM
                proc.kill()
                proc.wait()
    if not result_file.exists():
        raise BenchError(f"{name} exited with {proc.returncode} before draining the topic: {_tail(log_file)}")
    result = json.loads(result_file.read_text())
    log(f"peer {name}: {result['ev_s']} ev/s")
    return result


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def bench_peers(bootstrap: str, lines: Sequence[bytes], count: int, work: Path,
                which: Sequence[str]) -> tuple[dict[str, object], list[str]]:
    """Fill one 4-partition topic with `count` contract messages (the sample repeated as needed),
    then let each peer drain it with its own consumer group."""
    from kafka.admin import KafkaAdminClient, NewTopic

    results: dict[str, object] = {}
    notes: list[str] = []
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-bench-peers")
    try:
        if PEER_TOPIC not in admin.list_topics():
            admin.create_topics([NewTopic(PEER_TOPIC, 4, 1)])
    finally:
        admin.close()
    messages = [lines[i % len(lines)] for i in range(count)]
    log(f"peers: publishing {count} messages to {PEER_TOPIC} ...")
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    try:
        for raw in messages:
            producer.send(PEER_TOPIC, key=message_key(raw) or b"malformed", value=raw)
        producer.flush()
    finally:
        producer.close()
    for name, key in (("faust_bare", "faust_bare_ev_s"), ("aiokafka_raw", "aiokafka_raw_ev_s"),
                      ("quixstreams", "quixstreams_ev_s")):
        if name not in which:
            continue
        try:
            result = run_peer(name, bootstrap, count, work, timeout=max(120.0, count / 500))
            results[key] = result["ev_s"]
            results[f"{name}_rss_mib"] = result["rss_mib"]
            results[f"{name}_cpu_s"] = result["cpu_s"]
            if result["ev_s"] is None:
                notes.append(f"{key}: all {count} messages arrived in the first batch; nothing left to time")
        except BenchError as error:
            results[key] = None
            notes.append(f"{key}: {error}")
            log(f"peer {name}: not measured: {error}")
    results["peer_events"] = count
    return results, notes


# --- each stage alone -----------------------------------------------------------------------------

def time_drain(bootstrap: str, group: str, topics: Sequence[str], proc: subprocess.Popen[bytes],
               label: str, timeout: float) -> dict[str, object]:
    """Until `group` has committed everything on `topics` (which may still grow while it works):
    {ev_s, events, seconds, rss_mib, cpu_s}; ev_s is None when it all came in one commit."""
    first: tuple[float, int] | None = None
    last_change, last_done = time.monotonic(), -1
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(f"{label}: the worker exited with {proc.returncode}")
        now = time.monotonic()
        if now > deadline:
            raise BenchError(f"{label}: not drained within {timeout:.0f} s")
        try:
            done = committed(bootstrap, group, topics)
            total = sum(topic_sizes(bootstrap, topics).values())
        except Exception:  # noqa: BLE001 - the group's coordinator is not up yet
            time.sleep(POLL_SECONDS)
            continue
        if done != last_done:
            last_change, last_done = now, done
            print(f"\rbench: {label}: {done}/{total} committed", end="", file=sys.stderr, flush=True)
        elif now - last_change > STALL_SECONDS:
            raise BenchError(f"{label}: no progress for {STALL_SECONDS} s at {done}/{total}")
        if done > 0 and first is None:
            first = (now, done)
        if total > 0 and done >= total:
            print(file=sys.stderr)
            seconds = now - first[0] if first else 0.0
            return {"ev_s": round((done - first[1]) / seconds, 1) if first and seconds > 0 else None,
                    "events": done, "seconds": round(seconds, 2),
                    "rss_mib": rss_mib(proc.pid), "cpu_s": cpu_seconds(proc.pid)}
        time.sleep(POLL_SECONDS)


def bench_stages(bootstrap: str, lines: Sequence[bytes], work: Path, run_id: str, timeout: float,
                 which: Sequence[str]) -> tuple[dict[str, object], list[str]]:
    """The chain ingest -> forward -> identity -> child -> place -> sink, one stage at a time, each
    draining what the one before it produced. Stages not asked for still run (their output is the
    next one's input) but are not reported."""
    results: dict[str, object] = {}
    notes: list[str] = []
    reset_topics(bootstrap)
    log(f"stages: publishing {len(lines)} messages to {names.INBOUND} ...")
    preload(bootstrap, lines)
    wanted_last = max((i for i, (name, _, _) in enumerate(STAGE_CHAIN) if name in which), default=-1)
    if "sink" in which:
        wanted_last = len(STAGE_CHAIN) - 1
    for index, (name, stages, topic) in enumerate(STAGE_CHAIN[:wanted_last + 1]):
        app_id = f"bench-{name}-{run_id}"
        env = worker_env(bootstrap, work, app_id, stages)
        log(f"stage {name}: worker with SGI_WORKER_STAGES={stages} draining {topic} ...")
        with background(["worker"], env, work / f"worker-{name}.log", f"worker {name}") as proc:
            try:
                figures = time_drain(bootstrap, app_id, [topic], proc, f"stage {name}", timeout)
            except BenchError as error:
                raise BenchError(f"{error} (log: {_tail(work / f'worker-{name}.log')})") from None
            downstream = [t for _, _, t in STAGE_CHAIN[index + 1:]] + list(SINK_TOPICS)
            wait_settled(bootstrap, downstream)
        key = f"{name}_ev_s"
        results[key] = figures["ev_s"]
        results[f"{name}_events"] = figures["events"]
        results[f"{name}_rss_mib"] = figures["rss_mib"]
        results[f"{name}_cpu_s"] = figures["cpu_s"]
        if figures["ev_s"] is None:
            notes.append(f"{key}: all {figures['events']} messages were committed at once; too few to time")
        log(f"stage {name}: {figures['ev_s']} ev/s over {figures['events']} messages")
    if "sink" in which:
        results.update(_bench_sink(bootstrap, work, run_id, timeout, notes))
    return results, notes


def _bench_sink(bootstrap: str, work: Path, run_id: str, timeout: float, notes: list[str]) -> dict[str, object]:
    """The sink alone on the derived topics: the bench watches its group's commits for the end (as for
    a stage), then stops it; the sink times itself from its first flush to its last (rows/s)."""
    group = f"bench-sink-{run_id}"
    result_file = work / "sink-stage.json"
    log_file = work / "sink-stage.log"
    log("stage sink: draining the derived topics into embedded ClickHouse ...")
    with log_file.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "sgi.bench.sink_proc", bootstrap, str(work / "chdb-sink"),
                                 group, "0", str(result_file)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            drained = time_drain(bootstrap, group, SINK_TOPICS, proc, "stage sink", timeout)
        except BenchError as error:
            notes.append(f"sink_rows_s: {error} (log: {_tail(log_file)})")
            return {"sink_rows_s": None}
        finally:
            _stop(proc)
    if not result_file.exists():
        notes.append(f"sink_rows_s: the sink exited with {proc.returncode}: {_tail(log_file)}")
        return {"sink_rows_s": None}
    result = json.loads(result_file.read_text())
    if result["rows_s"] is None:
        notes.append(f"sink_rows_s: {result['why']}")
    log(f"stage sink: {result['rows_s']} rows/s ({result['rows']} rows from {drained['events']} messages)")
    return {"sink_rows_s": result["rows_s"], "sink_rows": result["rows"], "sink_messages_s": drained["ev_s"],
            "sink_rss_mib": result["rss_mib"], "sink_cpu_s": result["cpu_s"]}


# --- end to end and latency -----------------------------------------------------------------------

def _group_members(bootstrap: str, group: str) -> int:
    """Members of a stable consumer group (0 while it is rebalancing or absent)."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-bench-groups")
    try:
        described = admin.describe_groups([group])
    finally:
        admin.close()
    info = described.get(group) or {}
    return len(info.get("members") or ()) if info.get("group_state") == "Stable" else 0


def wait_ready(bootstrap: str, groups: dict[str, int], procs: Sequence[subprocess.Popen[bytes]],
               logs: Sequence[Path], timeout: float = 120) -> None:
    """Until each group is stable with its number of members: start-up is then behind us."""
    deadline = time.monotonic() + timeout
    while True:
        for proc, log_file in zip(procs, logs, strict=True):
            if proc.poll() is not None:
                raise BenchError(f"a process exited with {proc.returncode} while starting: {_tail(log_file)}")
        try:
            if all(_group_members(bootstrap, g) >= n for g, n in groups.items()):
                time.sleep(2)  # Faust starts its agents after the assignment
                return
        except Exception:  # noqa: BLE001 - the coordinator is not up yet
            pass
        if time.monotonic() > deadline:
            raise BenchError(f"consumer groups {sorted(groups)} not ready within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _stored(bootstrap: str, app_id: str, sink_group: str, published: int) -> bool:
    """Every published message read by the worker, and every fact and dead letter it made committed by
    the sink (which commits only after the insert: committed means visible in ClickHouse)."""
    if committed(bootstrap, app_id, [names.INBOUND]) < published:
        return False
    wanted = sum(topic_sizes(bootstrap, [names.EVENTS, names.DEADLETTER]).values())
    return committed(bootstrap, sink_group, [names.EVENTS, names.DEADLETTER]) >= wanted


class Pipeline:
    """`workers` workers (all stages) and one sink on fresh topics and groups, ready to take messages."""

    def __init__(self, bootstrap: str, work: Path, run_id: str, label: str, workers: int = 1) -> None:
        self.bootstrap, self.work, self.label, self.workers = bootstrap, work, label, workers
        self.app_id = f"bench-{label}-{run_id}"
        self.sink_group = f"bench-{label}-sink-{run_id}"
        self.stack = ExitStack()
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> Pipeline:
        try:
            return self._start()
        except BaseException:
            self.stack.close()  # __exit__ does not run when __enter__ fails: stop what did start
            raise

    def _start(self) -> Pipeline:
        reset_topics(self.bootstrap)
        for n in range(self.workers):
            env = worker_env(self.bootstrap, self.work / f"{self.label}-{n}", self.app_id)
            self.procs.append(self.stack.enter_context(
                background(["worker"], env, self.work / f"{self.label}-worker{n}.log", f"worker {n}")))
        sink_log = (self.work / f"{self.label}-sink.log").open("wb")
        self.stack.callback(sink_log.close)
        sink = subprocess.Popen([sys.executable, "-m", "sgi.bench.sink_proc", self.bootstrap,
                                 str(self.work / f"chdb-{self.label}"), self.sink_group, "0",
                                 str(self.work / f"{self.label}-sink.json")],
                                stdout=sink_log, stderr=subprocess.STDOUT, start_new_session=True)
        self.stack.callback(_stop, sink)
        self.procs.append(sink)
        log(f"{self.label}: starting {self.workers} worker(s) and the sink (start-up is not timed) ...")
        logs = [self.work / f"{self.label}-worker{n}.log" for n in range(self.workers)]
        wait_ready(self.bootstrap, {self.app_id: self.workers, self.sink_group: 1}, self.procs,
                   [*logs, self.work / f"{self.label}-sink.log"])
        return self

    def wait_stored(self, published: int, timeout: float) -> float | None:
        """Seconds (monotonic clock) at which everything published was stored, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise BenchError(f"{self.label}: a pipeline process exited with {proc.returncode}")
            try:
                if _stored(self.bootstrap, self.app_id, self.sink_group, published):
                    return time.monotonic()
            except Exception:  # noqa: BLE001
                pass
            time.sleep(POLL_SECONDS)
        return None

    def peak_rss(self) -> float | None:
        values = [v for v in (rss_mib(p.pid) for p in self.procs[:self.workers]) if v is not None]
        return max(values) if values else None

    def __exit__(self, *exc: object) -> None:
        self.stack.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def bench_e2e(bootstrap: str, lines: Sequence[bytes], work: Path, run_id: str, workers: int,
              timeout: float) -> dict[str, object]:
    """Publish every line to the inbound topic and wait until the last is in ClickHouse."""
    label = "e2e" if workers == 1 else f"e2e{workers}w"
    with Pipeline(bootstrap, work, run_id, label, workers) as pipeline:
        log(f"{label}: publishing {len(lines)} messages, timing until all are stored ...")
        began = time.monotonic()
        published = preload(bootstrap, lines)
        done = pipeline.wait_stored(published, timeout)
        if done is None:
            raise BenchError(f"{label}: not all of {published} messages stored within {timeout:.0f} s")
        figures: dict[str, object] = {"ev_s": round(published / (done - began), 1), "events": published,
                   "seconds": round(done - began, 2), "rss_mib": pipeline.peak_rss()}
    log(f"{label}: {figures['ev_s']} ev/s")
    return figures


def bench_latency(bootstrap: str, lines: Sequence[bytes], work: Path, run_id: str, rate: int, seconds: int,
                  drain_timeout: float) -> tuple[dict[str, object], list[str]]:
    """Publish at a steady `rate` for `seconds`; alert latency = the alert's record time on the alerts
    topic - the publish time of the newest of its evidence events; store latency = the moment the
    sink's committed offset passed the event's fact - its publish time (sampled every 0.2 s)."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

    notes: list[str] = []
    count = min(len(lines), rate * seconds)
    if count < rate * seconds:
        notes.append(f"latency: only {count} distinct messages for {rate}/s x {seconds} s; published for "
                     f"{count / rate:.0f} s")
    published_at: dict[str, float] = {}
    alerts_seen: dict[str, tuple[float, list[str]]] = {}
    commits: list[tuple[float, dict[tuple[str, int], int]]] = []
    stop = threading.Event()

    with Pipeline(bootstrap, work, run_id, "latency") as pipeline:
        def watch_alerts() -> None:
            consumer = KafkaConsumer(names.ALERTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                     group_id=None, enable_auto_commit=False)
            try:
                while not stop.is_set():
                    for records in consumer.poll(timeout_ms=200).values():
                        for record in records:
                            alert = json.loads(record.value)
                            alerts_seen.setdefault(alert["alert_id"], (record.timestamp / 1000, alert["evidence"]))
            finally:
                consumer.close()

        def watch_commits() -> None:
            admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sgi-bench-commits")
            try:
                while not stop.is_set():
                    offsets = admin.list_group_offsets([pipeline.sink_group]).get(pipeline.sink_group) or {}
                    commits.append((time.time(), {(tp.topic, tp.partition): meta.offset
                                                  for tp, meta in offsets.items() if tp.topic == names.EVENTS}))
                    time.sleep(0.2)
            finally:
                admin.close()

        threads = [threading.Thread(target=watch_alerts, daemon=True),
                   threading.Thread(target=watch_commits, daemon=True)]
        for thread in threads:
            thread.start()
        log(f"latency: {rate} messages/s for {count / rate:.0f} s ...")
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        began = time.monotonic()
        try:
            for index, raw in enumerate(lines[:count]):
                due = began + index / rate
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                producer.send(names.INBOUND, key=message_key(raw), value=raw)
                event_id = _event_id(raw)
                if event_id:
                    published_at[event_id] = time.time()
            producer.flush()
        finally:
            producer.close()
        behind = time.monotonic() - began - count / rate
        if behind > 1:
            notes.append(f"latency: publishing itself ran {behind:.1f} s behind the steady rate")
        log("latency: waiting for the pipeline to store everything ...")
        done = pipeline.wait_stored(count, drain_timeout)
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    results: dict[str, object] = {"latency_rate": rate, "latency_events": count}
    if done is None:
        notes.append(f"alert_p50_ms, alert_p99_ms, store_p99_ms: the pipeline did not store {count} messages "
                     f"published at {rate}/s within {drain_timeout:.0f} s after publishing ended: the offered "
                     "rate is above what it sustains (see e2e_ev_s), so latency would only measure the backlog")
        return {**results, "alert_p50_ms": None, "alert_p99_ms": None, "store_p99_ms": None}, notes

    alert_ms = []
    for seen_at, evidence in alerts_seen.values():
        times = [published_at[e] for e in evidence if e in published_at]
        if times:
            alert_ms.append((seen_at - max(times)) * 1000)
    store_ms = _store_latencies(bootstrap, published_at, commits)
    results["alert_p50_ms"] = round(statistics.median(alert_ms), 1) if alert_ms else None
    results["alert_p99_ms"] = round(_pct(alert_ms, 0.99), 1) if alert_ms else None
    results["store_p99_ms"] = round(_pct(store_ms, 0.99), 1) if store_ms else None
    results["latency_alerts"] = len(alert_ms)
    if not alert_ms:
        notes.append("alert_p50_ms, alert_p99_ms: no alert was raised by the published events")
    if not store_ms:
        notes.append("store_p99_ms: no stored fact could be matched to its publish time")
    return results, notes


def _pct(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _event_id(raw: bytes) -> str | None:
    try:
        value = json.loads(raw).get("event_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _store_latencies(bootstrap: str, published_at: dict[str, float],
                     commits: list[tuple[float, dict[tuple[str, int], int]]]) -> list[float]:
    """For each fact on the events topic: first sampled moment the sink's commit covered its offset."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(names.EVENTS, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, enable_auto_commit=False, consumer_timeout_ms=3000)
    latencies = []
    try:
        for record in consumer:
            sent = published_at.get(json.loads(record.value).get("event_id", ""))
            if sent is None:
                continue
            where = (record.topic, record.partition)
            visible = next((t for t, offsets in commits if offsets.get(where, -1) > record.offset), None)
            if visible is not None:
                latencies.append((visible - sent) * 1000)
    finally:
        consumer.close()
    return latencies


def fresh_work_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="sgi-bench-")


Runner = Callable[[], tuple[dict[str, object], list[str]]]
