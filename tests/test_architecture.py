"""The import graph of ci_gate: no cycles and no upward imports (docs/architecture.md, "Layers").

The graph is read from the source with `ast`: every `import` anywhere in a module counts, also one
inside a function (a lazy import still runs) and one under `if TYPE_CHECKING:` (a type-only cycle
is still a cycle for the reader and for static tools). The registries that name modules as text
(`ci_gate.cli.COMMANDS`) count as imports too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import ci_gate
from ci_gate.cli import COMMANDS

PACKAGE_ROOT = Path(ci_gate.__file__).resolve().parent

LAYERS: tuple[tuple[str, ...], ...] = (
    ("ci_gate", "ci_gate.errors", "ci_gate.choices", "ci_gate.fileio", "ci_gate.http", "ci_gate.model",
     "ci_gate.ecosystems", "ci_gate.redaction", "ci_gate.bounded_yaml", "ci_gate.codec", "ci_gate.json_fields",
     "ci_gate.secrets", "ci_gate.database", "ci_gate.database_url", "ci_gate.private_files"),
    ("ci_gate.sources",),
    ("ci_gate.sbom", "ci_gate.analyze", "ci_gate.saved_sbom"),
    ("ci_gate.vulns", "ci_gate.stig"),
    ("ci_gate.policy",),
    ("ci_gate.backends",),
    ("ci_gate.reports",),
    ("ci_gate.publish", "ci_gate.notify"),
    ("ci_gate.gate",),
    ("ci_gate.server", "ci_gate.rematch"),
    ("ci_gate.cli",),
)
"""Lowest first. A module may import its own layer and the layers before it, never one after it.
The same order, with what each layer is for, is in docs/architecture.md."""

ALLOWED_CYCLES: dict[frozenset[str], str] = {}
"""Cycles left for another branch of the same refactor to remove, each with the edge that closes it.
Empty when every branch is merged; an entry here is a debt, never a design."""

ALLOWED_UPWARD: dict[tuple[str, str], str] = {}
"""Upward imports left for another branch of the same refactor, with why (same rule as above)."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE_ROOT.rglob("*.py"))}


def imported_names(path: Path, name: str, modules: dict[str, Path]) -> Iterator[str]:
    """Every ci_gate module `path` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text("utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ci_gate"):
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = name.split(".") if is_package else name.split(".")[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base.startswith("ci_gate"):
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield candidate if candidate in modules else base


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges = {target for target in imported_names(path, name, modules) if target in modules and target != name}
        graph[name] = edges
    graph["ci_gate.cli"] |= set(COMMANDS.values())
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (the graph is a few hundred modules deep at most)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return components


def layer_of(module: str) -> int:
    best = -1
    best_length = -1
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or (prefix != "ci_gate" and module.startswith(prefix + "."))
            if matches and len(prefix) > best_length:
                best, best_length = number, len(prefix)
    return best


def test_every_module_has_a_layer():
    unplaced = sorted(name for name in all_modules() if layer_of(name) < 0)
    assert not unplaced, f"modules with no layer in LAYERS (and docs/architecture.md): {unplaced}"


def test_no_import_cycles():
    cycles = [sorted(component) for component in strongly_connected(import_graph())
              if frozenset(component) not in ALLOWED_CYCLES]
    assert not cycles, f"import cycles (a lazy or TYPE_CHECKING import counts): {cycles}"


def test_no_upward_imports():
    graph = import_graph()
    upward = sorted((source, target) for source, targets in graph.items() for target in targets
                    if layer_of(target) > layer_of(source) and (source, target) not in ALLOWED_UPWARD)
    assert not upward, f"imports of a later layer (see LAYERS): {upward}"


def test_the_graph_sees_lazy_and_type_checking_imports(tmp_path):
    # The reader must not miss the imports that hid the old cycles: one in a function, one for types only.
    module = tmp_path / "probe.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ci_gate.gate import GateResult\n"
                      "def f():\n    import ci_gate.reports.junit\n")
    found = set(imported_names(module, "ci_gate.probe", all_modules()))
    assert found == {"ci_gate.gate", "ci_gate.reports.junit"}


def test_the_allowlists_name_real_edges():
    graph = import_graph()
    components = [frozenset(component) for component in strongly_connected(graph)]
    stale_cycles = [sorted(cycle) for cycle in ALLOWED_CYCLES if cycle not in components]
    stale_upward = [edge for edge in ALLOWED_UPWARD if edge[1] not in graph.get(edge[0], set())]
    assert not stale_cycles and not stale_upward, f"allowlist entries no longer needed: {stale_cycles} {stale_upward}"


def test_no_test_package_shadows_a_standard_library_module() -> None:
    # pytest puts tests/ on sys.path, so tests/secrets/ once made `import secrets` in
    # publish/github.py load the test package instead of Python's own module.
    tests_dir = Path(__file__).resolve().parent
    packages = {child.name for child in tests_dir.iterdir() if (child / "__init__.py").is_file()}
    assert not packages & set(sys.stdlib_module_names), sorted(packages & set(sys.stdlib_module_names))
