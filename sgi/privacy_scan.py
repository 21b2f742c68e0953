"""`sgi privacy-scan`: proof that no raw identifier, postcode, reference or free text of the inbound
messages reached a derived topic, a table or a log.

Given the inbound messages of a run (JSON Lines, as published), it collects every value that must
never leave ingest, then reads every derived Kafka topic (Faust changelogs included), every table of
the store and the given log files, and reports each place such a value appears. Exit status 1 on any
finding. The inbound and dead-letter topics are not read: they hold the original bytes by design
(short retention, tight ACLs).

Matching is by whole tokens (runs of letters and digits, case-insensitive), so a ten-digit NHS number
is found in "nhs 943 476 5919"-free text only as itself, never inside a 64-character hex key.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from models import events as contract
from models.events import RESIDENTIAL, Scheme, normalise_identifier

TOKEN = re.compile(r"[0-9a-z]+")
MIN_CHARS = 5  # shorter values ("E1", "F") would match ordinary words and numbers
MIN_DIGITS = 8  # an all-digit value shorter than this could be any count or offset
# payload fields holding a partner's reference or free text
SECRET_PAYLOAD_FIELDS = frozenset({"episode_ref", "incident_ref", "plan_ref", "action_ref", "meeting_ref",
                                   "reason", "tool"})


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


# The contract's own words (enum values such as `substance_misuse`): a partner's free text that happens to
# read the same ("substance misuse") is found in every fact that carries the enum, and tells nothing.
CONTRACT_WORDS = frozenset(
    tuple(tokens(member.value))
    for enum in vars(contract).values()
    if isinstance(enum, type) and issubclass(enum, StrEnum) and enum is not StrEnum
    for member in enum
)


def secret_values(doc: Any) -> Iterator[tuple[str, str]]:
    """(kind, value) of everything in one inbound message that must not leave ingest."""
    if not isinstance(doc, dict):
        return
    child: dict[str, Any] = doc["child"] if isinstance(doc.get("child"), dict) else {}
    payload: dict[str, Any] = doc["payload"] if isinstance(doc.get("payload"), dict) else {}
    identifiers = list(child.get("identifiers") or []) + list(payload.get("identifiers") or [])
    for identifier in identifiers:
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            value = identifier["value"]
            yield "identifier", value
            if identifier.get("scheme") in Scheme.__members__:
                yield "identifier", normalise_identifier(Scheme(identifier["scheme"]), value)
    source: dict[str, Any] = doc["source"] if isinstance(doc.get("source"), dict) else {}
    if isinstance(source.get("record_ref"), str):
        yield "reference", source["record_ref"]
    for field in SECRET_PAYLOAD_FIELDS:
        if isinstance(payload.get(field), str):
            yield ("reference" if field.endswith("_ref") else "free text"), payload[field]
    for indicator in payload.get("indicators") or []:
        if isinstance(indicator, str):
            yield "free text", indicator
    locations = [doc.get("location"), *(payload.get("places") or [])]
    for location in locations:
        if not isinstance(location, dict):
            continue
        if isinstance(location.get("postcode"), str):
            postcode = location["postcode"].strip().upper()
            yield "postcode", postcode
            yield "postcode", postcode.replace(" ", "")
        premises = location.get("premises")
        if isinstance(premises, dict) and premises.get("category") in {c.value for c in RESIDENTIAL}:
            for field in ("name", "ref"):
                if isinstance(premises.get(field), str):
                    yield "free text", premises[field]


@dataclass(frozen=True)
class Finding:
    where: str  # e.g. "topic safeguarding.alerts.v1[2]@17", "table events", "log var/demo/worker.log:12"
    kind: str
    value_hint: str  # never the value itself: the report must not leak what it found


class Finder:
    """Whole-token search for many values at once."""

    def __init__(self, values: Iterable[tuple[str, str]]) -> None:
        self.kinds: dict[tuple[str, ...], str] = {}
        for kind, value in values:
            found = tuple(tokens(value))
            joined = "".join(found)
            if found in CONTRACT_WORDS:
                continue
            if len(joined) >= (MIN_DIGITS if joined.isdigit() else MIN_CHARS):
                self.kinds.setdefault(found, kind)
        # first token -> the lengths of the values that start with it: most tokens of a text start none,
        # so a text costs one set look-up per token (the demo's topics hold about a gigabyte of JSON).
        self.lengths_by_first: dict[str, set[int]] = {}
        for gram in self.kinds:
            self.lengths_by_first.setdefault(gram[0], set()).add(len(gram))

    def __len__(self) -> int:
        return len(self.kinds)

    def search(self, text: str) -> list[tuple[str, str]]:
        """(kind, hint) for every secret value in `text`; the hint is its length and first character."""
        words = tokens(text)
        hits = []
        for start, word in enumerate(words):
            for n in self.lengths_by_first.get(word, ()):
                gram = tuple(words[start : start + n])
                kind = self.kinds.get(gram)
                if kind is not None:
                    joined = " ".join(gram)
                    hits.append((kind, f"{joined[0]}… ({len(joined)} chars)"))
        return hits


def scan(finder: Finder, sources: Iterable[tuple[str, str]]) -> tuple[int, list[Finding]]:
    """(texts read, findings) over (where, text) pairs."""
    read = 0
    findings = []
    for where, text in sources:
        read += 1
        findings += [Finding(where, kind, hint) for kind, hint in finder.search(text)]
    return read, findings


def kafka_texts(bootstrap: str, skip: frozenset[str], idle_ms: int = 3000,
                security: Mapping[str, Any] | None = None) -> Iterator[tuple[str, str]]:
    """Every message of every topic but `skip` and Kafka's own, from the start to the current end.
    `security`: login and TLS options (streams.kafka_security.kafka_python_options); on a secured broker
    log in as `admin`: only it may read every topic."""
    from kafka import KafkaConsumer, TopicPartition

    # check_crcs=False: kafka-python checks CRC32C in pure Python, most of the cost of reading a gigabyte;
    # this read audits content, and the broker has checked every batch it stored.
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             consumer_timeout_ms=idle_ms, max_partition_fetch_bytes=16 * 1024 * 1024,
                             check_crcs=False, **(security or {}))
    try:
        topics = sorted(t for t in consumer.topics() if t not in skip and not t.startswith("__"))
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            batch = consumer.poll(timeout_ms=idle_ms, max_records=5000)
            if not batch:
                break
            for tp, records in batch.items():
                for record in records:
                    where = f"topic {tp.topic}[{tp.partition}]@{record.offset}"
                    for part in (record.key, record.value):
                        if part:
                            yield where, part.decode("utf-8", "replace")
                if records and records[-1].offset + 1 >= ends[tp]:
                    remaining.discard(tp)
    finally:
        consumer.close()


def table_texts(client: Any, database: str) -> Iterator[tuple[str, str]]:
    """Every row of every table of the store as JSON text."""
    names = [row[0] for row in client.query(f"SHOW TABLES FROM {database}").result_rows]
    for name in names:
        result = client.query(f"SELECT * FROM {database}.`{name}`")
        columns = result.column_names
        for row in result.result_rows:
            yield f"table {name}", json.dumps(dict(zip(columns, row, strict=True)), default=str)


def log_texts(paths: Iterable[Path]) -> Iterator[tuple[str, str]]:
    for path in paths:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                yield f"log {path}:{number}", line


def finder_of(messages: Iterable[bytes]) -> Finder:
    """A finder for every secret value of the given inbound messages (JSON, one per item)."""
    values: list[tuple[str, str]] = []
    for raw in messages:
        try:
            values += secret_values(json.loads(raw))
        except (ValueError, RecursionError):
            continue  # a malformed message: nothing of it was ever stored but its dead letter
    return Finder(values)


def inbound_finder(paths: Iterable[Path]) -> Finder:
    def lines() -> Iterator[bytes]:
        for path in paths:
            with path.open("rb") as handle:
                yield from handle

    return finder_of(lines())


def _run(args: argparse.Namespace) -> int:
    from settings import ClickHouseSettings, KafkaSettings
    from streams.topics import DEADLETTER, INBOUND

    finder = inbound_finder(Path(p) for p in args.inbound)
    print(f"privacy-scan: {len(finder)} distinct values from the inbound messages to look for", file=sys.stderr)
    sources: list[Iterable[tuple[str, str]]] = [log_texts(Path(p) for p in args.logs)]
    client = None
    if not args.no_kafka:
        from streams.kafka_security import kafka_python_options

        kafka = KafkaSettings()
        sources.append(kafka_texts(args.kafka or kafka.bootstrap, frozenset({INBOUND, DEADLETTER}),
                                   security=kafka_python_options(kafka)))
    if not args.no_store:
        from sinks.clickhouse import connect

        settings = ClickHouseSettings()
        client = connect(settings, create_database=False)
        sources.append(table_texts(client, settings.database))
    try:
        read = 0
        findings: list[Finding] = []
        for source in sources:
            count, found = scan(finder, source)
            read += count
            findings += found
    finally:
        if client is not None:
            client.close()
    for finding in findings[: args.show]:
        print(f"LEAK {finding.kind} ({finding.value_hint}) in {finding.where}")
    summary = {"values_checked": len(finder), "texts_read": read, "found": len(findings)}
    print(json.dumps(summary))
    return 1 if findings else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "privacy-scan",
        help="prove no raw identifier or free text reached a derived topic, table or log",
        description="Collect every identifier, postcode, reference and free text of the given inbound messages, "
        "then search every derived Kafka topic (not inbound or dead-letter), every table of the store and the "
        "given logs for them. Prints each finding (never the value) and a JSON summary; exit 1 on any finding.",
    )
    parser.add_argument("inbound", nargs="+", help="JSON Lines files of the inbound messages of the run")
    parser.add_argument("--logs", nargs="*", default=[], help="log files to search too")
    parser.add_argument("--kafka", help="bootstrap servers (default: SGI_KAFKA_BOOTSTRAP)")
    parser.add_argument("--no-kafka", action="store_true", help="do not read Kafka topics")
    parser.add_argument("--no-store", action="store_true", help="do not read the ClickHouse store")
    parser.add_argument("--show", type=int, default=20, help="findings to print (default: 20)")
    parser.set_defaults(func=_run)
