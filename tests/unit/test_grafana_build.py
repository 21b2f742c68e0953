"""The Grafana provisioning as code: the committed files are the build's output, the build is
deterministic, every file has the keys Grafana requires, the boards use the fixed data source and quote
their variables, alert queries use time macros only, thresholds come from the rules config; and the
macro expander the integration tests rely on behaves as Grafana and the ClickHouse plugin do."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from grafana.alerting import as_json, rule_from_file, rule_groups, rule_to_file
from grafana.build import CONTAINER_PROVISIONING, DASHBOARD_DIR, build, generated_files, render
from grafana.panels import DATASOURCE_TYPE, DATASOURCE_UID, FOLDER_TITLE, FOLDER_UID
from sgi import grafana_cmd
from streams.core.config import load_rules
from tests.support.grafana_macros import (
    MacroError,
    Selection,
    TimeRange,
    conditional_all,
    expand,
    expand_time_macros,
    interpolate,
    variables_in,
)

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "grafana" / "provisioning"
STALE = "grafana/provisioning is stale: run `make grafana-build` and commit the result"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("provisioning")
    build(out)
    return out


def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in generated_files(root)}


def _yaml(root: Path, relative: str) -> dict[str, Any]:
    document = yaml.safe_load((root / relative).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _boards(root: Path) -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in sorted((root / DASHBOARD_DIR).glob("*.json"))}


def _queries(board: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in board["panels"] for target in panel.get("targets", [])]


def _alert_queries(root: Path) -> list[tuple[str, dict[str, Any]]]:
    rules = _yaml(root, "alerting/rules.yaml")
    return [(rule["title"], query) for group in rules["groups"] for rule in group["rules"] for query in rule["data"]]


# --- the committed files ------------------------------------------------------------------------------


def test_committed_provisioning_is_the_build_output(built: Path) -> None:
    assert _tree(COMMITTED) == _tree(built), STALE


def test_build_is_deterministic(tmp_path: Path) -> None:
    first, second = tmp_path / "one", tmp_path / "two"
    paths = build(first)
    build(second)
    assert _tree(first) == _tree(second)
    assert [p.relative_to(first) for p in paths] == sorted(p.relative_to(first) for p in paths)
    assert render(load_rules()) == render(load_rules())


def test_build_lays_files_out_as_grafana_reads_them(built: Path) -> None:
    assert sorted(_tree(built)) == [
        "alerting/contact-points.yaml",
        "alerting/policies.yaml",
        "alerting/rules.yaml",
        "dashboards/safeguarding.yaml",
        "dashboards/safeguarding/child-timeline.json",
        "dashboards/safeguarding/cmog-agenda.json",
        "dashboards/safeguarding/cmog-meeting-list.json",
        "dashboards/safeguarding/cmog-overview.json",
        "dashboards/safeguarding/data-quality.json",
        "dashboards/safeguarding/hotspots.json",
        "datasources/clickhouse.yaml",
    ]


def test_rebuild_removes_files_it_no_longer_makes(tmp_path: Path) -> None:
    build(tmp_path)
    orphan = tmp_path / DASHBOARD_DIR / "retired-board.json"
    orphan.write_text("{}")
    build(tmp_path)
    assert not orphan.exists()


# --- Grafana's required keys ----------------------------------------------------------------------------


def test_datasource_file(built: Path) -> None:
    document = _yaml(built, "datasources/clickhouse.yaml")
    assert document["apiVersion"] == 1
    (source,) = document["datasources"]
    assert source["name"] and source["type"] == DATASOURCE_TYPE and source["uid"] == DATASOURCE_UID
    assert source["jsonData"] == {
        "host": "$CLICKHOUSE_HOST", "port": 8123, "protocol": "http", "secure": False,
        "username": "grafana_reader", "defaultDatabase": "safeguarding",
    }
    assert source["secureJsonData"] == {"password": "$GRAFANA_READER_PASSWORD"}


def test_dashboard_provider_points_at_the_json_folder_as_mounted(built: Path) -> None:
    document = _yaml(built, "dashboards/safeguarding.yaml")
    assert document["apiVersion"] == 1
    (provider,) = document["providers"]
    assert provider["folder"] == FOLDER_TITLE and provider["type"] == "file"
    assert provider["options"]["path"] == f"{CONTAINER_PROVISIONING}/{DASHBOARD_DIR}"
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/provisioning:{CONTAINER_PROVISIONING}:ro" in mounts


def test_alert_rule_groups(built: Path) -> None:
    document = _yaml(built, "alerting/rules.yaml")
    assert document["apiVersion"] == 1
    uids = []
    for group in document["groups"]:
        assert group["name"] and group["folder"] == FOLDER_TITLE and re.fullmatch(r"\d+[smh]", group["interval"])
        for rule in group["rules"]:
            uids.append(rule["uid"])
            assert rule["title"] and rule["condition"] in {query["refId"] for query in rule["data"]}
            assert rule["noDataState"] in ("OK", "NoData", "Alerting")
            assert rule["execErrState"] in ("OK", "Error", "Alerting")
            assert re.fullmatch(r"\d+[smh]", rule["for"])
            for query in rule["data"]:
                assert query["refId"] and query["datasourceUid"] in (DATASOURCE_UID, "__expr__")
                assert set(query["relativeTimeRange"]) == {"from", "to"}
                assert query["model"]["refId"] == query["refId"]
            # File provisioning expands $VAR in labels: a `$` there would be eaten.
            assert all("$" not in value for value in rule["labels"].values())
            assert rule["dashboardUid"] in {board["uid"] for board in _boards(built).values()}
    assert len(uids) == len(set(uids)) == 3


def test_contact_point_and_policy(built: Path) -> None:
    contacts = _yaml(built, "alerting/contact-points.yaml")
    assert contacts["apiVersion"] == 1
    (point,) = contacts["contactPoints"]
    # The webhook is optional: Grafana refuses a webhook receiver with an empty URL.
    assert {receiver["type"]: receiver["settings"] for receiver in point["receivers"]} == {
        "email": {"addresses": "$CMOG_CHAIR_EMAIL", "singleEmail": True},
    }
    assert all(receiver["uid"] for receiver in point["receivers"])


def test_webhook_receiver_when_asked_and_the_policy_routes_to_the_chair(built: Path, tmp_path: Path) -> None:
    build(tmp_path, webhook=True)
    (point,) = _yaml(tmp_path, "alerting/contact-points.yaml")["contactPoints"]
    assert {receiver["type"]: receiver["settings"] for receiver in point["receivers"]} == {
        "email": {"addresses": "$CMOG_CHAIR_EMAIL", "singleEmail": True},
        "webhook": {"url": "$CMOG_WEBHOOK_URL", "httpMethod": "POST"},
    }

    policies = _yaml(built, "alerting/policies.yaml")
    assert policies["apiVersion"] == 1
    (root,) = policies["policies"]
    assert root["receiver"] == point["name"]
    (folder_route,) = root["routes"]
    assert folder_route["object_matchers"] == [["grafana_folder", "=", FOLDER_TITLE]]
    assert folder_route["receiver"] == point["name"]
    assert {"alertname", "rule"} <= set(folder_route["group_by"])
    assert folder_route["repeat_interval"] == "24h" and folder_route["group_wait"] == "30s"


def test_files_name_only_variables_grafana_is_given(built: Path) -> None:
    """Every $VAR the provisioning YAML names is in the grafana service's environment (docker-compose.yml)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    given = set(compose["services"]["grafana"]["environment"])
    for relative in ("datasources/clickhouse.yaml", "alerting/contact-points.yaml", "dashboards/safeguarding.yaml"):
        named = set(re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", (built / relative).read_text(encoding="utf-8")))
        assert named <= given, f"{relative} needs {sorted(named - given)} in the grafana service's environment"


# --- the boards -----------------------------------------------------------------------------------------


def test_boards_have_fixed_uids_in_the_folder(built: Path) -> None:
    boards = _boards(built)
    assert {stem: board["uid"] for stem, board in boards.items()} == {
        "child-timeline": "sgi-child-timeline",
        "cmog-agenda": "sgi-cmog-agenda",
        "cmog-meeting-list": "sgi-cmog-meeting",
        "cmog-overview": "sgi-cmog-overview",
        "data-quality": "sgi-data-quality",
        "hotspots": "sgi-hotspots",
    }
    for board in boards.values():
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)


def test_every_board_uses_the_fixed_datasource(built: Path) -> None:
    expected = {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}
    for stem, board in _boards(built).items():
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == expected, f"{stem}: {panel['title']}"
            for target in panel["targets"]:
                assert target["datasource"] == expected, f"{stem}: {panel['title']}"
                assert target["editorType"] == "sql" and target["rawSql"]
                assert target["format"] == (0 if target["queryType"] == "timeSeries" else 1)
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == expected, f"{stem}: variable {variable['name']}"


def test_variables_reach_sql_only_percent_encoded_and_all_is_conditional(built: Path) -> None:
    """Each variable appears only as `decodeURLComponent('${name:percentencode}')` (whose interpolated text
    cannot end the literal), or as the variable argument of $__conditionalAll."""
    for stem, board in _boards(built).items():
        defined = {variable["name"]: variable for variable in board["templating"]["list"]}
        for title, target in _queries(board):
            sql = target["rawSql"]
            used = variables_in(sql)
            assert used <= set(defined), f"{stem}: {title} uses undefined {used - set(defined)}"
            kept = conditional_all(sql, {name: Selection.of("x") for name in defined})
            for match in re.finditer(r"\$\{?(\w+)(:[^}]*)?\}?", kept):
                if match.group(1).startswith("__"):
                    continue
                before = kept[: match.start()]
                assert match.group(0) == f"${{{match.group(1)}:percentencode}}", f"{stem}: {title}: {match.group(0)}"
                assert before.endswith("decodeURLComponent('") and kept[match.end():].startswith("')"), (
                    f"{stem}: {title}: {match.group(0)} is not alone inside decodeURLComponent('...')")
            for variable in re.findall(r"\$__conditionalAll\(.*?,\s*\$(\w+)\)", sql, flags=re.S):
                assert defined[variable].get("includeAll"), f"{stem}: ${variable} is conditional but has no All"
        for variable in defined.values():
            if variable.get("multi"):
                assert variable["includeAll"] and variable["allowCustomValue"] is False


def test_withdrawn_alerts_are_never_shown_and_tables_are_read_final(built: Path) -> None:
    for stem, board in _boards(built).items():
        for title, target in _queries(board):
            sql = target["rawSql"]
            if re.search(r"\bFROM alerts\b", sql):
                assert "status = 'open'" in sql or "status != 'withdrawn'" in sql, f"{stem}: {title}"
            for table in ("episodes", "child_state", "alerts"):
                for match in re.finditer(rf"\bFROM {table}\b(?: AS \w+)?( FINAL)?", sql):
                    assert match.group(1), f"{stem}: {title} reads {table} without FINAL"


def test_meeting_list_links_children_to_their_timeline(built: Path) -> None:
    board = _boards(built)["cmog-meeting-list"]
    overrides = board["panels"][0]["fieldConfig"]["overrides"]
    (link,) = next(o for o in overrides if o["matcher"]["options"] == "child")["properties"][0]["value"]
    assert link["url"].startswith("/d/sgi-child-timeline/") and "var-child=${__value.raw}" in link["url"]
    assert "child" in {v["name"] for v in _boards(built)["child-timeline"]["templating"]["list"]}


# --- alerting ------------------------------------------------------------------------------------------


def test_alert_queries_use_time_macros_only(built: Path) -> None:
    for title, query in _alert_queries(built):
        if query["datasourceUid"] == "__expr__":
            continue
        sql = query["model"]["rawSql"]
        assert not variables_in(sql), f"{title}: dashboard variables in an alert query"
        assert "$__conditionalAll" not in sql
        assert re.search(r"\$__(timeFilter|fromTime|toTime)", sql), f"{title}: no time macro"
        assert query["model"]["format"] == 1, f"{title}: alerts read a table (one row per label set)"


def test_api_and_file_shapes_round_trip() -> None:
    for group in rule_groups(load_rules()):
        data = as_json(group)
        for rule in data["rules"]:
            assert rule_from_file(rule_to_file(rule), data["title"], FOLDER_UID) == rule


def test_thresholds_come_from_the_rules_config(tmp_path: Path) -> None:
    config = tmp_path / "rules.json"
    config.write_text(json.dumps({
        "rules": {"rhi_overdue": {"hours": 48}, "linked_children": {"count": 4}},
        "pipeline_health": {"agency_silence_hours": 12, "deadletter_spike_per_hour": 7},
        "chair_rules": ["rhi_overdue", "long_missing"],
        "lateness_days": 3,
    }))
    out = tmp_path / "out"
    build(out, config)
    rules = {rule["uid"]: rule for group in _yaml(out, "alerting/rules.yaml")["groups"] for rule in group["rules"]}

    def threshold(uid: str) -> float:
        condition = next(q for q in rules[uid]["data"] if q["refId"] == rules[uid]["condition"])
        return float(condition["model"]["conditions"][0]["evaluator"]["params"][0])

    assert threshold("sgi-agency-silence") == 12
    assert threshold("sgi-deadletter-spike") == 7
    assert threshold("sgi-cmog-new-alerts") == 0
    chair_sql = rules["sgi-cmog-new-alerts"]["data"][0]["model"]["rawSql"]
    assert "rule IN ('long_missing', 'rhi_overdue')" in chair_sql
    boards = _boards(out)
    overview = json.dumps(boards["cmog-overview"])
    assert f"INTERVAL {48 * 3600} SECOND" in overview and "within 48 h" in overview
    assert "children_linked >= 4" in json.dumps(boards["hotspots"])
    assert f"lateness_seconds > {3 * 86400}" in json.dumps(boards["data-quality"])


def test_no_chair_rules_means_no_chair_alert(tmp_path: Path) -> None:
    config = tmp_path / "rules.json"
    config.write_text(json.dumps({"chair_rules": []}))
    build(tmp_path / "out", config)
    groups = _yaml(tmp_path / "out", "alerting/rules.yaml")["groups"]
    assert [group["name"] for group in groups] == ["Pipeline health"]


# --- the CLI --------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sgi")
    grafana_cmd.add_parser(parser.add_subparsers())
    return parser


def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["grafana", "build", "--out", str(tmp_path)])
    assert args.func(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 11
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pipeline_health": {"agency_silence_hourz": 3}}))
    args = _parser().parse_args(["grafana", "build", "--out", str(tmp_path / "x"), "--rules", str(bad)])
    assert args.func(args) == 2
    assert "agency_silence_hourz" in capsys.readouterr().err


def test_cli_has_help_on_everything(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["grafana", "--help"], ["grafana", "build", "--help"], ["grafana", "push", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            _parser().parse_args(argv)
        assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "SGI_GRAFANA_TOKEN" in text and "--rules" in text and "--out" in text


# --- tests.support.grafana_macros -------------------------------------------------------------------------------------

RANGE = TimeRange(datetime(2026, 3, 1, 6, 30, tzinfo=UTC), datetime(2026, 3, 8, 23, 59, 59, 500000, tzinfo=UTC),
                  interval=timedelta(hours=2))
FROM_S, TO_S = 1772346600, 1773014399


def test_time_macros_expand_as_the_plugin_does() -> None:
    assert expand_time_macros("$__timeFilter(occurred_at)", RANGE) == (
        f"occurred_at >= toDateTime({FROM_S}) AND occurred_at <= toDateTime({TO_S})")
    assert expand_time_macros("$__timeFilter_ms(t)", RANGE) == (
        f"t >= fromUnixTimestamp64Milli({FROM_S}000) AND t <= fromUnixTimestamp64Milli({TO_S}500)")
    assert expand_time_macros("$__fromTime|$__toTime|$__fromTime_ms|$__toTime_ms", RANGE) == (
        f"toDateTime({FROM_S})|toDateTime({TO_S})|fromUnixTimestamp64Milli({FROM_S}000)|"
        f"fromUnixTimestamp64Milli({TO_S}500)")
    assert expand_time_macros("$__dateFilter(day)", RANGE) == (
        "day >= toDate('2026-03-01') AND day <= toDate('2026-03-08')")
    assert expand_time_macros("$__dateTimeFilter(day, t)", RANGE) == (
        "(day >= toDate('2026-03-01') AND day <= toDate('2026-03-08')) AND "
        f"(t >= toDateTime({FROM_S}) AND t <= toDateTime({TO_S}))")
    assert expand_time_macros("$__timeInterval(t)", RANGE) == "toStartOfInterval(toDateTime(t), INTERVAL 7200 second)"
    assert expand_time_macros("$__timeInterval_ms(t)", RANGE) == (
        "toStartOfInterval(toDateTime64(t, 3), INTERVAL 7200000 millisecond)")
    assert expand_time_macros("x / $__interval_s", RANGE) == "x / 7200"
    assert expand_time_macros("$__timeFilter( toDate(a, 'UTC') )", RANGE).startswith("toDate(a, 'UTC') >= ")


def test_time_macros_reject_what_the_plugin_rejects() -> None:
    with pytest.raises(MacroError, match="expected 1"):
        expand_time_macros("$__timeFilter(a, b)", RANGE)
    with pytest.raises(MacroError, match="expected 1"):
        expand_time_macros("WHERE $__timeFilter", RANGE)
    with pytest.raises(MacroError, match="close bracket"):
        expand_time_macros("$__timeFilter(a", RANGE)


def test_conditional_all() -> None:
    sql = "WHERE $__conditionalAll(ward IN (${ward:singlequote}), $ward) AND $__conditionalAll(f(a, b) = 1, ${agency})"
    everything = {"ward": Selection.all_of(["a", "b"]), "agency": Selection.all_of(["p"])}
    assert conditional_all(sql, everything) == "WHERE 1=1 AND 1=1"
    some = {"ward": Selection.of("a"), "agency": Selection.of("p", "q")}
    assert conditional_all(sql, some) == "WHERE ward IN (${ward:singlequote}) AND f(a, b) = 1"
    assert conditional_all(sql, {"ward": Selection.of(), "agency": Selection.of("p")}) == (
        "WHERE 1=1 AND f(a, b) = 1")
    # An unknown variable keeps its condition, as in the plugin.
    assert conditional_all("$__conditionalAll(x = 1, $nope)", {}) == "x = 1"


def test_variables_interpolate_as_grafana_formats_them() -> None:
    chosen = {"ward": Selection.of("St Michael's", "Foleshill"), "one": Selection.of("a'b")}
    assert interpolate("IN (${ward:singlequote})", chosen) == "IN ('St Michael\\'s','Foleshill')"
    assert interpolate("${one:singlequote}|${one:sqlstring}|${ward:csv}|$one|[[one]]", chosen) == (
        "'a\\'b'|'a''b'|St Michael's,Foleshill|a'b|a'b")
    assert interpolate("$ward", chosen) == "'St Michael's','Foleshill'"
    assert interpolate("${ward:singlequote}", {"ward": Selection.all_of(["x", "y"])}) == "'x','y'"
    assert interpolate("$__timeFilter(t) $other", chosen) == "$__timeFilter(t) $other"
    # percentencode: an array (a multi variable, even of one value) glob-braced, then encoded strictly.
    hostile = "\\' OR 1=1 --\n%é(*)!~"
    assert interpolate("${one:percentencode}", {"one": Selection.of(hostile, multi=False)}) == (
        "%5C%27%20OR%201%3D1%20--%0A%25%C3%A9%28%2A%29%21~")
    assert interpolate("${ward:percentencode}", {"ward": Selection.of("a,b", "c", multi=True)}) == (
        "%7Ba%2Cb%2Cc%7D")
    assert interpolate("${ward:percentencode}", {"ward": Selection.of("E05", multi=True)}) == "%7BE05%7D"
    assert interpolate("${ward:percentencode}", {"ward": Selection.all_of(["x", "y"])}) == "%7Bx%2Cy%7D"
    assert variables_in("$__timeFilter(t) AND ${ward:singlequote} AND $__conditionalAll(c, $agency)") == {
        "ward", "agency"}


def test_expand_runs_the_three_steps_in_grafanas_order() -> None:
    sql = "SELECT 1 WHERE $__conditionalAll(w IN (${ward:singlequote}), $ward) AND $__timeFilter(t)"
    assert expand(sql, RANGE, {"ward": Selection.of("E1")}) == (
        f"SELECT 1 WHERE w IN ('E1') AND t >= toDateTime({FROM_S}) AND t <= toDateTime({TO_S})")
    assert expand(sql, RANGE, {"ward": Selection.all_of(["E1"])}).startswith("SELECT 1 WHERE 1=1 AND t >= ")
