"""Versioned schema migrations: sinks/schema/NNN_name.sql, applied in order, each exactly once.

Applied versions are recorded in `<database>.schema_migrations`, so re-running is a no-op.
A file holds one or more statements separated by `;`; every statement is idempotent
(`IF NOT EXISTS`), so a migration interrupted half-way is simply applied again from the top.
Placeholders: `{database}`, the retention periods of `RetentionSettings.placeholders()` and `{time_zone}`
(the rules config's, for local days). A migration must never be edited once applied: add a new one (its
checksum is checked). The one exception is listed in EARLIER_CHECKSUMS: an edit that renders the very same
SQL for the default settings, so stores migrated before it keep their tables and stay valid.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from settings import RetentionSettings
from streams.core.config import load_rules

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
READONLY_ROLE_SQL = SCHEMA_DIR / "readonly_role.sql"
MIGRATION_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# `{name}` only: `{name:Type}` query parameters and other braces are left alone.
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# An IANA zone name as it goes into a SQL string literal ('Europe/London', 'America/Argentina/Buenos_Aires').
TIME_ZONE = re.compile(r"^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$")
# version -> checksums of earlier texts that gave the same SQL for the default settings. 004 said
# 'Europe/London' where it now says {time_zone} (default: the shipped rules config's, Europe/London).
EARLIER_CHECKSUMS: dict[int, frozenset[str]] = {
    4: frozenset({"4e0be4c5901e17ba57b7749a131ecbe3bfa47cfc19d084d19607524f4ab8020a"}),
}


class MigrationError(RuntimeError):
    """A migration cannot be applied; the message says which and why."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def discover(schema_dir: Path = SCHEMA_DIR) -> list[Migration]:
    """The NNN_name.sql files in version order. Other .sql files (readonly_role.sql) are not migrations."""
    found: dict[int, Migration] = {}
    for path in sorted(schema_dir.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations share version {version:03d}: {found[version].path.name}, {path.name}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def split_statements(sql: str) -> list[str]:
    """Split on `;` outside string literals, quoted identifiers and comments.

    A chunk holding only comments and whitespace is not a statement and is dropped."""
    statements: list[str] = []
    current: list[str] = []
    has_code = False
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            current.append(sql[i:end])
            i = end
            continue
        if ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            current.append(sql[i:end])
            i = end
            continue
        if ch in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote escapes itself
                        j += 2
                        continue
                    break
                j += 1
            current.append(sql[i : j + 1])
            has_code = True
            i = j + 1
            continue
        if ch == ";":
            if has_code:
                statements.append("".join(current).strip())
            current, has_code = [], False
            i += 1
            continue
        if not ch.isspace():
            has_code = True
        current.append(ch)
        i += 1
    if has_code:
        statements.append("".join(current).strip())
    return statements


def render(sql: str, values: dict[str, str]) -> str:
    """Substitute `{name}` placeholders; an unknown name is an error, never left in the SQL."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise MigrationError(f"unknown placeholder {{{name}}} (known: {', '.join(sorted(values))})")
        return values[name]

    return PLACEHOLDER.sub(substitute, sql)


def check_identifier(database: str) -> str:
    if not IDENTIFIER.match(database):
        raise MigrationError(f"database name {database!r} must be letters, digits and underscores")
    return database


def sql_string(text: str) -> str:
    """A single-quoted ClickHouse string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_migrations_table(client: Any, database: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.command(
        f"CREATE TABLE IF NOT EXISTS {database}.schema_migrations ("
        " version UInt32, name String, checksum String,"
        " applied_at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC'))"
        " ENGINE = ReplacingMergeTree ORDER BY version"
    )


def applied_versions(client: Any, database: str) -> dict[int, str]:
    """version -> checksum of every migration recorded as applied."""
    result = client.query(
        f"SELECT version, argMax(checksum, applied_at) FROM {database}.schema_migrations GROUP BY version"
    )
    return {int(version): str(checksum) for version, checksum in result.result_rows}


def check_time_zone(time_zone: str) -> str:
    if not TIME_ZONE.match(time_zone):
        raise MigrationError(f"time zone {time_zone!r} is not an IANA zone name")
    return time_zone


def migrate(
    client: Any,
    database: str,
    retention: RetentionSettings | None = None,
    schema_dir: Path = SCHEMA_DIR,
    time_zone: str | None = None,
) -> list[int]:
    """Apply every migration not yet recorded, in version order. Returns the versions applied now
    (empty: the schema was up to date). Creates the database if it is missing.

    time_zone: the rules config's (RulesConfig.timezone; None: the shipped config's). Like a retention
    period it is fixed when a table is created."""
    check_identifier(database)
    values = {
        "database": database,
        "time_zone": check_time_zone(time_zone or load_rules().timezone),
        **(retention or RetentionSettings()).placeholders(),
    }
    ensure_migrations_table(client, database)
    done = applied_versions(client, database)
    applied: list[int] = []
    for migration in discover(schema_dir):
        if migration.version in done:
            recorded = done[migration.version]
            if recorded != migration.checksum and recorded not in EARLIER_CHECKSUMS.get(migration.version, ()):
                raise MigrationError(
                    f"migration {migration.path.name} changed after it was applied to {database}; "
                    "add a new migration instead of editing an applied one"
                )
            continue
        for statement in split_statements(render(migration.text, values)):
            try:
                client.command(statement)
            except Exception as error:
                raise MigrationError(f"{migration.path.name}: {error}") from error
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
            database=database,
        )
        applied.append(migration.version)
    return applied


def apply_readonly_role(client: Any, password: str, database: str | None = None) -> None:
    """Create or refresh the `grafana_reader` user (SELECT on the database, readonly = 2).

    ClickHouse server only: chDB has no users or grants and rejects CREATE USER."""
    if not password:
        raise MigrationError("the read-only user needs a non-empty password")
    name = check_identifier(database or client.database or "default")
    values = {"database": name, "password": sql_string(password)}
    for statement in split_statements(render(READONLY_ROLE_SQL.read_text(encoding="utf-8"), values)):
        client.command(statement)
