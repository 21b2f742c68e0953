"""`sgi db migrate|reader-role` and `sgi sql "QUERY"`: the store, from the command line.

Both act on the configured store (ClickHouseSettings: embedded chDB by default, or a server).
`sql` is read-only unless told otherwise: analysts query safeguarding data, they do not edit it.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import IO, Any
from uuid import UUID

from clickhouse_connect.driver.exceptions import Error as ClickHouseClientError
from pydantic import ValidationError

from settings import ClickHouseSettings, ReaderSettings, RetentionSettings, WorkerSettings
from sinks.clickhouse import connect
from sinks.migrate import MigrationError, apply_readonly_role, discover, migrate
from streams.core.config import load_rules

FORMATS = ("table", "json", "csv")
DEFAULT_MAX_WIDTH = 40
# Statements that return no result set: run as commands and reported as OK.
COMMAND = re.compile(
    r"^(CREATE|ALTER|SYSTEM|GRANT|REVOKE|DETACH|ATTACH|DROP|DELETE|KILL|OPTIMIZE|SET|RENAME|TRUNCATE|USE"
    r"|UPDATE|INSERT|EXCHANGE|UNDROP)\b",
    re.IGNORECASE,
)
LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)+", re.DOTALL)


def error_text(error: BaseException) -> str:
    """The server's message without the client's stack trace or chDB's appended FORMAT clause."""
    text = str(error).split("Stack trace", 1)[0].strip()
    text = text.replace("\n FORMAT Native", "")
    return text or type(error).__name__


# --- formatting --------------------------------------------------------------------------------


def cell_text(value: Any) -> str:
    """One value as a person reads it: NULL, ISO datetimes, JSON for arrays, maps and tuples."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=json_default, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def truncate(text: str, width: int) -> str:
    text = text.replace("\n", " ")
    if width > 0 and len(text) > width:
        return text[: max(width - 1, 0)] + "…"
    return text


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def render_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int) -> str:
    """Aligned columns under their headers, numbers right-aligned, long cells cut at max_width."""
    if not columns:  # chDB returns no column names for an empty result
        return f"({len(rows)} rows)"
    header = [truncate(name, max_width) for name in columns]
    cells = [[truncate(cell_text(value), max_width) for value in row] for row in rows]
    widths = [len(name) for name in header]
    for row in cells:
        for i, text in enumerate(row):
            widths[i] = max(widths[i], len(text))
    numeric = [bool(rows) and all(is_number(row[i]) or row[i] is None for row in rows) for i in range(len(columns))]

    def line(texts: Sequence[str]) -> str:
        parts = [
            text.rjust(w) if numeric[i] else text.ljust(w)
            for i, (text, w) in enumerate(zip(texts, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    count = len(rows)
    out.append(f"({count} row{'' if count == 1 else 's'})")
    return "\n".join(out)


def write_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, max_width: int, out: IO[str]) -> None:
    if fmt == "json":
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        out.write(json.dumps(records, default=json_default, ensure_ascii=False, indent=2) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if v is None else cell_text(v) for v in row])
    else:
        out.write(render_table(columns, rows, max_width) + "\n")


# --- commands ----------------------------------------------------------------------------------


def run_sql(client: Any, query: str, fmt: str = "table", max_width: int = DEFAULT_MAX_WIDTH,
            write: bool = False, out: IO[str] | None = None) -> None:
    """Run one statement and print its result. Read-only (readonly = 2) unless write is set.
    Raises the client's error on a failed statement."""
    out = out or sys.stdout
    settings = None if write else {"readonly": 2}
    statement = LEADING_COMMENTS.sub("", query).strip().rstrip(";")
    if COMMAND.match(statement):
        client.command(statement, settings=settings)
        out.write("OK\n")
        return
    result = client.query(statement, settings=settings)
    write_result(list(result.column_names), result.result_rows, fmt, max_width, out)


def _sql(args: argparse.Namespace) -> int:
    try:
        client = connect(ClickHouseSettings(), create_database=False)
    except (ClickHouseClientError, OSError, ValidationError) as error:
        print(f"error: cannot open the store: {error_text(error)}", file=sys.stderr)
        return 2
    try:
        run_sql(client, args.query, args.format, args.max_width, args.write)
    except ClickHouseClientError as error:
        message = error_text(error)
        print(f"error: {message}", file=sys.stderr)
        if "READONLY" in message and not args.write:
            print("(sgi sql is read-only; pass --write to change data)", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = ClickHouseSettings()
    try:
        client = connect(settings)
    except (ClickHouseClientError, OSError) as error:
        print(f"error: cannot open the store: {error_text(error)}", file=sys.stderr)
        return 2
    try:
        applied = migrate(client, settings.database, RetentionSettings(),
                          time_zone=load_rules(WorkerSettings().rules).timezone)
    except (MigrationError, ClickHouseClientError, OSError, ValueError) as error:
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 1
    finally:
        client.close()
    names = {m.version: m.name for m in discover()}
    if not applied:
        print(f"{settings.database}: up to date ({len(names)} migrations)")
    for version in applied:
        print(f"{settings.database}: applied {version:03d}_{names[version]}")
    return 0


def _reader_role(args: argparse.Namespace) -> int:
    settings = ClickHouseSettings()
    if settings.mode != "server":
        print("error: the read-only user needs a ClickHouse server (SGI_CLICKHOUSE_MODE=server); "
              "chDB has no users or grants", file=sys.stderr)
        return 2
    try:
        password = ReaderSettings().password.get_secret_value()
    except ValidationError:
        print("error: set SGI_CLICKHOUSE_READER_PASSWORD to the read-only user's password", file=sys.stderr)
        return 2
    try:
        client = connect(settings)
        try:
            apply_readonly_role(client, password, settings.database)
        finally:
            client.close()
    except (MigrationError, ClickHouseClientError, OSError) as error:
        print(f"error: {error_text(error)}", file=sys.stderr)
        return 1
    print(f"grafana_reader can read {settings.database} (readonly = 2)")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `db` (migrate, reader-role) and `sql`."""
    db = subparsers.add_parser(
        "db",
        help="manage the ClickHouse store (schema migrations, read-only user)",
        description="Manage the configured ClickHouse store (SGI_CLICKHOUSE_*: embedded chDB or a server).",
    )
    db_commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    migrate_parser = db_commands.add_parser(
        "migrate",
        help="apply pending schema migrations (sinks/schema/NNN_*.sql)",
        description="Create the database if missing and apply every migration not yet recorded in "
        "schema_migrations, in order. Re-running is a no-op. Retention periods come from SGI_RETENTION_*.",
    )
    migrate_parser.set_defaults(func=_migrate)
    reader = db_commands.add_parser(
        "reader-role",
        help="create or refresh the grafana_reader user (server mode only)",
        description="Create the grafana_reader user and role with SELECT on the database and readonly = 2 "
        "(sinks/schema/readonly_role.sql). Password from SGI_CLICKHOUSE_READER_PASSWORD. Re-runnable.",
    )
    reader.set_defaults(func=_reader_role)

    sql = subparsers.add_parser(
        "sql",
        help="run one SQL statement against the store and print the result",
        description="Run one SQL statement against the configured store and print the result. "
        "Read-only unless --write is given. Tables: events, episodes, child_state, alerts, alert_changes, "
        "place_links, places, deadletter (read the latest version with FINAL).",
    )
    sql.add_argument("query", help='the statement, e.g. "SELECT rule, count() FROM alerts FINAL GROUP BY rule"')
    sql.add_argument("--format", choices=FORMATS, default="table",
                     help="output: an aligned table (default), a JSON array of objects, or CSV with a header")
    sql.add_argument("--max-width", type=int, default=DEFAULT_MAX_WIDTH, metavar="N",
                     help=f"table format: cut cells longer than N characters (default {DEFAULT_MAX_WIDTH}; 0: never)")
    sql.add_argument("--write", action="store_true",
                     help="allow statements that change data or schema (default: read-only)")
    sql.set_defaults(func=_sql)
