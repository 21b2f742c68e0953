"""The CMOG meeting pack on a store filled by the real pipeline core (chDB), opened in headless Chromium.

chDB hosts one engine path per process, so the module shares one client on one path and closes it at
the end. Chromium comes from scripts/ensure-tools.sh (installed when missing and we are root); the
browser tests fail with the script's message rather than skip.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from models.events import Agency
from report import PackError, build_pack
from report.labels import KEY_CHARS, text
from report.queries import pack_queries, rhi_seconds, run_query
from report.render import places_html
from settings import ClickHouseSettings
from sgi import pack
from sinks.clickhouse import connect
from sinks.migrate import migrate
from streams.core.config import load_rules
from tests.integration.filled_store import FillResult, fill_store
from tests.support.grafana_macros import Selection, TimeRange, expand

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "pack_test"
CHARTS = ("chart-open-alerts", "chart-cp-plans", "chart-rhi-trend", "chart-top-places")
# A script, stylesheet or frame loaded from elsewhere: the pack must open with no network.
EXTERNAL = re.compile(r"<(?:script|link|img|iframe|embed|object)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//",
                      re.IGNORECASE)
NHS_LIKE = re.compile(r"(?<![\w.])(?:\d{10}|\d{3} \d{3} \d{4})(?![\w.])")
FULL_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b")
SCRIPT = re.compile(r"<script\b[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE)
PLOTLY_JS_MIN_CHARS = 1_000_000  # the inlined library; anything smaller is one of our figures


@pytest.fixture(scope="module")
def chdb_settings(tmp_path_factory: pytest.TempPathFactory) -> ClickHouseSettings:
    return ClickHouseSettings(mode="chdb", path=tmp_path_factory.mktemp("chdb"), database=DATABASE)


@pytest.fixture(scope="module")
def client(chdb_settings: ClickHouseSettings) -> Iterator[Client]:
    ch = connect(chdb_settings)
    try:
        yield ch
    finally:
        ch.close()  # chDB allows one path per process: free it for the next module


@pytest.fixture(scope="module")
def filled(client: Client) -> FillResult:
    return fill_store(client, DATABASE, days=60, seed=2015, scale=0.05)


@pytest.fixture(scope="module")
def pack_path(client: Client, filled: FillResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_pack(client, DATABASE, tmp_path_factory.mktemp("pack"), filled.until, 28)


@pytest.fixture(scope="module")
def pack_html(pack_path: Path) -> str:
    return pack_path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's path, installing it with scripts/ensure-tools.sh when missing."""
    script = ROOT / "scripts" / "ensure-tools.sh"
    done = subprocess.run(["bash", str(script), "chromium=chromium"], capture_output=True, text=True, timeout=900)
    path = shutil.which("chromium")
    if done.returncode != 0 or path is None:
        pytest.fail(f"Chromium is needed to check the pack renders: {done.stdout}{done.stderr}".strip(),
                    pytrace=False)
    return path


def headless(chromium: str, profile: Path, *args: str) -> list[str]:
    return [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
        "--virtual-time-budget=5000", *args,
    ]


@pytest.fixture(scope="module")
def rendered(chromium: str, pack_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(screenshot, DOM after the scripts ran) of the pack in headless Chromium."""
    work = tmp_path_factory.mktemp("chromium")
    url = pack_path.resolve().as_uri()
    screenshot = work / "pack.png"
    shot = subprocess.run(
        headless(chromium, work / "profile-shot", f"--screenshot={screenshot}", "--window-size=1400,2400", url),
        capture_output=True, text=True, timeout=180,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    dump = subprocess.run(headless(chromium, work / "profile-dom", "--dump-dom", url),
                          capture_output=True, text=True, timeout=180)
    assert dump.returncode == 0, dump.stderr[-2000:]
    return screenshot, dump.stdout


def our_text(page: str) -> str:
    """The page without the inlined plotly.js library (which holds arbitrary numbers), keeping our
    own markup and every figure's data."""
    figures = [script for script in SCRIPT.findall(page) if len(script) < PLOTLY_JS_MIN_CHARS]
    return SCRIPT.sub("", page) + "\n".join(figures)


def chart_segments(page: str) -> dict[str, str]:
    """Each chart's markup: from its div id to the next chart's (or the end)."""
    starts = sorted((page.index(f'id="{chart}"'), chart) for chart in CHARTS)
    bounds = [start for start, _ in starts] + [len(page)]
    return {chart: page[bounds[i]:bounds[i + 1]] for i, (_, chart) in enumerate(starts)}


# --- the file -----------------------------------------------------------------------------------------


def test_pack_is_one_file_named_by_date(pack_path: Path, filled: FillResult) -> None:
    assert pack_path.name == f"cmog-pack-{filled.until.astimezone(load_rules().zone).date().isoformat()}.html"
    assert [p.name for p in pack_path.parent.iterdir()] == [pack_path.name]


def test_pack_is_self_contained(pack_html: str) -> None:
    assert not EXTERNAL.findall(pack_html)
    assert "cdn.plot.ly" not in SCRIPT.sub("", pack_html)
    # plotly.js itself is inline, once
    assert sum(len(script) >= PLOTLY_JS_MIN_CHARS for script in SCRIPT.findall(pack_html)) == 1


def test_pack_is_marked_top_bottom_and_title(pack_html: str) -> None:
    body = pack_html.split("<body>", 1)[1]
    assert re.search(r"<title>[^<]*OFFICIAL-SENSITIVE[^<]*</title>", pack_html)
    assert body.lstrip().startswith('<div class="marking" id="marking-top">OFFICIAL-SENSITIVE</div>')
    assert body.rstrip().endswith('<div class="marking" id="marking-bottom">OFFICIAL-SENSITIVE</div></body></html>')
    assert 'id="generated-at"' in pack_html and 'id="how-to-read"' in pack_html


def test_pack_holds_no_raw_identifiers(pack_html: str) -> None:
    text = our_text(pack_html)
    assert not NHS_LIKE.findall(text)
    assert not FULL_POSTCODE.findall(text)
    # and only shortened keys: no full 64-hex pseudonym either
    assert not re.findall(r"\b[0-9a-f]{64}\b", text)


def test_pack_sections_have_content(pack_html: str, client: Client, filled: FillResult) -> None:
    rows = re.findall(r'<tr class="child">(.*?)</tr>', pack_html, re.DOTALL)
    assert rows, "the meeting list has no rows"
    shown_keys = {key for row in rows for key in re.findall(r'<td class="key">([0-9a-f]+)</td>', row)}
    assert len(shown_keys) == len(rows)
    assert all(len(key) == KEY_CHARS for key in shown_keys)
    open_children = {
        row[0][: KEY_CHARS]
        for row in client.query(
            f"SELECT DISTINCT subject FROM {DATABASE}.alerts FINAL WHERE subject_kind = 'child' AND status = 'open'"
        ).result_rows
    }
    assert shown_keys <= open_children
    assert re.findall(r'<tr class="place">', pack_html), "no ranked places"
    for chart in CHARTS:
        assert f'id="{chart}"' in pack_html
    for section in ("overview", "meeting-list-section", "places", "return-interviews"):
        assert f'<section id="{section}">' in pack_html


def test_values_are_escaped() -> None:
    assert text("<b>&") == "&lt;b&gt;&amp;"
    assert "<script>" not in places_html([
        {"category": "<script>", "name": "<script>alert(1)</script>", "ward": "a&b", "sector": None, "children": 2,
         "children_at_cse_risk": 0, "events": 3, "open_alerts": 0}
    ])


def test_empty_store_gives_a_clear_error(client: Client, tmp_path: Path) -> None:
    with pytest.raises(PackError, match="sgi db migrate"):
        build_pack(client, "no_such_database", tmp_path, datetime.now(UTC), 28)
    client.command("CREATE DATABASE IF NOT EXISTS pack_empty")
    try:
        with pytest.raises(PackError, match="has no table .*make demo"):
            build_pack(client, "pack_empty", tmp_path, datetime.now(UTC), 28)
        migrate(client, "pack_empty")
        with pytest.raises(PackError, match="store is empty.*make demo"):
            build_pack(client, "pack_empty", tmp_path, datetime.now(UTC), 28)
    finally:
        client.command("DROP DATABASE IF EXISTS pack_empty SYNC")
    assert not list(tmp_path.iterdir())


def test_command_registers_pack_with_help() -> None:
    parser = argparse.ArgumentParser(prog="sgi")
    subparsers = parser.add_subparsers()
    pack.add_parser(subparsers)
    args = parser.parse_args(["pack", "--out", "x", "--days", "14", "--as-of", "2015-03-02T09:00:00Z"])
    assert args.func is pack.run and args.days == 14 and args.as_of == datetime(2015, 3, 2, 9, tzinfo=UTC)
    options = [action for action in subparsers.choices["pack"]._actions if action.option_strings]
    assert {action.dest for action in options} >= {"out", "days", "as_of"}
    assert all(action.help for action in options)


def test_command_reports_a_missing_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], client: Client,
                                         chdb_settings: ClickHouseSettings) -> None:
    """`sgi pack` on a store with no such database: exit 2 and the set-up hint, no file written.
    (Same chDB path as the module's client: chDB allows one path per process.)"""
    monkeypatch.setenv("SGI_CLICKHOUSE_MODE", "chdb")
    monkeypatch.setenv("SGI_CLICKHOUSE_PATH", str(chdb_settings.path))
    monkeypatch.setenv("SGI_CLICKHOUSE_DATABASE", "never_migrated")
    parser = argparse.ArgumentParser(prog="sgi")
    pack.add_parser(parser.add_subparsers())
    args = parser.parse_args(["pack", "--out", str(tmp_path / "out")])
    assert args.func(args) == 2
    assert "run `make demo` or `sgi db migrate` first" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    assert client.command("SELECT 1") == 1  # the module's client survives the command's close


# --- in a browser -------------------------------------------------------------------------------------


def test_pack_renders_in_headless_chromium(rendered: tuple[Path, str]) -> None:
    screenshot, dom = rendered
    assert screenshot.exists() and screenshot.stat().st_size > 50_000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    segments = chart_segments(dom)
    for chart, markup in segments.items():
        assert 'class="main-svg"' in markup, f"{chart} did not render"
    assert re.findall(r'<tr class="child">', dom)
    assert "OFFICIAL-SENSITIVE" in dom


# --- the headline figures: the board, the pack and the events agree ------------------------------------

OVERVIEW = ROOT / "grafana" / "provisioning" / "dashboards" / "safeguarding" / "cmog-overview.json"


def _board_figure(client: Client, title: str, period: TimeRange) -> Any:
    """The number a stat panel of the BUILT CMOG overview shows, every ward and agency selected."""
    board = json.loads(OVERVIEW.read_text(encoding="utf-8"))
    [panel] = [panel for panel in board["panels"] if panel.get("title") == title]
    wards = [row[0] for row in client.query("SELECT DISTINCT ward_code FROM place_links WHERE ward_code IS NOT NULL")
             .result_rows]
    chosen = {"ward": Selection.all_of(wards), "agency": Selection.all_of([agency.value for agency in Agency])}
    result = client.query(expand(panel["targets"][0]["rawSql"], period, chosen), settings={"readonly": 1})
    [[value]] = result.result_rows
    return value


def _pack_figure(client: Client, name: str, period: TimeRange) -> dict[str, Any]:
    """One of the pack's overview queries, as build_pack runs it."""
    parameters = {"start": period.start, "end": period.end, "limit": 100}
    [row] = run_query(client, pack_queries(load_rules())[name], parameters)
    return row


def _events_figures(client: Client, period: TimeRange, rhi_seconds: int) -> dict[str, int]:
    """The episode figures a second way, straight from the events: each episode once by its reference,
    whatever child keys its events arrived under; its start, return and interview are its first ones."""
    start, end = period.start.isoformat(), period.end.isoformat()
    bound = f"parseDateTime64BestEffort('{start}', 3, 'UTC')", f"parseDateTime64BestEffort('{end}', 3, 'UTC')"
    deadline = f"INTERVAL {rhi_seconds} SECOND"
    [row] = client.query(f"""
        SELECT
            countIf(started_at >= {bound[0]} AND started_at < {bound[1]}) AS episodes,
            countIf(ended_at >= {bound[0]} AND ended_at + {deadline} <= {bound[1]}) AS returns,
            countIf(ended_at >= {bound[0]} AND ended_at + {deadline} <= {bound[1]}
                    AND interviewed_at <= ended_at + {deadline}) AS within_deadline
        FROM (
            SELECT
                episode_ref,
                minIf(toNullable(occurred_at), event_type = 'missing.started') AS started_at,
                minIf(toNullable(occurred_at), event_type = 'missing.ended') AS ended_at,
                minIf(toNullable(occurred_at), event_type IN ('return_interview.completed',
                                                              'return_interview.declined')) AS interviewed_at
            FROM events FINAL
            WHERE episode_ref IS NOT NULL
            GROUP BY episode_ref
        )""").result_rows
    return dict(zip(("episodes", "returns", "within_deadline"), (int(value) for value in row), strict=True))


@pytest.fixture(scope="module")
def period(filled: FillResult) -> TimeRange:
    end = filled.until.astimezone(UTC).replace(microsecond=0)  # the board's macros are whole seconds
    return TimeRange(start=end - timedelta(days=28), end=end, interval=timedelta(days=1))


def test_the_store_holds_episodes_reported_under_two_keys(client: Client, filled: FillResult) -> None:
    """What made the board count some episodes twice: without such episodes the next tests prove little."""
    twice = client.command("SELECT count() FROM (SELECT episode_ref FROM episodes FINAL GROUP BY episode_ref "
                           "HAVING uniqExact(child_key) > 1)")
    assert int(twice) > 0


def test_missing_episodes_agree_with_the_events(client: Client, period: TimeRange) -> None:
    from_events = _events_figures(client, period, rhi_seconds(load_rules()))["episodes"]
    assert from_events > 0
    assert _board_figure(client, "Missing episodes this period", period) == from_events
    assert _pack_figure(client, "episodes_in_period", period)["episodes"] == from_events


def test_return_interviews_in_time_agree_with_the_events(client: Client, period: TimeRange) -> None:
    rules = load_rules()
    from_events = _events_figures(client, period, rhi_seconds(rules))
    assert from_events["returns"] > 0
    expected_percent = round(100 * from_events["within_deadline"] / from_events["returns"], 1)
    title = f"Return interviews within {rules.rules.rhi_overdue.hours:g} h"
    assert float(_board_figure(client, title, period)) == pytest.approx(expected_percent)
    pack_rhi = _pack_figure(client, "return_interviews_within_deadline", period)
    assert pack_rhi["within_deadline"] == from_events["within_deadline"]
    assert pack_rhi["returns"] == from_events["returns"]


@pytest.mark.parametrize(("title", "name", "field"), [
    ("Children missing now", "children_missing_now", "children"),
    ("High CSE risk", "high_cse_risk_children", "children"),
])
def test_board_and_pack_agree(client: Client, period: TimeRange, title: str, name: str, field: str) -> None:
    assert int(_board_figure(client, title, period)) == int(_pack_figure(client, name, period)[field])


def test_open_alerts_and_repeat_plans_agree(client: Client, period: TimeRange, filled: FillResult) -> None:
    by_rule = run_query(client, pack_queries(load_rules())["open_alerts_by_rule"],
                        {"start": period.start, "end": period.end})
    assert int(_board_figure(client, "Open alerts", period)) == sum(int(row["alerts"]) for row in by_rule) > 0
    # Plans start rarely in the small test city: the whole simulated period has some.
    whole = TimeRange(start=filled.start, end=period.end, interval=period.interval)
    repeat = _pack_figure(client, "repeat_cp_plans", whole)
    board = _board_figure(client, "Repeat CP plans", whole)
    assert repeat["plans"] > 0
    assert float(board) == pytest.approx(round(100 * repeat["repeat_plans"] / repeat["plans"], 1))


def test_counting_rows_of_episodes_would_disagree_with_the_events(client: Client, period: TimeRange) -> None:
    """The figure the board showed before the episodes were taken by reference: proof that the agreement
    above is not trivially true of this store."""
    rows = client.command(
        "SELECT count() FROM episodes FINAL WHERE started_at >= {start:DateTime64(3, 'UTC')} "
        "AND started_at < {end:DateTime64(3, 'UTC')}", {"start": period.start, "end": period.end})
    assert int(rows) > _events_figures(client, period, rhi_seconds(load_rules()))["episodes"]
