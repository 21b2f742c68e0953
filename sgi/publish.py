"""`sgi publish FILE`: the partner-side tool. JSON Lines -> the inbound topic, with kafka-python.

The key is a stable hash of the message's first identifier, so one child's events keep their
order on one partition. The key is a hash (SHA-256), so the raw identifier is not in the key;
the value still carries raw identifiers, which is why the inbound topic has short retention.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

from tqdm import tqdm

from settings import KafkaSettings
from streams.kafka_security import kafka_python_options
from streams.topics import INBOUND


def message_key(raw: bytes) -> bytes | None:
    """SHA-256 of the first identifier's "scheme:value" (identity.linked: the first linked one)."""
    try:
        doc = json.loads(raw)
        identifiers = (doc.get("child") or {}).get("identifiers") or (doc.get("payload") or {}).get("identifiers") or []
        first = identifiers[0]
        text = f"{first['scheme']}:{str(first['value']).replace(' ', '').strip().upper()}"
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return None  # malformed: any partition will do; the pipeline dead-letters it
    return hashlib.sha256(text.encode("utf-8")).hexdigest().encode("ascii")


def open_input(path: str) -> BinaryIO:
    """The file at `path`, or stdin for '-'; the caller closes it (use `with`)."""
    return sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115


def read_lines(path: str) -> Iterator[bytes]:
    """Non-empty lines of a file, or of stdin for '-'."""
    with open_input(path) as stream:
        for line in stream:
            line = line.strip()
            if line:
                yield line


def publish_messages(
    messages: Iterable[bytes],
    bootstrap: str,
    topic: str = INBOUND,
    total: int | None = None,
    progress: bool = True,
    security: Mapping[str, Any] | None = None,
) -> int:
    """Send every message, wait for every acknowledgement, and return how many were sent. Raises
    PublishError when any message was not acknowledged (nothing is reported sent that was lost).
    Retries ride out a moment without a partition leader (a topic just created, a broker restarting).
    `security`: login and TLS options (streams.kafka_security.kafka_python_options); None for PLAINTEXT."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, retries=20,
                             retry_backoff_ms=500, **(security or {}))
    sent = 0
    failures: list[Exception] = []
    try:
        for raw in tqdm(messages, total=total, unit="msg", desc=f"publish -> {topic}", disable=not progress):
            producer.send(topic, key=message_key(raw), value=raw).add_errback(failures.append)
            sent += 1
        producer.flush()
    finally:
        producer.close()
    if failures:
        raise PublishError(f"{len(failures)} of {sent} messages were not acknowledged by {bootstrap} "
                           f"(first error: {failures[0]!r}); publish them again")
    return sent


class PublishError(RuntimeError):
    """Some messages were not acknowledged by the broker."""


def _run(args: argparse.Namespace) -> int:
    settings = KafkaSettings()
    bootstrap = args.bootstrap or settings.bootstrap
    total = None
    if args.file != "-":
        with Path(args.file).open("rb") as handle:
            total = sum(1 for line in handle if line.strip())
    try:
        sent = publish_messages(read_lines(args.file), bootstrap, args.topic, total=total,
                                security=kafka_python_options(settings))
    except PublishError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"published {sent} messages to {args.topic} on {bootstrap}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "publish",
        help="publish JSON Lines partner events to the inbound topic",
        description="Publish JSON Lines (one contract event per line) to the inbound topic. "
        "Messages are keyed by a hash of their first identifier so one child's events keep their order.",
    )
    parser.add_argument("file", help="JSON Lines file, or - for stdin")
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers (default: SGI_KAFKA_BOOTSTRAP or 127.0.0.1:9092)")
    parser.add_argument("--topic", default=INBOUND, help=f"topic to publish to (default: {INBOUND})")
    parser.set_defaults(func=_run)
