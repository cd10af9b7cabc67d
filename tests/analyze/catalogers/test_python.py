"""python: dist-info, egg-info folders and files laid out as in an image, against syft."""

from __future__ import annotations

from pathlib import Path

from ci_gate.analyze.catalogers.python import PythonCataloger, normalize
from tests.support.catalogers import catalog_trees, syft_identities
from tests.support.syft import run_syft_dir

FIXTURE = Path(__file__).parent / "fixtures" / "python"
SITE = "/usr/local/lib/python3.11/site-packages"


def test_installed_distributions_agree_with_syft() -> None:
    ours, warnings = catalog_trees(PythonCataloger(), [FIXTURE])
    theirs = run_syft_dir(FIXTURE, "python-installed-package-cataloger")
    assert warnings == []
    # The interpreter's own Python-3.11.2.egg-info is not a package (syft skips it too).
    assert len(ours) == 5
    assert {(p.name, p.version, p.purl) for p in ours} == syft_identities(theirs)
    assert {p.name: p.locations[0].path for p in ours} == {a["name"]: a["locations"][0]["path"] for a in theirs}
    syft_licenses = {a["name"]: [license["value"] for license in a["licenses"]] for a in theirs}
    our_licenses = {p.name: list(p.licenses) for p in ours}
    # One named difference: a distribution that declares its license only as a trove classifier.
    # syft reports no license; we report the classifier's name, which is what the author declared.
    assert syft_licenses.pop("classified") == []
    assert our_licenses.pop("classified") == ["MIT License"]
    assert our_licenses == syft_licenses


def test_metadata_fields_and_the_body_is_not_read() -> None:
    ours, _ = catalog_trees(PythonCataloger(), [FIXTURE])
    requests = {p.name: p for p in ours}["requests"]
    assert requests.licenses == ("Apache 2.0",)  # not the "License:" line in the description body
    assert requests.metadata["requires_dist"] == [
        "charset-normalizer (<4,>=2)", "idna (<4,>=2.5)", "urllib3 (<3,>=1.21.1)"]
    assert requests.metadata["requires_python"] == ">=3.7"
    assert requests.metadata["site_packages_root_path"] == SITE
    assert requests.type == "python"
    assert requests.found_by == "python-installed-package-cataloger"


def test_name_normalisation() -> None:
    assert normalize("Zope.Interface") == "zope-interface"
    assert normalize("typing_extensions") == "typing-extensions"
    assert normalize("A__b--C..d") == "a-b-c-d"


def test_an_upgrade_in_a_later_layer_is_credited_to_it(tmp_path: Path) -> None:
    def write(layer: str, version: str) -> None:
        folder = tmp_path / layer / SITE.lstrip("/") / "pkg.dist-info"
        folder.mkdir(parents=True)
        (folder / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pkg\nVersion: {version}\n")

    write("l0", "1.0")
    write("l1", "1.0")
    write("l2", "2.0")
    ours, _ = catalog_trees(PythonCataloger(), [tmp_path / "l0", tmp_path / "l1", tmp_path / "l2"])
    assert [(p.version, p.locations[0].layer_index) for p in ours] == [("2.0", 2)]
    ours, _ = catalog_trees(PythonCataloger(), [tmp_path / "l0", tmp_path / "l1"])
    assert [(p.version, p.locations[0].layer_index) for p in ours] == [("1.0", 0)]


def test_unreadable_metadata_warns_and_the_rest_stands(tmp_path: Path) -> None:
    folder = tmp_path / SITE.lstrip("/")
    (folder / "broken.dist-info").mkdir(parents=True)
    (folder / "broken.dist-info/METADATA").write_bytes(b"\x00\xff\xfe\x89PNG garbage\n\n")
    (folder / "ok.dist-info").mkdir()
    (folder / "ok.dist-info/METADATA").write_text("Name: ok\nVersion: 1\n")
    ours, warnings = catalog_trees(PythonCataloger(), [tmp_path])
    assert [p.name for p in ours] == ["ok"]
    assert len(warnings) == 1 and "broken.dist-info/METADATA" in warnings[0]
