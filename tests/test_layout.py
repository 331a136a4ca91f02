"""The package layout's rules hold: no import cycle, core imports no modality, the CLI sits on top, no oversized module.

Imports are read from the source (every ``import``/``from`` statement, also inside functions), so a
lazy import that closes a circle is caught too.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "molssl"
MAX_LINES = 400
MODALITIES = ("chem", "vision", "video", "audio", "rl", "multimodal")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """molssl modules ``path`` imports (``from a.b import c`` counts as a.b.c when that is a module, else a.b)."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found |= {n for n in names if n in known and n != this}
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) for name, path in found.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle as a list of modules (empty when there is none)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def test_no_import_cycle():
    cycle = find_cycle({k: {v for v in vs if not k.startswith(v + ".")} for k, vs in graph().items()})
    assert not cycle, " -> ".join(cycle)


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_core_imports_no_modality_and_nothing_imports_the_cli():
    for name, targets in graph().items():
        if name.startswith("molssl.core"):
            bad = [t for t in targets if t.count(".") and t.split(".")[1] in MODALITIES or t.startswith("molssl.cli")]
            assert not bad, f"{name} imports {bad}"
        if not name.startswith(("molssl.cli", "molssl.__main__")):
            assert not [t for t in targets if t.startswith("molssl.cli")], f"{name} imports the CLI"


def test_chem_rooms_layer_upwards():
    """data < nn < tasks/serve: the data layer knows no model, the model layer no task or serving code."""
    lower = {"data": ("nn", "tasks", "serve"), "nn": ("tasks", "serve")}
    for name, targets in graph().items():
        parts = name.split(".")
        if len(parts) > 2 and parts[1] == "chem" and parts[2] in lower:
            bad = [t for t in targets if t.startswith("molssl.chem.") and t.split(".")[2] in lower[parts[2]]]
            assert not bad, f"{name} imports {bad}"


@pytest.mark.parametrize("name, path", sorted(modules().items()))
def test_module_size(name, path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}); split it by what it does"
