"""Imports point one way: commands (sgi/) -> services (streams shell, sinks, grafana, report, simulator)
-> the pure core (streams/core) -> the contract (models/) -> settings. Read from the source's own imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("settings", "models", "streams", "sinks", "grafana", "report", "simulator", "sgi")
# package -> the layers it may import (besides itself); "streams" is the Faust shell and the topic declarations,
# "streams.core" the pure core.
ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "models": set(),
    "streams.core": {"models"},
    "streams": {"streams.core", "models", "settings"},
    "sinks": {"streams", "streams.core", "models", "settings"},
    "simulator": {"streams.core", "models"},
    "report": {"sinks", "streams.core", "models", "settings"},
    "grafana": {"report", "streams.core", "models", "settings"},
    "sgi": {*PROJECT, "streams.core"},
}


def _files(package: str) -> list[Path]:
    if package == "settings":
        return [ROOT / "settings.py"]
    folder = ROOT / package.replace(".", "/")
    files = sorted(folder.rglob("*.py"))
    if package == "streams":  # the core is checked on its own, more strictly
        files = [path for path in files if "core" not in path.relative_to(folder).parts]
    return files


def _imported(path: Path) -> set[str]:
    """Dotted names of every project module the file imports, at any depth (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name for name in names if name.split(".")[0] in PROJECT}


def _layer(name: str) -> str:
    return "streams.core" if name.startswith("streams.core") else name.split(".")[0]


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_down(package: str) -> None:
    files = _files(package)
    assert files, package
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in _imported(path)
        if _layer(name) != package and _layer(name) not in ALLOWED[package]
    }
    assert not wrong, sorted(wrong)


def test_a_forbidden_import_is_seen() -> None:
    """The check above can fail: a lower layer importing the command line is caught."""
    assert "sgi.db" in _imported(ROOT / "sgi" / "pack.py")
    assert _layer("sgi.db") not in ALLOWED["report"]
