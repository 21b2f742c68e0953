"""The pieces every board shares: the ClickHouse data source, its query type (the SDK has none for this
plugin), the board variables and the SQL filters that read them.

Variables reach SQL one way only: Grafana's `${var:percentencode}` inside ClickHouse's
`decodeURLComponent('...')` (`selected`, `selected_one`). Percent-encoding leaves only `A-Z a-z 0-9 - _ . ~`
and `%XX`, none of which can end a string literal or start an escape, so no value can change a query's
meaning (`${var:singlequote}` escapes a quote but not a backslash, so a backslash-quote value broke out
of it). Filters sit inside `$__conditionalAll(condition, $var)`, so All (or nothing selected) drops the condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from grafana_foundation_sdk.builders import dashboard as sdk
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as model

from models.events import Agency

DATASOURCE_UID = "sgi-clickhouse"
DATASOURCE_TYPE = "grafana-clickhouse-datasource"
DATASOURCE_NAME = "Safeguarding ClickHouse"
FOLDER_TITLE = "Safeguarding"
FOLDER_UID = "sgi-safeguarding"
BOARD_TAG = "sgi"

# Dashboard uids: fixed, so data links and alert rules can point at them.
OVERVIEW_UID = "sgi-cmog-overview"
MEETING_UID = "sgi-cmog-meeting"
TIMELINE_UID = "sgi-child-timeline"
HOTSPOTS_UID = "sgi-hotspots"
DATA_QUALITY_UID = "sgi-data-quality"

# The plugin's query formats (sqlutil.FormatQueryOption): a table is passed through as rows, a time
# series is reshaped from long to wide (one series per label value).
FORMAT_TIME_SERIES = 0
FORMAT_TABLE = 1


def datasource() -> model.DataSourceRef:
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


@dataclass
class ClickHouseQuery(cogvariants.Dataquery):
    """A grafana-clickhouse-datasource SQL query (the plugin's `CHSqlQuery`)."""

    ref_id: str
    raw_sql: str
    query_type: Literal["table", "timeSeries"] = "table"
    hide: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "editorType": "sql",
            "format": FORMAT_TIME_SERIES if self.query_type == "timeSeries" else FORMAT_TABLE,
            "queryType": self.query_type,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
            **({"hide": True} if self.hide else {}),
            **self.extra,
        }


class SQL(cogbuilder.Builder[ClickHouseQuery]):
    """`SQL("SELECT ...")` for a table, `SQL(..., series=True)` for a time series (needs a `time` column)."""

    def __init__(self, raw_sql: str, ref_id: str = "A", *, series: bool = False) -> None:
        self._query = ClickHouseQuery(ref_id=ref_id, raw_sql=dedent_sql(raw_sql),
                                      query_type="timeSeries" if series else "table")

    def build(self) -> ClickHouseQuery:
        return self._query


def dedent_sql(sql: str) -> str:
    """The SQL as stored in the board: common indentation removed, no blank edges."""
    lines = sql.strip("\n").splitlines()
    indent = min((len(line) - len(line.lstrip()) for line in lines if line.strip()), default=0)
    return "\n".join(line[indent:].rstrip() for line in lines).strip()


# --- variables --------------------------------------------------------------------------------------

WARD_QUERY = """
SELECT ward_code, ifNull(any(ward_name), ward_code) AS ward
FROM (
    SELECT ward_code, ward_name FROM events WHERE ward_code IS NOT NULL
    UNION ALL
    SELECT ward_code, ward_name FROM place_links WHERE ward_code IS NOT NULL
)
GROUP BY ward_code
ORDER BY ward
"""


def ward_variable() -> sdk.QueryVariable:
    """Ward: value the ONS code, text the name (the plugin reads two columns as value, text)."""
    return (
        sdk.QueryVariable("ward")
        .label("Ward")
        .description("Events located in the ward; children and places linked to it (last seen, found, named).")
        .datasource(datasource())
        .query(dedent_sql(WARD_QUERY))
        .multi(True)
        .include_all(True)
        .allow_custom_value(False)
        .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(model.VariableSort.DISABLED)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def agency_variable() -> sdk.CustomVariable:
    """Agency: the contract's source agencies (models.events.Agency), not a query: always the same list."""
    agencies = [agency.value for agency in Agency]
    return (
        sdk.CustomVariable("agency")
        .label("Agency")
        .description("Source agency of events; for children, any agency involved with the child.")
        .values(",".join(agencies))
        .multi(True)
        .include_all(True)
        .allow_custom_value(False)
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
        .options([model.VariableOption(selected=False, text=value, value=value) for value in agencies])
    )


# --- how a variable's value reaches SQL ----------------------------------------------------------------


def selected_one(variable: str) -> str:
    """A single-value variable as a ClickHouse String: exactly the value, whatever it holds."""
    return f"decodeURLComponent('${{{variable}:percentencode}}')"


def selected(variable: str) -> str:
    """A multi-value variable as a ClickHouse Array(String) of exactly the selected values.

    Grafana percent-encodes a multi value as `{a,b}` (glob style) and a single one as itself, so the
    decoded text is split only when braced. A value holding `,` is read as two values (Grafana's format
    cannot say otherwise): each is still a literal compared to a column, never SQL."""
    text = selected_one(variable)
    return (f"arrayFlatten(arrayMap(t -> if(startsWith(t, '{{') AND endsWith(t, '}}'), "
            f"splitByChar(',', substring(t, 2, length(t) - 2)), [t]), [{text}]))")


# --- filters: each a $__conditionalAll, so All drops it ------------------------------------------------

ALL_WARDS = "$ward"
ALL_AGENCIES = "$agency"
WARD_VALUES = selected("ward")
AGENCY_VALUES = selected("agency")


def conditional(condition: str, variable: str) -> str:
    return f"$__conditionalAll({condition}, {variable})"


def in_wards(column: str) -> str:
    return f"has({WARD_VALUES}, {column})"


def event_in_ward(column: str = "ward_code") -> str:
    return conditional(in_wards(column), ALL_WARDS)


def event_from_agency(column: str = "agency") -> str:
    return conditional(f"has({AGENCY_VALUES}, {column})", ALL_AGENCIES)


def child_in_ward(column: str = "child_key") -> str:
    """A child (canonical key) linked to a place in the ward."""
    return conditional(
        f"{column} IN (SELECT child_key FROM place_links WHERE {in_wards('ward_code')})", ALL_WARDS
    )


def child_with_agency(column: str = "child_key") -> str:
    """A child (canonical key) some selected agency is involved with."""
    return conditional(
        f"{column} IN (SELECT child_key FROM child_state FINAL WHERE hasAny(agencies, {AGENCY_VALUES}))",
        ALL_AGENCIES,
    )


def keys_in_ward(column: str = "child_keys") -> str:
    """An event naming a child linked to a place in the ward (for events that carry no location)."""
    return conditional(
        f"hasAny({column}, (SELECT groupUniqArray(child_key) FROM place_links WHERE {in_wards('ward_code')}))",
        ALL_WARDS,
    )


def episode_in_ward(column: str = "last_seen_place") -> str:
    """A missing episode whose child was last seen at a place in the ward."""
    return conditional(
        f"{column} IN (SELECT place_key FROM place_links WHERE {in_wards('ward_code')})", ALL_WARDS
    )


def subject_in_ward(column: str = "subject") -> str:
    """An alert's subject (a child or a place) linked to the ward."""
    return conditional(
        f"{column} IN (SELECT arrayJoin([child_key, place_key]) FROM place_links WHERE {in_wards('ward_code')})",
        ALL_WARDS,
    )


def place_in_ward(column: str = "ward_code") -> str:
    return conditional(in_wards(column), ALL_WARDS)


# --- panel plumbing ---------------------------------------------------------------------------------


def timeline_link(title: str = "Child timeline") -> dict[str, object]:
    """A data link on a child key cell: the child timeline for that child, keeping the time range."""
    return {
        "title": title,
        "url": f"/d/{TIMELINE_UID}/child-timeline?var-child=${{__value.raw}}&${{__url_time_range}}",
    }


def board_links() -> sdk.DashboardLink:
    """Every Safeguarding board, as a dropdown that keeps the time range and the variables."""
    return (
        sdk.DashboardLink("Safeguarding boards")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags([BOARD_TAG])
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )


def thresholds(*steps: tuple[float | None, str]) -> sdk.ThresholdsConfig:
    return (
        sdk.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for value, color in steps])
    )


def links_property(*links: dict[str, object]) -> model.DynamicConfigValue:
    """A field override property that puts data links on the field's cells."""
    return model.DynamicConfigValue(id_val="links", value=list(links))
