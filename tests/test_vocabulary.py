"""One vocabulary of package types: `ci_gate/ecosystems.py`, and no second table anywhere in ci_gate/.

A dict, set, list or tuple literal that names three or more package types of one vocabulary (syft's
package types, Anchore's names, purl types) outside ecosystems.py is a second table that will
drift; it fails here, naming the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

from ci_gate import ecosystems

ROOT = Path(ecosystems.__file__).parent
_SCHEME_ONLY_NAMES = {"pep440", "semver", "rubygems"}
"""Version scheme names no vocabulary of package types uses: a literal with two of them is the table
of schemes (`vulns.versions.COMPARATORS`, whose `dpkg`, `apk`, `rpm`, `go` are scheme names)."""

VOCABULARIES = {
    "package types": {e.package_type for e in ecosystems.ECOSYSTEMS},
    "Anchore package types": {e.anchore_type for e in ecosystems.ECOSYSTEMS} | {"apkg", "kb", "java-jar"},
    "purl types": {e.purl_type for e in ecosystems.ECOSYSTEMS},
}


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Dict):
        elements = [*(k for k in node.keys if k is not None), *node.values]
    elif isinstance(node, (ast.Set, ast.List, ast.Tuple)):
        elements = list(node.elts)
    else:
        return []
    return [e.value for e in elements if isinstance(e, ast.Constant) and isinstance(e.value, str)]


def second_tables(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        strings = set(_strings(node))
        if len(strings & _SCHEME_ONLY_NAMES) >= 2:
            continue
        for name, vocabulary in VOCABULARIES.items():
            named = strings & vocabulary
            if len(named) >= 3:
                found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {name} {sorted(named)}")
    return found


def test_no_second_package_type_table_in_ci_gate() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        if path == Path(ecosystems.__file__):
            continue
        found += second_tables(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT.parent)))
    assert found == [], "declare package types once, in ci_gate/ecosystems.py:\n" + "\n".join(found)


def test_the_scan_sees_a_table_of_each_vocabulary() -> None:
    # The detector itself: each of the tables this test was written to remove is caught.
    assert second_tables('T = {"deb": "dpkg", "apk": "APKG", "python": "python"}', "x.py")
    assert second_tables('OS = ("rpm", "dpkg", "apkg", "kb")', "x.py")
    assert second_tables('P = {"pypi": 1, "golang": 2, "cargo": 3}', "x.py")
    assert second_tables('C = {"dpkg": 1, "apk": 2, "rpm": 3, "pep440": 4}', "x.py") == []


def test_every_package_type_has_one_entry_and_a_known_scheme() -> None:
    from ci_gate.vulns.versions import COMPARATORS

    types = [e.package_type for e in ecosystems.ECOSYSTEMS]
    assert len(types) == len(set(types))
    assert {e.version_scheme for e in ecosystems.ECOSYSTEMS} <= set(COMPARATORS)
    assert {"deb", "apk", "rpm"} == ecosystems.OS_PACKAGE_TYPES
    assert ecosystems.package_type_of_anchore("APKG") == "apk"
    assert ecosystems.package_type_of_anchore("java-war") == "java-archive"
    assert ecosystems.package_type_of_purl_type("maven") == "java-archive"
    assert ecosystems.anchore_content_type_of("deb") == "os"
    assert ecosystems.scheme_for_ecosystem("Ubuntu:22.04:LTS") == "dpkg"


def test_one_purl_builder() -> None:
    # packageurl-python encodes `(devel)` as `%28devel%29` and sorts its own way; syft writes `(devel)`.
    # Purls are built by ci_gate/analyze/catalogers/package_url.py only (packageurl-python may parse).
    builders = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "PackageURL":
                builders.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    assert builders == []
    from ci_gate.analyze.catalogers.package_url import package_url

    assert package_url("golang", "github.com/x", "tool", "(devel)") == "pkg:golang/github.com/x/tool@(devel)"
