"""Embedded ClickHouse for the storage tests: one chDB store per module, a fresh migrated database per test.
A module that needs another store (a filled one) defines its own fixtures of these names."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from settings import ClickHouseSettings
from sinks.clickhouse import connect
from sinks.migrate import migrate


@pytest.fixture(scope="module")
def chdb_settings(tmp_path_factory: pytest.TempPathFactory) -> ClickHouseSettings:
    return ClickHouseSettings(mode="chdb", path=tmp_path_factory.mktemp("chdb"), database="sgi_test")


@pytest.fixture(scope="module")
def client(chdb_settings: ClickHouseSettings) -> Iterator[Client]:
    ch = connect(chdb_settings)
    try:
        yield ch
    finally:
        ch.close()


@pytest.fixture
def database(client: Client) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    migrate(client, name)
    yield name
    client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
