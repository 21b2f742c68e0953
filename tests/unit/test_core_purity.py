"""streams/core is the pure core: it never imports the stream framework, Kafka or ClickHouse, and
never reads the wall clock (STYLE principle 1, 7). Proven two ways: importing every core module in
a fresh interpreter and looking at sys.modules, and scanning the source for imports and clock reads."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import streams.core

CORE = Path(streams.core.__file__).parent
FORBIDDEN = ("faust", "mode", "kafka", "aiokafka", "clickhouse_connect", "clickhouse_driver", "chdb")
CORE_MODULES = sorted(f"streams.core.{path.stem}" for path in CORE.glob("*.py") if path.stem != "__init__")


def test_every_core_module_is_checked() -> None:
    assert {"streams.core.identity", "streams.core.child", "streams.core.places", "streams.core.rules",
            "streams.core.engine", "streams.core.config", "streams.core.clock"} <= set(CORE_MODULES)


def test_importing_the_core_loads_no_framework() -> None:
    script = (
        "import importlib, json, sys\n"
        f"for name in {CORE_MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                            cwd=CORE.parent.parent)
    loaded = json.loads(result.stdout)
    leaked = [name for name in loaded if name.split(".")[0] in FORBIDDEN]
    assert leaked == []


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_core_source_imports_a_framework_or_reads_the_clock() -> None:
    for path in CORE.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        assert not _imports(tree) & set(FORBIDDEN), path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in {"now", "utcnow", "today"}:
                assert not (isinstance(node.value, ast.Name) and node.value.id in {"datetime", "date"}), (
                    f"{path.name}:{node.lineno} reads the wall clock; inject `now` instead"
                )
            if isinstance(node, ast.Attribute) and node.attr in {"time", "monotonic"}:
                assert not (isinstance(node.value, ast.Name) and node.value.id == "time"), path.name
