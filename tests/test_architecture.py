"""The package's shape: no import cycles between tinyc modules (module-level and
function-level imports alike), and no module using another module's private names.

The import graph is read from the source with ast, so an import hidden inside a function
counts as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "tinyc"

# Edges known to be cut by a branch not merged yet, each with the reason.
ALLOWED_EDGES = {
}
# Private names used across modules, likewise.
ALLOWED_PRIVATE = {
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom) -> str | None:
    """The absolute module an `from X import ...` names (relative imports resolved)."""
    if node.level == 0:
        return node.module
    is_pkg = MODULES[importer].name == "__init__.py"
    base = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str) -> list[tuple[str, list[str], int]]:
    """(imported tinyc module, names taken from it, line) for every import in module `name`."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] == "tinyc"]
        elif isinstance(node, ast.ImportFrom):
            mod = resolve(name, node)
            if mod is None or mod.split(".")[0] != "tinyc":
                continue
            plain = []
            for a in node.names:
                sub = f"{mod}.{a.name}"
                if sub in MODULES:   # `from tinyc.x import y` where y is a module
                    found.append((sub, [], node.lineno))
                else:
                    plain.append(a.name)
            if plain:
                found.append((mod, plain, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for m in MODULES:
        for target, _, _ in imports_of(m):
            if target in MODULES and target != m and (m, target) not in ALLOWED_EDGES:
                edges[m].add(target)
    return edges


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}   # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                cycle = visit(n)
                if cycle:
                    return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state:
            cycle = visit(m)
            if cycle:
                return cycle
    return None


def test_the_graph_is_read():
    # A broken reader would find no cycle in anything: check it sees known edges.
    edges = graph()
    assert "tinyc.outdir" in edges["tinyc.build.firmware"]
    assert "tinyc.codegen" in edges["tinyc.convert"]
    assert "tinyc.ir" in edges["tinyc.passes.prune"]


def test_finds_a_cycle_when_there_is_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_names_across_modules(name):
    """`from tinyc.x import _y` and `x._y` on an imported tinyc module are both refused."""
    bad = []
    aliases = {}
    for target, names, line in imports_of(name):
        bad += [f"line {line}: {target}.{n}" for n in names if n.startswith("_") and n != "__version__"]
    tree = ast.parse(MODULES[name].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = resolve(name, node)
            for a in node.names:
                if f"{mod}.{a.name}" in MODULES:
                    aliases[a.asname or a.name] = f"{mod}.{a.name}"
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.asname and a.name in MODULES:
                    aliases[a.asname] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")
                and aliases[node.value.id] != name):
            bad.append(f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}")
    bad = [b for b in bad if (name, b.split(": ")[1]) not in ALLOWED_PRIVATE]
    assert not bad, f"{name} uses private names of other modules: {bad}"
