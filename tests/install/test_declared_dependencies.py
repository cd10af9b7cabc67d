"""Every module ci_gate imports at run time comes from a dependency pyproject.toml declares.

The test suite runs with the dev extras installed, so an undeclared import (pytest brings in
`packaging`, for one) passes every other test and breaks `pip install ci-gate` on a fresh machine.
This walks every import statement in ci_gate/ (also the ones inside functions), maps each
third-party top-level module to the distribution that provides it, and checks that distribution
is a declared dependency: the core list for everything, plus the `server` extra for the server.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ci_gate"

SERVER_MODULES = ("ci_gate/server/", "ci_gate/notify/", "ci_gate/cli/serve.py", "ci_gate/database.py",
                  "ci_gate/database_url.py")
"""Code that runs only under `ci-gate serve` (its notifications included), which needs
`pip install 'ci-gate[server]'`."""


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return _normalise(match.group(1))


def _declared() -> tuple[set[str], set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    server = {_requirement_name(r) for r in project["optional-dependencies"]["server"]}
    return core, server


def _third_party_imports(source: Path) -> set[str]:
    """Top-level names of the absolute imports in one file that are neither stdlib nor ci_gate."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text("utf-8"), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n != "ci_gate" and n != "__future__"}


def _undeclared() -> list[str]:
    core, server = _declared()
    providers = importlib.metadata.packages_distributions()
    problems = []
    for source in sorted(PACKAGE.rglob("*.py")):
        relative = source.relative_to(ROOT).as_posix()
        allowed = core | server if relative.startswith(SERVER_MODULES) else core
        for module in sorted(_third_party_imports(source)):
            distributions = {_normalise(d) for d in providers.get(module, [])}
            if not distributions:
                problems.append(f"{relative}: imports {module!r}, which no installed distribution provides")
            elif not distributions & allowed:
                problems.append(f"{relative}: imports {module!r} from {sorted(distributions)}, "
                                f"not declared in pyproject.toml")
    return problems


def test_every_runtime_import_is_a_declared_dependency() -> None:
    assert _undeclared() == []


def test_the_walk_finds_imports_inside_functions_and_knows_the_dependency_names() -> None:
    # Guards the guard: pep440.py's `packaging` import is one the walk must see, and a
    # dependency named with other punctuation/case (PyYAML for `yaml`) must still count as declared.
    assert "packaging" in _third_party_imports(PACKAGE / "vulns" / "versions" / "pep440.py")
    core, server = _declared()
    assert {"packaging", "pyyaml", "junit-xml", "typer"} <= core
    assert {"starlette", "uvicorn"} <= server
    assert not {"starlette", "uvicorn"} & core
