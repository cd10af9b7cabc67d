"""cargo-auditable binaries: a real ELF program given a real `.dep-v0` section by binutils' objcopy.

No cargo-auditable-built program ships in Debian bookworm, so the section is added the way the
linker would hold it: zlib-compressed JSON in a section named `.dep-v0` (objcopy --add-section).
"""

from __future__ import annotations

import json
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from ci_gate.analyze.catalogers.rust import CargoAuditableBinaryCataloger
from tests.support.catalogers import File, run, syft_artifacts, syft_triples, tree_layer
from tests.support.tools import require_tool

HOST_PROGRAM = Path("/bin/true")
DEPENDENCIES: dict[str, Any] = {"packages": [
    {"name": "ripgrep", "version": "14.1.0", "source": "local", "dependencies": [1, 2, 3], "root": True},
    {"name": "regex", "version": "1.10.3", "source": "crates.io", "dependencies": [4]},
    {"name": "serde", "version": "1.0.197", "source": "crates.io"},
    {"name": "cc", "version": "1.0.90", "source": "crates.io", "kind": "build"},
    {"name": "regex-syntax", "version": "0.8.2", "source": "crates.io"},
]}


def auditable_binary(work: Path, section: bytes) -> bytes:
    """A copy of a real ELF program with `section` as its .dep-v0 section."""
    objcopy = require_tool("objcopy")
    payload, output = work / "dep-v0.bin", work / "program"
    payload.write_bytes(section)
    subprocess.run([objcopy, "--add-section", f".dep-v0={payload}", "--set-section-flags", ".dep-v0=noload,readonly",
                    str(HOST_PROGRAM), str(output)], check=True, capture_output=True, timeout=60)
    return output.read_bytes()


@pytest.fixture(scope="session")
def rust_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rust-tree")
    binary = auditable_binary(tmp_path_factory.mktemp("objcopy"), zlib.compress(json.dumps(DEPENDENCIES).encode()))
    target = root / "usr/local/bin/rg"
    target.parent.mkdir(parents=True)
    target.write_bytes(binary)
    target.chmod(0o755)
    return root


def test_auditable_binary_agrees_with_syft(rust_tree: Path) -> None:
    theirs = syft_artifacts(rust_tree, ["rust-crate"])
    result = run(CargoAuditableBinaryCataloger, [tree_layer(rust_tree)])
    assert result.warnings == []
    assert result.triples() == syft_triples(theirs)
    assert {item.purl for item in result.packages} == {item["purl"] for item in theirs}
    # build-time crates are not in the program; the root crate (the program itself) is
    assert "cc" not in {item.name for item in result.packages}
    root = next(item for item in result.packages if item.name == "ripgrep")
    assert root.metadata["root"] is True and root.metadata["source"] == "local"


def test_plain_programs_are_ignored() -> None:
    result = run(CargoAuditableBinaryCataloger, [{"/bin/true": File(HOST_PROGRAM.read_bytes(), 0o755)}])
    assert result.packages == [] and result.warnings == []


@pytest.mark.parametrize(("section", "message"), [
    (zlib.compress(b"\0" * (64 * 1024 * 1024), 9), "decompression bomb"),
    (b"definitely not zlib", "not valid zlib"),
    (zlib.compress(b"{not json"), "does not hold JSON"),
    (zlib.compress(b'{"packages": 3}'), "no `packages` list"),
])
def test_hostile_sections_warn_and_the_rest_stands(tmp_path: Path, rust_tree: Path, section: bytes,
                                                    message: str) -> None:
    hostile = auditable_binary(tmp_path, section)
    good = (rust_tree / "usr/local/bin/rg").read_bytes()
    result = run(CargoAuditableBinaryCataloger, [{"/app/hostile": File(hostile, 0o755),
                                                  "/app/good": File(good, 0o755)}])
    assert {item.locations[0].path for item in result.packages} == {"/app/good"}
    assert len(result.warnings) == 1 and "/app/hostile" in result.warnings[0] and message in result.warnings[0]


def test_truncated_binary_warns(rust_tree: Path) -> None:
    good = (rust_tree / "usr/local/bin/rg").read_bytes()
    cut = good.rfind(b".dep-v0") + 16  # keeps the section-name table, loses the section headers
    result = run(CargoAuditableBinaryCataloger, [{"/app/cut": File(good[:cut], 0o755)}])
    assert result.packages == []
    assert len(result.warnings) == 1 and "truncated" in result.warnings[0]
