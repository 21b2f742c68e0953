"""`sgi schema` and `sgi validate`: the published contract, and a partner developer's checker."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter

from models.events import EVENT_ADAPTER, EVENT_CLASSES, MAX_STRING, parse_event
from sgi.publish import open_input


def schema_files() -> dict[str, str]:
    """File name -> JSON Schema text, for every event type and for the union. Deterministic."""
    files = {
        f"{event_type}.schema.json": TypeAdapter(cls).json_schema(mode="validation")
        for event_type, cls in EVENT_CLASSES.items()
    }
    files["event.schema.json"] = EVENT_ADAPTER.json_schema(mode="validation")
    for name, schema in files.items():
        _bound_strings(schema)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"safeguarding/contract/v1/{name}"
    return {name: json.dumps(schema, indent=2, sort_keys=True) + "\n" for name, schema in files.items()}


def _bound_strings(node: object) -> None:
    """Every string in the contract is at most MAX_STRING characters (models' `str_max_length`); pydantic
    puts that config into JSON Schema in some versions only, so the schema states it itself."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "format" not in node and "enum" not in node and "const" not in node:
            node["maxLength"] = min(node.get("maxLength", MAX_STRING), MAX_STRING)
        for value in node.values():
            _bound_strings(value)
    elif isinstance(node, list):
        for value in node:
            _bound_strings(value)


def write_schemas(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in schema_files().items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def validate_lines(lines: Iterable[bytes]) -> tuple[list[dict[str, object]], bool]:
    """One result object per input line, and whether every line was valid."""
    results: list[dict[str, object]] = []
    all_valid = True
    for number, raw in enumerate(lines, start=1):
        event, errors = parse_event(raw)
        peek = _peek(raw)
        results.append(
            {
                "line": number,
                "valid": event is not None,
                "event_id": str(event.event_id) if event else peek.get("event_id"),
                "event_type": event.event_type if event else peek.get("event_type"),
                "errors": [e.model_dump() for e in errors],
            }
        )
        all_valid &= event is not None
    return results, all_valid


ECHO_LIMIT = 60  # characters of a partner's value echoed back in the report


def _echo(value: str) -> str:
    return value if len(value) <= ECHO_LIMIT else value[: ECHO_LIMIT - 1] + "…"


def _peek(raw: bytes) -> dict[str, str]:
    """event_id and event_type of an invalid line when they can be read (truncated), for the report."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {k: _echo(doc[k]) for k in ("event_id", "event_type") if isinstance(doc.get(k), str)}


def _all_lines(path: str) -> list[bytes]:
    """Every line, blank ones included, so line numbers match the file."""
    with open_input(path) as stream:
        return [line.rstrip(b"\r\n") for line in stream]


def _run_validate(args: argparse.Namespace) -> int:
    try:
        lines = _all_lines(args.file)
    except OSError as exc:
        print(f"error: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    results, all_valid = validate_lines(lines)
    for result in results:
        print(json.dumps(result))
    return 0 if all_valid else 1


def _run_schema(args: argparse.Namespace) -> int:
    written = write_schemas(Path(args.out))
    print(f"wrote {len(written)} JSON Schema files to {args.out}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    schema = subparsers.add_parser(
        "schema",
        help="write the event contract as JSON Schema",
        description="Write JSON Schema (draft 2020-12) for every event type of contract v1, "
        "and event.schema.json for the union of all types.",
    )
    schema.add_argument("--out", default="contracts", help="folder to write to (default: contracts)")
    schema.set_defaults(func=_run_schema)

    validate = subparsers.add_parser(
        "validate",
        help="check JSON Lines events against the contract",
        description="Validate JSON Lines against contract v1. Prints one JSON object per input line: "
        '{"line", "valid", "event_id", "event_type", "errors": [{"loc", "msg"}]}. '
        "Exit status 0 when every line is valid, 1 otherwise, 2 when the file cannot be read.",
    )
    validate.add_argument("file", help="JSON Lines file, or - for stdin")
    validate.set_defaults(func=_run_validate)
