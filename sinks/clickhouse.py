"""The ClickHouse side of the sink: a client for the configured store, and a batching writer.

chDB (embedded, the default) and a ClickHouse server are reached through the same
clickhouse-connect client API, so there is one code path for inserts: `client.insert(...)`.

chDB hosts one engine per process: every client in a process must use the same path (clients
on one path share it; a second path fails until every client on the first is closed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError, ProgrammingError

from settings import ClickHouseSettings
from sinks.migrate import check_identifier
from sinks.rows import COLUMNS, as_tuple, fit, partition_of

log = logging.getLogger(__name__)

# Server errors that say "not now" rather than "not this": the same insert may succeed later.
# TIMEOUT_EXCEEDED, TOO_MANY_SIMULTANEOUS_QUERIES, SOCKET_TIMEOUT, NETWORK_ERROR, ABORTED,
# MEMORY_LIMIT_EXCEEDED, TABLE_IS_READ_ONLY, TOO_MANY_PARTS (merges lagging), ALL_CONNECTION_TRIES_FAILED,
# UNKNOWN_STATUS_OF_INSERT, KEEPER_EXCEPTION, POCO_EXCEPTION, SERVER_OVERLOADED.
RETRYABLE_CODES = frozenset({159, 202, 209, 210, 236, 241, 242, 252, 279, 319, 999, 1000, 745})
# Errors about the store, not the rows (NO_SUCH_COLUMN_IN_TABLE, UNKNOWN_TABLE, UNKNOWN_DATABASE, READONLY,
# UNKNOWN_USER, REQUIRED_PASSWORD, ACCESS_DENIED, AUTHENTICATION_FAILED): every row would fail, so the flush
# raises rather than sending the whole stream to sink_rejects.
SYSTEMIC_CODES = frozenset({16, 60, 81, 164, 192, 194, 497, 516})
_CODE = re.compile(r"\bCode:\s*(\d+)")
REJECTS_TABLE = "sink_rejects"
REJECT_COLUMNS = ("rejected_at", "table", "error_class", "error_message", "topic", "partition", "offset")
MAX_REJECT_MESSAGE = 300
# A message's place on Kafka: (topic, partition, offset); ("", 0, 0) for rows not read from Kafka.
Source = tuple[str, int, int]
NO_SOURCE: Source = ("", 0, 0)


def error_code(error: BaseException) -> int | None:
    """The ClickHouse error code of a server error (from the driver, else from the message)."""
    if not isinstance(error, DatabaseError):
        return None
    code = getattr(error, "code", None)
    if code is None:
        found = _CODE.search(str(error))
        code = int(found.group(1)) if found else None
    return code


def is_retryable(error: BaseException) -> bool:
    """Connection and timeout failures, and server errors of RETRYABLE_CODES. Anything else (a value the
    column cannot hold, a type error, a violated constraint) fails the same way every time."""
    if isinstance(error, ConnectionError | TimeoutError | OperationalError):
        return True
    return not isinstance(error, ProgrammingError) and error_code(error) in RETRYABLE_CODES


def is_systemic(error: BaseException) -> bool:
    """An error no row caused (SYSTEMIC_CODES): the store is misconfigured, not the data."""
    return error_code(error) in SYSTEMIC_CODES


def error_class(error: BaseException) -> str:
    kind = type(error)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`")


def scrubbed_message(error: BaseException, rows: Iterable[Iterable[Any]] = ()) -> str:
    """The error's message without anything that may be a row's value: quoted text is dropped (ClickHouse
    quotes the data it could not parse), and so is any value of the rows it was about. Then truncated."""
    message = _QUOTED.sub("'?'", str(error))
    for row in rows:
        for value in row:
            for item in value if isinstance(value, list) else [value]:
                text = str(item) if isinstance(item, str | int | float) and not isinstance(item, bool) else ""
                if len(text) >= 4:
                    message = message.replace(text, "?")
    return message[:MAX_REJECT_MESSAGE]


def connect(settings: ClickHouseSettings, *, create_database: bool = True) -> Client:
    """A client on the configured store, its default database set to `settings.database`.

    create_database=False (read-only callers): a missing database is not created and the client
    stays on the server's default database."""
    database = check_identifier(settings.database)
    if settings.mode == "chdb":
        settings.path.mkdir(parents=True, exist_ok=True)
        # Returns timezone-aware datetimes for the DateTime64(3, 'UTC') columns.
        try:
            client = clickhouse_connect.get_client(interface="chdb", path=str(settings.path), tz_mode="aware")
        except ProgrammingError as error:
            raise ProgrammingError(
                f"{error}. The embedded store {settings.path} is opened by one process at a time: is `sgi sink`"
                " or `sgi demo` still running? Stop it, or point SGI_CLICKHOUSE_MODE=server at a ClickHouse server."
            ) from error
    else:
        client = clickhouse_connect.get_client(
            host=settings.host,
            port=settings.port,
            username=settings.user,
            password=settings.password.get_secret_value(),
            tz_mode="aware",
        )
    if create_database:
        client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    elif not client.command("SELECT count() FROM system.databases WHERE name = {name:String}", {"name": database}):
        return client
    client.database = database
    return client


def dedup_token(table: str, rows: list[list[Any]]) -> str:
    """A deterministic insert_deduplication_token for one batch: the same rows give the same token,
    so a retried (or, after a crash, re-read) batch that already landed is dropped by ClickHouse."""
    digest = hashlib.sha256(table.encode())
    for row in rows:
        digest.update(json.dumps(row, default=str, separators=(",", ":")).encode())
        digest.update(b"\n")
    return f"{table}:{len(rows)}:{digest.hexdigest()}"


@dataclass(frozen=True)
class Entry:
    """One buffered row: its values in COLUMNS order, the message it came from, its partition."""

    values: list[Any]
    source: Source
    partition: int


class BatchWriter:
    """A buffer per table plus `write(table, entries)`.

    `add` only buffers and says whether a flush is due: the caller decides when to flush
    (`flush_if_due` after a whole poll) so it can commit its input offsets for exactly what was
    flushed. With `auto_flush=True` (callers with no offsets to commit), `add` flushes when due.
    A flush is due when any table holds `batch_size` rows or the oldest buffered row is `max_wait`
    seconds old, and it writes every table.

    Survives any one row:
    - `add` fits each row to its columns (sinks.rows.fit: an out-of-range datetime or integer becomes
      NULL, or the nearest storable value in a required column), counted in `values_fitted`.
    - A flush inserts one partition at a time (rows grouped by sinks.rows.partition_of), so a backfill
      spanning any number of months never exceeds ClickHouse's partitions per insert.
    - A retryable failure (connection, timeout, server busy: `is_retryable`) is retried with exponential
      backoff (`backoff` doubling up to `max_backoff`) up to `max_attempts`. A failure that is not
      retryable splits the batch in halves until the failing rows are alone. A row that still cannot be
      written (not retryable, or retries exhausted) goes to `sink_rejects` (table, error class and a
      scrubbed message, its source topic/partition/offset; never its values), counted in `rejected`, and
      the flush goes on, so the caller commits past it. If even the reject cannot be written (the store
      is down), or the error is about the store rather than a row (`is_systemic`: unknown table, access
      denied, ...), the flush raises and what was not written stays buffered: a batch is never lost.

    A retried batch that did land cannot duplicate: it carries the same deduplication token
    (tables keep `non_replicated_deduplication_window`), and every table is a ReplacingMergeTree
    keyed by the record's id, so FINAL collapses any copy that slips through.
    """

    def __init__(
        self,
        client: Client,
        *,
        database: str | None = None,
        batch_size: int = 5000,
        max_wait: float = 1.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        dedup_tokens: bool = True,
        auto_flush: bool = False,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if batch_size < 1 or max_attempts < 1:
            raise ValueError("batch_size and max_attempts must be at least 1")
        self.client = client
        self.database = database
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.dedup_tokens = dedup_tokens
        self.auto_flush = auto_flush
        self._clock = clock
        self._sleep = sleep
        self._wall_clock = wall_clock
        self._buffers: dict[str, list[Entry]] = {}
        self._oldest: float | None = None
        self.rows_written = 0
        self.retries = 0
        self.rejected = 0  # rows written to sink_rejects instead of their table
        self.values_fitted = 0  # values changed by sinks.rows.fit

    # --- buffering ---

    def add(self, table: str, row: Mapping[str, Any], source: Source = NO_SOURCE) -> bool:
        """Buffer one row (a dict with every column of COLUMNS[table]) read from `source`. Returns
        whether a flush is due (after auto_flush, whether one is still due: never)."""
        fitted, changed = fit(table, dict(row))
        if changed:
            self.values_fitted += len(changed)
            # Column names and the message's place only: the values may be partner data.
            log.warning("%s: %s out of the column's range, stored as NULL or the nearest storable value"
                        " (message %s[%d]@%d)", table, ", ".join(changed), *source)
        entry = Entry(as_tuple(table, fitted), source, partition_of(table, fitted))
        self._buffers.setdefault(table, []).append(entry)
        if self._oldest is None:
            self._oldest = self._clock()
        if self.auto_flush:
            self.flush_if_due()
        return self.due()

    def add_rows(self, table: str, rows: Iterable[Mapping[str, Any]], source: Source = NO_SOURCE) -> bool:
        for row in rows:
            self.add(table, row, source)
        return self.due()

    def add_reject(self, table: str, error: BaseException, source: Source = NO_SOURCE) -> bool:
        """Buffer a reject for a message whose rows for `table` could not even be made (no values kept)."""
        self._buffers.setdefault(REJECTS_TABLE, []).append(Entry(self._reject_row(table, error, source, []), source, 0))
        self.rejected += 1
        if self._oldest is None:
            self._oldest = self._clock()
        return self.due()

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return sum(len(entries) for entries in self._buffers.values())

    def due(self) -> bool:
        if self._oldest is None:
            return False
        if any(len(entries) >= self.batch_size for entries in self._buffers.values()):
            return True
        return self._clock() - self._oldest >= self.max_wait

    def flush_if_due(self) -> int:
        return self.flush() if self.due() else 0

    def flush(self) -> int:
        """Write every buffered row, table by table, one partition at a time in chunks of `batch_size`.
        Returns rows handled (written, or rejected into sink_rejects). Raises only when a reject cannot be
        written either; what was not handled stays buffered."""
        handled = 0
        for table in list(self._buffers):
            # Stable: rows of one partition keep their order.
            entries = sorted(self._buffers[table], key=lambda entry: entry.partition)
            self._buffers[table] = entries
            while entries:
                partition = entries[0].partition
                size = 1
                while size < min(self.batch_size, len(entries)) and entries[size].partition == partition:
                    size += 1
                chunk = entries[:size]
                self.write(table, chunk)
                del entries[:size]
                handled += size
            del self._buffers[table]
        self._oldest = None
        return handled

    # --- the one insert path ---

    def write(self, table: str, entries: list[Entry]) -> None:
        """Insert one batch, retrying what is retryable; isolate and reject the rows that cannot be written."""
        if not entries:
            return
        try:
            self._insert(table, [entry.values for entry in entries])
        except Exception as error:
            if is_systemic(error):
                raise
            if len(entries) > 1 and not is_retryable(error):
                middle = len(entries) // 2
                self.write(table, entries[:middle])
                self.write(table, entries[middle:])
                return
            if table == REJECTS_TABLE:
                raise
            log.error("%d row(s) for %s cannot be written (%s), recorded in %s", len(entries), table,
                      error_class(error), REJECTS_TABLE)
            rejects = [self._reject_row(table, error, entry.source, [entry.values]) for entry in entries]
            self._insert(REJECTS_TABLE, rejects)  # raises if the store cannot take even this
            self.rejected += len(rejects)

    def _reject_row(self, table: str, error: BaseException, source: Source, rows: list[list[Any]]) -> list[Any]:
        topic, partition, offset = source
        return [self._wall_clock(), table, error_class(error), scrubbed_message(error, rows), topic, partition, offset]

    def _insert(self, table: str, rows: list[list[Any]]) -> None:
        """One insert, retried with bounded exponential backoff while the failure is retryable."""
        columns = list(REJECT_COLUMNS if table == REJECTS_TABLE else COLUMNS[table])
        settings = {"insert_deduplication_token": dedup_token(table, rows)} if self.dedup_tokens else None
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.client.insert(table, rows, column_names=columns, database=self.database, settings=settings)
            except Exception as error:
                if not is_retryable(error) or attempt == self.max_attempts:
                    raise
                self.retries += 1
                log.warning("insert into %s failed (attempt %d/%d), retrying in %.1fs: %s",
                            table, attempt, self.max_attempts, delay, error_class(error))
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff)
            else:
                if table != REJECTS_TABLE:
                    self.rows_written += len(rows)
                return
