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
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DataError, ProgrammingError

from settings import ClickHouseSettings
from sinks.migrate import check_identifier
from sinks.rows import COLUMNS, as_tuple

log = logging.getLogger(__name__)

# Errors in the batch itself: retrying the same rows cannot help.
NOT_RETRYABLE: tuple[type[BaseException], ...] = (ProgrammingError, DataError, TypeError, ValueError, KeyError)


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


class BatchWriter:
    """A buffer per table plus `write(table, rows)`.

    `add` only buffers and says whether a flush is due: the caller decides when to flush
    (`flush_if_due` after a whole poll) so it can commit its input offsets for exactly what was
    flushed. With `auto_flush=True` (callers with no offsets to commit), `add` flushes when due.
    A flush is due when any table holds
    `batch_size` rows or the oldest buffered row is `max_wait` seconds old, and it writes every
    table. A failed write is retried with exponential backoff up to `max_attempts`, then raised;
    rows leave the buffer only once their insert succeeded, so a batch is never lost.

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
        self._buffers: dict[str, list[list[Any]]] = {}
        self._oldest: float | None = None
        self.rows_written = 0
        self.retries = 0

    # --- buffering ---

    def add(self, table: str, row: Mapping[str, Any]) -> bool:
        """Buffer one row (a dict with every column of COLUMNS[table]). Returns whether a flush is
        due (after auto_flush, whether one is still due: never)."""
        values = as_tuple(table, row)
        self._buffers.setdefault(table, []).append(values)
        if self._oldest is None:
            self._oldest = self._clock()
        if self.auto_flush:
            self.flush_if_due()
        return self.due()

    def add_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> bool:
        for row in rows:
            self.add(table, row)
        return self.due()

    @property
    def pending(self) -> int:
        """Rows buffered and not yet written."""
        return sum(len(rows) for rows in self._buffers.values())

    def due(self) -> bool:
        if self._oldest is None:
            return False
        if any(len(rows) >= self.batch_size for rows in self._buffers.values()):
            return True
        return self._clock() - self._oldest >= self.max_wait

    def flush_if_due(self) -> int:
        return self.flush() if self.due() else 0

    def flush(self) -> int:
        """Write every buffered row, table by table, in chunks of `batch_size`. Returns rows written.
        Raises after `max_attempts` failures of one chunk; what was not written stays buffered."""
        written = 0
        for table in list(self._buffers):
            rows = self._buffers[table]
            while rows:
                chunk = rows[: self.batch_size]
                self.write(table, chunk)
                del rows[: len(chunk)]
                written += len(chunk)
            del self._buffers[table]
        self._oldest = None
        return written

    # --- the one insert path ---

    def write(self, table: str, rows: list[list[Any]]) -> None:
        """Insert one batch of positional rows (COLUMNS[table] order), retrying transient failures."""
        if not rows:
            return
        settings = {"insert_deduplication_token": dedup_token(table, rows)} if self.dedup_tokens else None
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                self.client.insert(
                    table, rows, column_names=list(COLUMNS[table]), database=self.database, settings=settings
                )
            except NOT_RETRYABLE:
                raise
            except Exception as error:
                if attempt == self.max_attempts:
                    log.error("insert into %s failed %d times, giving up: %s", table, attempt, error)
                    raise
                self.retries += 1
                log.warning("insert into %s failed (attempt %d/%d), retrying in %.1fs: %s",
                            table, attempt, self.max_attempts, delay, error)
                self._sleep(delay)
                delay = min(delay * 2, self.max_backoff)
            else:
                self.rows_written += len(rows)
                return
