"""npm: every package.json as syft reports it in image mode (nested, scoped, global, the app's own)."""

from __future__ import annotations

from pathlib import Path

from ci_gate.analyze.catalogers.npm import NpmCataloger, package_url
from tests.support.catalogers import catalog_trees, syft_identities
from tests.support.syft import run_syft_dir

FIXTURE = Path(__file__).parent / "fixtures" / "npm"


def test_package_json_files_agree_with_syft() -> None:
    ours, warnings = catalog_trees(NpmCataloger(), [FIXTURE])
    theirs = run_syft_dir(FIXTURE, "javascript-package-cataloger")
    assert len(ours) == 8  # two `debug` versions side by side; the nameless dist/package.json is no package
    assert sorted((p.name, p.version, p.purl) for p in ours) == sorted(
        (a["name"], a["version"], a["purl"]) for a in theirs)
    assert {(p.locations[0].path, tuple(p.licenses)) for p in ours} == {
        (a["locations"][0]["path"], tuple(license["value"] for license in a["licenses"])) for a in theirs}
    # The truncated package.json is reported, not fatal (syft drops it silently).
    assert len(warnings) == 1 and "node_modules/broken/package.json" in warnings[0]


def test_metadata_and_scoped_purls() -> None:
    ours, _ = catalog_trees(NpmCataloger(), [FIXTURE])
    by_path = {p.locations[0].path: p for p in ours}
    express = by_path["/opt/app/node_modules/express/package.json"]
    assert express.metadata["author"] == "TJ Holowaychuk <tj@vision-media.ca>"
    assert express.metadata["url"] == "expressjs/express"
    assert express.metadata["homepage"] == "http://expressjs.com/"
    assert by_path["/opt/app/package.json"].metadata["private"] is True
    assert by_path["/opt/app/package.json"].metadata["in_node_modules"] is False
    assert package_url("@babel/core", "7.0.0") == "pkg:npm/%40babel/core@7.0.0"
    assert package_url("left-pad", "") == "pkg:npm/left-pad"


def test_a_package_without_a_version_is_reported_with_none(tmp_path: Path) -> None:
    folder = tmp_path / "node_modules/bare"
    folder.mkdir(parents=True)
    (folder / "package.json").write_text('{"name": "bare"}')
    ours, _ = catalog_trees(NpmCataloger(), [tmp_path])
    theirs = run_syft_dir(tmp_path, "javascript-package-cataloger")
    # syft writes a missing version as UNKNOWN; we keep it empty: the purl is the same.
    assert [(p.name, p.version, p.purl) for p in ours] == [("bare", "", "pkg:npm/bare")]
    assert {(p.name, p.version, p.purl) for p in ours} == syft_identities(theirs)


def test_hostile_json_never_raises(tmp_path: Path) -> None:
    cases = {"deep": b"[" * 100000 + b"]" * 100000, "array": b"[1, 2]", "binary": b"\x00\xff\xfe\xfd",
             "name-not-string": b'{"name": {"x": 1}, "version": 3}', "ok": b'{"name": "ok", "version": "1"}'}
    for name, content in cases.items():
        folder = tmp_path / "node_modules" / name
        folder.mkdir(parents=True)
        (folder / "package.json").write_bytes(content)
    ours, warnings = catalog_trees(NpmCataloger(), [tmp_path])
    assert [(p.name, p.version) for p in ours] == [("ok", "1")]
    assert len(warnings) == 2  # deep nesting and binary are not JSON; the others are JSON but no package
