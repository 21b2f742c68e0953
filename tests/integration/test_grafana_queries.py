"""Every panel query and every alert query of the BUILT provisioning files, run against a store the real
pipeline core filled: each expands exactly as Grafana and the ClickHouse plugin expand it
(tests/support/grafana_macros.py),
runs read-only, returns the columns its panel reads, and finds rows in the seeded data.

chDB hosts one engine path per process: the module opens one client and closes it at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client

from models.derived import DeadLetter
from models.events import Agency
from settings import ClickHouseSettings
from sinks.clickhouse import BatchWriter, connect
from sinks.rows import rows_of
from streams.core.ingest import Origin, ingest
from tests.integration.filled_store import FillResult, fill_store
from tests.support.grafana_macros import Selection, TimeRange, expand, variables_in
from tests.unit import builders
from tests.unit.contract_builders import minimal

pytestmark = pytest.mark.integration

PROVISIONING = Path(__file__).resolve().parents[2] / "grafana" / "provisioning"
DATABASE = "safeguarding"
READ_ONLY = {"readonly": 1}
NUMERIC = ("Int", "UInt", "Float", "Decimal")


@dataclass(frozen=True)
class Target:
    """One query of one panel (or one board variable), with what its panel reads from the result."""

    board: str
    panel: dict[str, Any]
    query: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.board}: {self.panel.get('title', '?')} [{self.query.get('refId', '?')}]"

    @property
    def sql(self) -> str:
        return str(self.query["rawSql"])


def _boards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((PROVISIONING / "dashboards" / "safeguarding").glob("*.json"))}


def _panel_targets() -> list[Target]:
    targets = []
    for stem, board in _boards().items():
        for panel in board["panels"]:
            for query in panel.get("targets", []):
                targets.append(Target(stem, panel, query))
    return targets


def _variable_targets() -> list[Target]:
    targets = []
    for stem, board in _boards().items():
        for variable in board.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                panel = {"title": f"variable {variable['name']}", "type": "variable"}
                targets.append(Target(stem, panel, {"refId": variable["name"], "rawSql": variable["query"]}))
    return targets


def _alert_queries() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    document = yaml.safe_load((PROVISIONING / "alerting" / "rules.yaml").read_text(encoding="utf-8"))
    return [
        (rule["title"], rule, query)
        for group in document["groups"]
        for rule in group["rules"]
        for query in rule["data"]
        if query["datasourceUid"] != "__expr__"
    ]


PANEL_TARGETS = _panel_targets()
VARIABLE_TARGETS = _variable_targets()
ALERT_QUERIES = _alert_queries()


@dataclass
class Store:
    client: Client
    filled: FillResult
    time_range: TimeRange
    wards: list[str]
    children: list[str]

    def run(self, sql: str) -> Any:
        return self.client.query(sql, settings=READ_ONLY)


def _candidate_children(client: Client) -> list[str]:
    """Children with an open alert, the ones touching the most event types first: the child variable's
    options, in the order most likely to fill every timeline panel."""
    rows = client.query("""
        SELECT c.child_key, uniqExact(e.event_type) AS types
        FROM (SELECT child_key, arrayConcat([child_key], merged_keys) AS keys
              FROM child_state FINAL
              WHERE NOT retired
                AND child_key IN (SELECT subject FROM alerts FINAL WHERE status = 'open')) AS c
        ARRAY JOIN keys AS key
        INNER JOIN (SELECT event_type, arrayJoin(child_keys) AS key FROM events FINAL) AS e ON e.key = key
        GROUP BY c.child_key
        ORDER BY types DESC, c.child_key
        LIMIT 25
        """).result_rows
    return [row[0] for row in rows]


def _add_cmog_records(client: Client, until: datetime) -> None:
    """The CMOG's records (contract v1.1) for one child, until the simulator holds meetings: a listing, a review,
    an action done in time, one overdue and one not yet due, so the agenda board's action panels have rows."""
    kid = builders.Kid.make(90_001)
    day = timedelta(days=1)
    events = [
        ("cmog.listed", until - 10 * day, {}),
        ("cmog.reviewed", until - 9 * day, {"decision": "keep"}),
        ("cmog.action.set", until - 9 * day, {"action_ref": "G-1", "due_at": (until - 5 * day).isoformat()}),
        ("cmog.action.updated", until - 6 * day, {"action_ref": "G-1", "status": "done"}),
        ("cmog.action.set", until - 9 * day, {"action_ref": "G-2", "owner_agency": "health",
                                               "due_at": (until - 2 * day).isoformat()}),
        ("cmog.action.set", until - 9 * day, {"action_ref": "G-3", "due_at": (until + 5 * day).isoformat()}),
    ]
    writer = BatchWriter(client, database=DATABASE, batch_size=100, max_wait=3600.0)
    for number, (event_type, at, payload) in enumerate(events):
        doc = minimal(event_type)
        doc["child"] = kid.child_doc()
        doc["occurred_at"] = at.isoformat()
        doc["event_id"] = f"00000000-0000-4000-9000-{number:012d}"
        doc["payload"].update(payload)
        fact = ingest(builders.secret(), json.dumps(doc).encode(), Origin("test", 0, number, until), now=until)
        assert not isinstance(fact, DeadLetter), fact.errors
        writer.add_rows(*rows_of(fact))
    writer.flush()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    settings = ClickHouseSettings(mode="chdb", path=tmp_path_factory.mktemp("chdb-grafana"), database=DATABASE)
    client = connect(settings)
    try:
        filled = fill_store(client, DATABASE, days=60, seed=2015, scale=0.05)
        _add_cmog_records(client, filled.until)
        earliest = client.query("SELECT min(occurred_at) FROM events").result_rows[0][0]
        time_range = TimeRange(start=earliest - timedelta(days=1), end=datetime.now(UTC) + timedelta(minutes=1),
                               interval=timedelta(days=1))
        wards = [row[0] for row in client.query(
            "SELECT ward_code FROM place_links WHERE ward_code IS NOT NULL GROUP BY ward_code ORDER BY count() DESC"
        ).result_rows]
        yield Store(client, filled, time_range, wards, _candidate_children(client))
    finally:
        client.close()


def _interval(panel: dict[str, Any], time_range: TimeRange) -> TimeRange:
    """The panel's min interval, as Grafana passes it to the plugin ($__interval)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    text = panel.get("interval")
    if not text:
        return time_range
    return TimeRange(time_range.start, time_range.end, timedelta(seconds=int(text[:-1]) * units[text[-1]]))


def _all(store: Store, child: str | None) -> dict[str, Selection]:
    chosen = {"ward": Selection.all_of(store.wards), "agency": Selection.all_of([a.value for a in Agency])}
    if child is not None:
        chosen["child"] = Selection.of(child)
    return chosen


def _some(store: Store, child: str | None) -> dict[str, Selection]:
    """Real values, plus one that tries to break out of its quotes: it must stay a harmless literal."""
    chosen = {
        "ward": Selection.of(*store.wards[:2], "E05001229' OR 1=1 --"),
        "agency": Selection.of("police", "childrens_social_care", "it's"),
    }
    if child is not None:
        chosen["child"] = Selection.of(child)
    return chosen


def _columns(store: Store, result: Any, sql: str) -> dict[str, str]:
    """Column -> ClickHouse type. An empty result carries no columns here, so ClickHouse describes the query."""
    if result.column_names:
        return {name: kind.name for name, kind in zip(result.column_names, result.column_types, strict=True)}
    return {row[0]: row[1] for row in store.run(f"DESCRIBE ({sql})").result_rows}


def _numeric(kind: str) -> bool:
    return kind.replace("Nullable(", "").startswith(NUMERIC)


def _expected_columns(panel: dict[str, Any]) -> set[str]:
    """Fields the panel's JSON names: overrides, table sort, bar chart x field, map coordinates and styles."""
    names: set[str] = set()
    for override in panel.get("fieldConfig", {}).get("overrides", []):
        if override["matcher"]["id"] == "byName":
            names.add(override["matcher"]["options"])
    options = panel.get("options", {})
    names.update(sort["displayName"] for sort in options.get("sortBy", []))
    if panel["type"] == "barchart":
        names.add(options["xField"])
    for layer in options.get("layers", []):
        location = layer.get("location", {})
        names.update(location[key] for key in ("latitude", "longitude") if key in location)
        for style in layer.get("config", {}).get("style", {}).values():
            if isinstance(style, dict) and "field" in style:
                names.add(style["field"])
    return names


def _check_shape(target: Target, columns: dict[str, str]) -> None:
    panel_type = target.panel["type"]
    missing = _expected_columns(target.panel) - set(columns)
    assert not missing, f"{target.name}: the panel reads {sorted(missing)}, the query returns {sorted(columns)}"
    numeric = [name for name, kind in columns.items() if _numeric(kind)]
    if panel_type in ("timeseries", "state-timeline"):
        assert "time" in columns and columns["time"].replace("Nullable(", "").startswith("DateTime"), (
            f"{target.name}: needs a DateTime column named time, got {columns}")
    if panel_type == "timeseries":
        assert [name for name in numeric if name != "time"], f"{target.name}: no numeric series in {columns}"
    if panel_type == "state-timeline":
        assert len(columns) >= 2, f"{target.name}: a state timeline needs time and a state column"
    if panel_type in ("stat", "barchart", "piechart"):
        assert numeric, f"{target.name}: a {panel_type} needs a numeric column, got {columns}"
    if panel_type in ("barchart", "piechart"):
        assert any(not _numeric(kind) for kind in columns.values()), f"{target.name}: no name column in {columns}"


def _run_target(store: Store, target: Target, chosen: dict[str, Selection]) -> tuple[Any, dict[str, str]]:
    """(result, its columns) of the target's query as Grafana would send it."""
    sql = expand(target.sql, _interval(target.panel, store.time_range), chosen)
    assert "$" not in sql, f"{target.name}: unexpanded macro or variable left in\n{sql}"
    try:
        result = store.run(sql)
        return result, _columns(store, result, sql)
    except Exception as error:  # the SQL is in the message: the failing query is the point
        pytest.fail(f"{target.name} failed: {error}\n{sql}")


def test_the_pipeline_filled_every_table(store: Store) -> None:
    counts = {table: int(store.client.command(f"SELECT count() FROM {table}"))
              for table in ("events", "episodes", "child_state", "alerts", "alert_changes", "place_links", "places",
                            "deadletter")}
    assert all(counts.values()), counts
    assert store.filled.dead_letters > 0 and store.filled.facts > 0
    assert store.children, "no child has an open alert"


def test_there_is_a_query_for_every_panel_and_alert() -> None:
    boards = _boards()
    assert sorted(boards) == ["child-timeline", "cmog-agenda", "cmog-meeting-list", "cmog-overview", "data-quality",
                              "hotspots"]
    for stem, board in boards.items():
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel.get("targets"), f"{stem}: panel {panel.get('title')} has no query"
    assert len(ALERT_QUERIES) >= 3


@pytest.mark.parametrize("target", PANEL_TARGETS, ids=lambda target: target.name)
def test_panel_query_runs_with_all_selected(store: Store, target: Target) -> None:
    needs_child = "child" in variables_in(target.sql)
    candidates = store.children if needs_child else [None]
    found_rows = False
    for child in candidates:
        result, columns = _run_target(store, target, _all(store, child))
        _check_shape(target, columns)
        if result.result_rows:
            found_rows = True
            break
    assert found_rows, f"{target.name}: no rows for the seeded data (tried {len(candidates)} value(s))"


@pytest.mark.parametrize("target", PANEL_TARGETS, ids=lambda target: target.name)
def test_panel_query_runs_with_values_selected(store: Store, target: Target) -> None:
    child = store.children[0] if "child" in variables_in(target.sql) else None
    _, columns = _run_target(store, target, _some(store, child))
    _check_shape(target, columns)


def test_one_child_fills_most_of_the_timeline(store: Store) -> None:
    """The data link opens one child: the best candidate should fill the timeline's panels, not just one each."""
    timeline = [target for target in PANEL_TARGETS if target.board == "child-timeline"]
    best = max(
        sum(1 for target in timeline if _run_target(store, target, _all(store, child))[0].result_rows)
        for child in store.children[:10]
    )
    assert best >= len(timeline) - 2, f"the best child fills {best} of {len(timeline)} timeline queries"


@pytest.mark.parametrize("target", VARIABLE_TARGETS, ids=lambda target: target.name)
def test_variable_query_lists_options(store: Store, target: Target) -> None:
    result, _ = _run_target(store, target, {})
    assert result.result_rows, f"{target.name}: no options"
    assert len(result.column_names) in (1, 2), "the plugin reads one column (value) or two (value, text)"


@pytest.mark.parametrize(("title", "rule", "query"), ALERT_QUERIES, ids=[title for title, _, _ in ALERT_QUERIES])
def test_alert_query_runs_and_yields_labelled_numbers(
    store: Store, title: str, rule: dict[str, Any], query: dict[str, Any]
) -> None:
    sql = query["model"]["rawSql"]
    assert not variables_in(sql), f"{title}: alert queries cannot use dashboard variables"
    assert "$__conditionalAll" not in sql, f"{title}: $__conditionalAll is a dashboard (browser) macro"
    assert query["relativeTimeRange"]["from"] > 0
    expanded = expand(sql, store.time_range)
    assert "$" not in expanded, expanded
    result = store.run(expanded)
    columns = _columns(store, result, expanded)
    numeric = [name for name, kind in columns.items() if _numeric(kind)]
    assert len(numeric) == 1, f"{title}: Grafana alerts on one number per row, got {columns}"
    labels = [name for name in columns if name not in numeric]
    for annotation in rule.get("annotations", {}).values():
        for label in _labels_in(annotation):
            assert label in labels, f"{title}: annotation uses $labels.{label}, the query returns {labels}"
    assert result.result_rows, f"{title}: no rows for the seeded data"


def _labels_in(template: str) -> list[str]:
    return re.findall(r"\$labels\.(\w+)", template)


# --- hostile variable values ---------------------------------------------------------------------------

# Values that broke out of `${var:singlequote}` or try to: each must stay one literal that matches nothing.
HOSTILE_VALUES = (
    "\\",
    "'",
    "\\' OR 1=1 --",
    "' OR '1'='1",
    "--",
    "x\n) OR 1=1 --\n",
    "'); DROP TABLE events; --",
    "%",
    "%27 OR 1=1 --",
    "}",
    "Ünïcödé ✓ 😀 \u202e",
)
NO_SUCH_VALUE = "no-such-value"


def _variables_of(target: Target) -> dict[str, dict[str, Any]]:
    board = _boards()[target.board]
    return {variable["name"]: variable for variable in board["templating"]["list"]}


def _hostile(store: Store, target: Target, variable: str, value: str) -> dict[str, Selection]:
    """Every other variable as a user would have it (All, a real child); `variable` set to `value`, as an
    array when the variable is multi-valued, exactly as Grafana passes it."""
    definition = _variables_of(target)[variable]
    chosen = _all(store, store.children[0] if "child" in variables_in(target.sql) else None)
    chosen[variable] = Selection.of(value, multi=bool(definition.get("multi")))
    return chosen


def test_hostile_values_decode_to_themselves(store: Store) -> None:
    """The literal ClickHouse receives is exactly the value: what `selected_one` compares to a column."""
    for value in HOSTILE_VALUES:
        sql = expand("SELECT decodeURLComponent('${v:percentencode}')", store.time_range,
                     {"v": Selection.of(value, multi=False)})
        assert store.run(sql).result_rows == [(value,)], sql


HOSTILE_TARGETS = [target for target in PANEL_TARGETS if variables_in(target.sql)]


@pytest.mark.parametrize("target", HOSTILE_TARGETS, ids=lambda target: target.name)
def test_hostile_values_change_no_query(store: Store, target: Target) -> None:
    """For each variable the query reads, each hostile value gives exactly what a plain value matching
    nothing gives (usually no row): never every row, never an error."""
    assert HOSTILE_TARGETS, "no query reads a variable"
    for variable in sorted(variables_in(target.sql)):
        baseline, _ = _run_target(store, target, _hostile(store, target, variable, NO_SUCH_VALUE))
        for value in HOSTILE_VALUES:
            result, _ = _run_target(store, target, _hostile(store, target, variable, value))
            assert result.result_rows == baseline.result_rows, (
                f"{target.name}: ${variable} = {value!r} changed the result")


def test_a_hostile_value_would_have_broken_singlequote(store: Store) -> None:
    """The check above can fail: through the old `${var:singlequote}` the same value returns every row."""
    sql = "SELECT count() FROM events WHERE agency = ${agency:singlequote}"
    attack = expand(sql, store.time_range, {"agency": Selection.of("\\' OR 1=1 --", multi=True)})
    safe = expand("SELECT count() FROM events WHERE has([decodeURLComponent('${agency:percentencode}')], agency)",
                  store.time_range, {"agency": Selection.of("\\' OR 1=1 --", multi=False)})
    everything = store.run("SELECT count() FROM events").result_rows[0][0]
    assert everything > 0
    assert store.run(attack).result_rows[0][0] == everything
    assert store.run(safe).result_rows[0][0] == 0


def test_selected_values_still_filter_exactly(store: Store) -> None:
    """The decoding keeps real values working: one ward, two wards (a multi variable) and one child select
    exactly the rows a plain comparison selects."""
    from grafana.panels import event_in_ward, selected_one

    def ward_count(*wards: str) -> int:
        sql = expand(f"SELECT count() FROM place_links WHERE {event_in_ward()}", store.time_range,
                     {"ward": Selection.of(*wards, multi=True)})
        return int(store.run(sql).result_rows[0][0])

    def direct(*wards: str) -> int:
        return int(store.client.query("SELECT count() FROM place_links WHERE has({w:Array(String)}, ward_code)",
                                      parameters={"w": list(wards)}).result_rows[0][0])

    first, second = store.wards[:2]
    assert ward_count(first) == direct(first) > 0
    assert ward_count(first, second) == direct(first, second) > direct(first)
    child = store.children[0]
    sql = expand(f"SELECT count() FROM child_state FINAL WHERE child_key = {selected_one('child')}",
                 store.time_range, {"child": Selection.of(child, multi=False)})
    assert store.run(sql).result_rows == [(1,)]
