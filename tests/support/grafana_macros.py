"""What Grafana and the grafana-clickhouse-datasource plugin do to a query's SQL before ClickHouse sees it.
Pure: no I/O, no clock. Used by the tests to run every panel and alert query of the built files.

Three steps, in Grafana's order:

1. `conditional_all` -- the plugin's frontend: `$__conditionalAll(condition, $var)` becomes `1=1` when
   the variable is All (or nothing is selected), else `condition`. Dashboards only: alert rules are
   evaluated in the backend, where neither this macro nor dashboard variables exist.
2. `interpolate` -- Grafana's template service: `$var`, `${var}`, `${var:format}`, `[[var]]`. Formats
   as Grafana 11.6's registry (@grafana/scenes formatRegistry.ts) writes them: `singlequote`: `'v'`, `'`
   escaped as `\\'` (and `\\` not at all), values joined by `,`; `percentencode`: a multi value (an array)
   as `encodeURIComponentStrict('{' + values.join(',') + '}')`, a single value as
   `encodeURIComponentStrict(value)`, where encodeURIComponentStrict is JavaScript's encodeURIComponent
   with `!'()*` encoded too (UTF-8, upper-case hex; only `A-Z a-z 0-9 - _ . ~` stay as they are).
   An unformatted multi-value variable gets the plugin's own format (`'a','b'`, no escaping).
3. `expand_time_macros` -- the plugin's backend (sqlds): `$__timeFilter(col)` and friends, from the
   query's time range and interval.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

ALL_VALUE = "$__all"


class MacroError(ValueError):
    """A macro the plugin would reject (wrong arguments, unbalanced brackets)."""


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's (or the alert query's) time range and the query interval (`$__interval`)."""

    start: datetime
    end: datetime
    interval: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("time range ends must be timezone-aware")
        if self.end < self.start:
            raise ValueError("time range ends before it starts")


@dataclass(frozen=True)
class Selection:
    """A template variable's current value as Grafana holds it: some values, or All (standing for
    every option, as Grafana expands All when the variable has no custom all value)."""

    values: tuple[str, ...] = ()
    all: bool = False
    options: tuple[str, ...] = ()
    # The variable's `multi`: Grafana then holds its value as an array, even of one value. None: an
    # array unless exactly one value is selected.
    multi: bool | None = None

    @classmethod
    def of(cls, *values: str, multi: bool | None = None) -> Selection:
        return cls(values=tuple(values), multi=multi)

    @classmethod
    def all_of(cls, options: tuple[str, ...] | list[str]) -> Selection:
        return cls(all=True, options=tuple(options))

    @property
    def current(self) -> str:
        """`current.value.toString()` in the browser: what `$__conditionalAll` compares."""
        return ALL_VALUE if self.all else ",".join(self.values)

    @property
    def expanded(self) -> list[str]:
        return list(self.options if self.all else self.values)

    @property
    def is_array(self) -> bool:
        """Whether Grafana passes the value to a formatter as an array."""
        if self.all:
            return True
        return self.multi if self.multi is not None else len(self.values) != 1


Selections = Mapping[str, Selection]


# --- 1. $__conditionalAll (plugin frontend) -----------------------------------------------------------

CONDITIONAL_ALL = "$__conditionalAll("
_VARIABLE_ARG = re.compile(r"(?<=\$\{)[\w\d]+(?=\})|(?<=\$)[\w\d]+")
_ARG_TOKEN = re.compile(r"\(|\)|,")


def _macro_args(sql: str, open_index: int) -> list[str]:
    """The plugin's argument split: brackets counted, commas split at depth 1, nothing trimmed,
    quotes not considered. [] when the brackets never close."""
    args: list[str] = []
    depth = 0
    last = 1
    tail = sql[open_index:]
    for token in _ARG_TOKEN.finditer(tail):
        found = token.group(0)
        if found == "(":
            depth += 1
        elif found == ")":
            depth -= 1
        if found == "," and depth == 1:
            args.append(tail[last : token.end() - 1])
            last = token.end()
        if depth == 0:
            args.append(tail[last : token.end() - 1])
            return args
    return []


def conditional_all(sql: str, selections: Selections) -> str:
    """Replace each `$__conditionalAll(condition, $var)`, last first, as the plugin does."""
    index = sql.rfind(CONDITIONAL_ALL)
    while index != -1:
        params = _macro_args(sql, index + len(CONDITIONAL_ALL) - 1)
        if len(params) != 2:
            return sql
        phrase = params[0]
        variable = _VARIABLE_ARG.search(params[1].strip())
        if variable is not None:
            selection = selections.get(variable.group(0))
            if selection is not None and selection.current in ("", ALL_VALUE):
                phrase = "1=1"
        sql = sql.replace(f"{CONDITIONAL_ALL}{params[0]},{params[1]})", phrase, 1)
        index = sql.rfind(CONDITIONAL_ALL)
    return sql


# --- 2. template variables (Grafana's template service) ------------------------------------------------

# Grafana's variable pattern: $name | [[name:format]] | ${name.fieldPath:format}
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}")


def _single_quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def _double_quote(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def encode_uri_component_strict(value: str) -> str:
    """Grafana's encodeURIComponentStrict. JavaScript's encodeURIComponent keeps `A-Z a-z 0-9 - _ . ! ~ * ' ( )`;
    the strict form encodes `!'()*` too, leaving exactly Python's always-safe set. A lone surrogate cannot be
    encoded (JavaScript throws URIError; Python raises UnicodeEncodeError)."""
    return urllib.parse.quote(value, safe="", encoding="utf-8", errors="strict")


def _percent_encode(values: list[str], multi: bool) -> str:
    if multi:
        return encode_uri_component_strict("{" + ",".join(values) + "}")
    return encode_uri_component_strict("".join(values))


def _each(quote: Callable[[str], str]) -> Callable[[list[str], bool], str]:
    return lambda values, multi: ",".join(quote(value) for value in values)


def _plugin_default(values: list[str], multi: bool) -> str:
    """The ClickHouse plugin's own formatter for `$var`: arrays quoted without escaping, scalars raw."""
    return "'" + "','".join(values) + "'" if multi else "".join(values)


FORMATS: dict[str, Callable[[list[str], bool], str]] = {
    "singlequote": _each(_single_quote),
    "doublequote": _each(_double_quote),
    "sqlstring": _each(_sql_string),
    "csv": lambda values, multi: ",".join(values),
    "raw": lambda values, multi: ",".join(values),
    "pipe": lambda values, multi: "|".join(values),
    "percentencode": _percent_encode,
}


def variables_in(sql: str) -> set[str]:
    """Names of the template variables a query refers to (Grafana's `$__` built-ins and the plugin's
    `$__` macros are not variables)."""
    names = set()
    for match in VARIABLE.finditer(sql):
        name = match.group(1) or match.group(2) or match.group(4)
        if not name.startswith("__"):
            names.add(name)
    return names


def interpolate(sql: str, selections: Selections) -> str:
    """Substitute every selected variable; unknown names are left as written (as Grafana does)."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(6)
        selection = selections.get(name)
        if selection is None:
            return match.group(0)
        values = selection.expanded
        multi = selection.is_array
        if fmt is None:
            return _plugin_default(values, multi)
        if fmt not in FORMATS:
            raise MacroError(f"variable format {fmt!r} is not supported here (in ${{{name}:{fmt}}})")
        return FORMATS[fmt](values, multi)

    return VARIABLE.sub(substitute, sql)


# --- 3. time macros (plugin backend, via sqlds) -------------------------------------------------------


def _seconds(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())


def _millis(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def _date(moment: datetime) -> str:
    return f"toDate('{moment.astimezone(UTC).strftime('%Y-%m-%d')}')"


def _date_time(moment: datetime) -> str:
    return f"toDateTime({_seconds(moment)})"


def _date_time64(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({_millis(moment)})"


def _interval_seconds(time_range: TimeRange) -> int:
    return int(max(time_range.interval.total_seconds(), 1))


def _interval_millis(time_range: TimeRange) -> int:
    return int(max(math.floor(time_range.interval.total_seconds() * 1000), 1))


def _arity(name: str, args: list[str], count: int) -> None:
    if len(args) != count:
        raise MacroError(f"$__{name}: expected {count} argument(s), received {len(args)}")


def _time_filter(tr: TimeRange, args: list[str]) -> str:
    _arity("timeFilter", args, 1)
    column = args[0]
    return f"{column} >= {_date_time(tr.start)} AND {column} <= {_date_time(tr.end)}"


def _time_filter_ms(tr: TimeRange, args: list[str]) -> str:
    _arity("timeFilter_ms", args, 1)
    column = args[0]
    return f"{column} >= {_date_time64(tr.start)} AND {column} <= {_date_time64(tr.end)}"


def _date_filter(tr: TimeRange, args: list[str]) -> str:
    _arity("dateFilter", args, 1)
    column = args[0]
    return f"{column} >= {_date(tr.start)} AND {column} <= {_date(tr.end)}"


def _date_time_filter(tr: TimeRange, args: list[str]) -> str:
    _arity("dateTimeFilter", args, 2)
    date_column, time_column = args
    dates = f"({date_column} >= {_date(tr.start)} AND {date_column} <= {_date(tr.end)})"
    times = f"({time_column} >= {_date_time(tr.start)} AND {time_column} <= {_date_time(tr.end)})"
    return f"{dates} AND {times}"


def _time_interval(tr: TimeRange, args: list[str]) -> str:
    _arity("timeInterval", args, 1)
    return f"toStartOfInterval(toDateTime({args[0]}), INTERVAL {_interval_seconds(tr)} second)"


def _time_interval_ms(tr: TimeRange, args: list[str]) -> str:
    _arity("timeInterval_ms", args, 1)
    return f"toStartOfInterval(toDateTime64({args[0]}, 3), INTERVAL {_interval_millis(tr)} millisecond)"


TIME_MACROS: dict[str, Callable[[TimeRange, list[str]], str]] = {
    "fromTime": lambda tr, args: _date_time(tr.start),
    "toTime": lambda tr, args: _date_time(tr.end),
    "fromTime_ms": lambda tr, args: _date_time64(tr.start),
    "toTime_ms": lambda tr, args: _date_time64(tr.end),
    "timeFilter": _time_filter,
    "timeFilter_ms": _time_filter_ms,
    "dateFilter": _date_filter,
    "dateTimeFilter": _date_time_filter,
    "dt": _date_time_filter,
    "timeInterval": _time_interval,
    "timeInterval_ms": _time_interval_ms,
    "interval_s": lambda tr, args: str(_interval_seconds(tr)),
}
# Longest first, so `timeFilter_ms` is never read as `timeFilter` (the plugin anchors names with \b).
_TIME_MACRO = re.compile(r"\$__(" + "|".join(sorted(TIME_MACROS, key=len, reverse=True)) + r")\b")


def _time_macro_args(text: str) -> tuple[list[str], int]:
    """sqlds' argument parse: a bracketed list right after the name, split at depth-1 commas and
    trimmed. ([], 0) when no bracket follows; raises when the bracket never closes."""
    if not text.startswith("("):
        return [], 0
    args: list[str] = []
    depth = 0
    current: list[str] = []
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
            if depth == 1:
                continue
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append("".join(current).strip())
                return args, index + 1
        elif char == "," and depth == 1:
            args.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    raise MacroError("failed to parse macro arguments (missing close bracket?)")


def expand_time_macros(sql: str, time_range: TimeRange) -> str:
    out: list[str] = []
    position = 0
    for match in _TIME_MACRO.finditer(sql):
        if match.start() < position:
            continue  # inside the arguments of a macro already expanded
        name = match.group(1)
        args, length = _time_macro_args(sql[match.end() :])
        out.append(sql[position : match.start()])
        out.append(TIME_MACROS[name](time_range, args))
        position = match.end() + length
    out.append(sql[position:])
    return "".join(out)


def expand(sql: str, time_range: TimeRange, selections: Selections | None = None) -> str:
    """A query as ClickHouse receives it from Grafana: conditionalAll, variables, then time macros."""
    chosen = selections or {}
    return expand_time_macros(interpolate(conditional_all(sql, chosen), chosen), time_range)
