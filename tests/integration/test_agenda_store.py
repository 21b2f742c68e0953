"""The CMOG agenda three ways on one log: ranked from the store (`sgi agenda`), from the replayed log
(`sgi agenda --replay`), and by the built Grafana board's SQL, which must all agree; and the meeting pack
shows it. The store is filled by the real core: contract events (cmog.* ones from contract_builders) ->
ingest -> Engine -> sinks.rows -> chDB.

Children: k1 listed then stepped down, with an action done in time; k2 a return interview overdue;
k3 whose police alert the meeting reviewed; k4 known first by an NHS number, listed and given actions
under a UPN, the two linked later (the store keeps the UPN's key on its events and maps it through
child_state.merged_keys; the replay through the identity union-find).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from models.derived import Alert, DeadLetter
from report import build_pack
from report.agenda import AgendaEntry, accountability, rank
from report.agenda_store import load
from settings import ClickHouseSettings
from sgi.agenda import replay_agenda
from sinks.clickhouse import BatchWriter, connect
from sinks.migrate import migrate
from sinks.rows import rows_of
from streams.core.clock import advance_watermark
from streams.core.config import load_rules
from streams.core.engine import Engine
from streams.core.ingest import Origin, ingest
from tests.support.grafana_macros import TimeRange, expand
from tests.unit import builders as b
from tests.unit.contract_builders import minimal

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENDA_BOARD = ROOT / "grafana" / "provisioning" / "dashboards" / "safeguarding" / "cmog-agenda.json"
DATABASE = "agenda_test"
T0 = b.T0
H = timedelta(hours=1)
AS_OF = T0 + timedelta(days=4)

K1, K2, K3, K4 = (b.Kid.make(seed) for seed in (11, 12, 13, 14))
K4_UPN = b.upn(9004)
K4_AS_UPN = K4.known_as("upn", K4_UPN)


def cmog(event_type: str, kid: b.Kid, at: datetime, n: int, **payload: Any) -> dict[str, Any]:
    doc = minimal(event_type)
    doc["child"] = kid.child_doc()
    doc["occurred_at"] = at.isoformat()
    doc["event_id"] = f"00000000-0000-4000-8000-{n:012d}"
    doc["payload"].update(payload)
    return doc


def partner_events() -> list[dict[str, Any]]:
    return [
        b.missing_started(K1, T0, "EP-1", risk="high"),
        b.missing_started(K2, T0 + H, "EP-2", risk="high"),
        b.missing_ended(K2, T0 + 2 * H, "EP-2"),
        b.missing_started(K3, T0 + 2 * H, "EP-3", risk="high"),
        b.missing_started(K4, T0 + 3 * H, "EP-4", risk="high"),
    ]


def the_log() -> list[dict[str, Any]]:
    partner = partner_events()
    k3_police = next(alert.alert_id for alert in b.run(partner, T0 + 30 * H).current_alerts()
                     if alert.subject == K3.key and alert.rule == "police_high_risk")
    due = (T0 + 60 * H).isoformat()
    return partner + [
        cmog("cmog.listed", K1, T0 + 30 * H, 1),
        cmog("cmog.action.set", K1, T0 + 30 * H, 2, action_ref="A-1", owner_agency="police", due_at=due),
        cmog("cmog.reviewed", K3, T0 + 30 * H, 3, decision="keep", alert_ids=[k3_police]),
        cmog("cmog.listed", K4_AS_UPN, T0 + 30 * H, 4),
        cmog("cmog.action.set", K4_AS_UPN, T0 + 30 * H, 5, action_ref="A-4", owner_agency="health",
             due_at=(T0 + 50 * H).isoformat()),
        cmog("cmog.action.set", K4_AS_UPN, T0 + 30 * H, 6, action_ref="A-5", owner_agency="health",
             due_at=(T0 + 40 * H).isoformat(), kind="referral"),
        b.linked([K4.identifiers[0], ("upn", K4_UPN)], T0 + 31 * H),
        cmog("cmog.reviewed", K1, T0 + 32 * H, 7, decision="step_down"),
        cmog("cmog.action.updated", K4_AS_UPN, T0 + 45 * H, 8, action_ref="A-5", status="done"),
        cmog("cmog.action.updated", K1, T0 + 50 * H, 9, action_ref="A-1", status="done"),
    ]


def log_lines() -> list[str]:
    return [json.dumps(doc) for doc in the_log()]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    settings = ClickHouseSettings(mode="chdb", path=tmp_path_factory.mktemp("chdb"), database=DATABASE)
    ch = connect(settings)
    try:
        config = load_rules()
        migrate(ch, DATABASE, time_zone=config.timezone)
        writer = BatchWriter(ch, database=DATABASE, batch_size=10_000, max_wait=3600.0)
        engine = Engine(config)
        watermark: datetime | None = None
        for offset, line in enumerate(log_lines()):
            fact = ingest(b.secret(), line.encode(), Origin("test", 0, offset, AS_OF))
            assert not isinstance(fact, DeadLetter), fact.errors
            watermark = advance_watermark(watermark, fact.occurred_at)
            for record in [fact, *engine.process(fact, watermark), *engine.advance(watermark)]:
                writer.add_rows(*rows_of(record, config.zone))
        for record in engine.advance(AS_OF):
            writer.add_rows(*rows_of(record, config.zone))
        writer.flush()
        ch.database = DATABASE
        yield ch
    finally:
        ch.close()  # chDB allows one path per process: free it for the next module


def comparable(entries: tuple[AgendaEntry, ...] | list[AgendaEntry]) -> list[tuple[Any, ...]]:
    return [(e.rank, e.child_key, e.priority, e.rules, e.on_list, e.open_actions, e.overdue_actions, e.last_review,
             e.last_decision) for e in entries]


def store_agenda(client: Client, as_of: datetime = AS_OF, top: int = 30) -> Any:
    alerts, records = load(client, as_of)
    return rank(alerts, records, load_rules().agenda.weights, as_of, top)


def test_store_agenda_is_the_expected_ranking(client: Client) -> None:
    agenda = store_agenda(client)
    canonical_k4 = min(K4.key, K4_AS_UPN.key)
    by_key = {entry.child_key: entry for entry in agenda.entries}
    assert set(by_key) == {K1.key, K2.key, K3.key, canonical_k4}
    assert by_key[K1.key].priority == 9 and by_key[K1.key].on_list is False  # stepped down
    assert (by_key[K1.key].last_review, by_key[K1.key].last_decision) == (T0 + 32 * H, "step_down")
    assert (by_key[K1.key].open_actions, by_key[K1.key].overdue_actions) == (0, 0)  # done in time
    assert by_key[K2.key].rules == ("rhi_overdue",) and by_key[K2.key].priority == 1
    assert by_key[K3.key].rules == ("long_missing",)  # its police alert was reviewed
    k4 = by_key[canonical_k4]
    assert (k4.on_list, k4.open_actions, k4.overdue_actions) == (True, 1, 1)  # listed under the UPN
    assert [entry.child_key for entry in agenda.entries][:2] == [canonical_k4, K1.key]  # 9 each: K4's alert is later
    accounts = {account.owner_agency: account for account in accountability(load(client, AS_OF)[1], AS_OF)}
    assert (accounts["health"].actions_set, accounts["health"].done_late, accounts["health"].overdue_now) == (2, 1, 1)
    assert (accounts["police"].actions_set, accounts["police"].done_in_time) == (1, 1)


@pytest.mark.parametrize("as_of", [T0 + 31 * H, T0 + 50 * H, AS_OF])
def test_store_agenda_equals_replay_agenda(client: Client, as_of: datetime) -> None:
    replayed = replay_agenda(log_lines(), b.secret(), load_rules(), until=as_of)
    stored = store_agenda(client, as_of)
    assert comparable(stored.entries) == comparable(replayed.entries)
    assert stored.rest == replayed.rest
    assert stored.entries, "nothing ranked"


@pytest.mark.parametrize("as_of", [T0 + 31 * H, AS_OF])
def test_board_sql_ranking_equals_the_python_ranking(client: Client, as_of: datetime) -> None:
    board = json.loads(AGENDA_BOARD.read_text(encoding="utf-8"))
    [panel] = [panel for panel in board["panels"] if panel["title"] == "Agenda: children ranked by priority"]
    sql = expand(panel["targets"][0]["rawSql"], TimeRange(start=as_of - timedelta(days=30), end=as_of,
                                                          interval=timedelta(days=1)))
    result = client.query(sql, settings={"readonly": 1})
    columns = list(result.column_names)
    rows = [dict(zip(columns, row, strict=True)) for row in result.result_rows]

    def utc(moment: datetime | None) -> datetime | None:
        return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment

    from_sql = [(int(row["rank"]), row["child_key"], int(row["priority"]), tuple(row["rules"]), bool(row["on_list"]),
                 int(row["open_actions"]), int(row["overdue_actions"]), utc(row["last_review"]), row["last_decision"])
                for row in rows]
    python = store_agenda(client, as_of, top=1_000)
    assert from_sql == comparable(python.entries)
    assert len(from_sql) >= 3


def test_top_n_and_the_rest(client: Client) -> None:
    agenda = store_agenda(client, top=2)
    assert len(agenda.entries) == 2 and agenda.rest == 2


def test_pack_shows_the_agenda_and_accountability(client: Client, tmp_path: Path) -> None:
    html = build_pack(client, DATABASE, tmp_path, AS_OF, 28).read_text(encoding="utf-8")
    agenda = store_agenda(client)
    keys = re.findall(r'<tr class="child"><td class="num">\d+</td><td class="key">([0-9a-f]+)</td>', html)
    assert keys == [entry.child_key[:12] for entry in agenda.entries]
    assert 'id="accountability-table"' in html
    agencies = re.findall(r'<tr class="agency"><td>([^<]+)</td>((?:<td class="num">\d+</td>){4})</tr>', html)
    assert [(name, re.findall(r"\d+", cells)) for name, cells in agencies] == [
        ("health", ["2", "0", "1", "1"]), ("police", ["1", "1", "0", "0"])]
    assert "0 more have new alerts" in html


def test_reviewed_at_reaches_alerts_and_their_history(client: Client) -> None:
    """Migration 007 recreates the history view, so a stamped reviewed_at reaches alert_changes too."""
    database = "agenda_reviewed_at"
    migrate(client, database)
    writer = BatchWriter(client, database=database, batch_size=10, max_wait=3600.0)
    stamped = Alert(alert_id="a1", rule="rhi_overdue", subject_kind="child", subject="k", status="open",
                    opened_at=T0, evidence=[], summary="s", changed_at=T0 + H, reviewed_at=T0 + H)
    writer.add_rows(*rows_of(stamped))
    writer.flush()
    for table in ("alerts", "alert_changes"):
        [(reviewed_at,)] = client.query(f"SELECT reviewed_at FROM {database}.{table} FINAL").result_rows
        assert reviewed_at.astimezone(UTC) == T0 + H, table
