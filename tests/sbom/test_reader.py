"""`sbom:PATH`: syft JSON, CycloneDX and SPDX SBOMs read back into an analysis."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest

from ci_gate.analyze.analyzer import analyze_image
from ci_gate.errors import SourceError
from ci_gate.model import Analysis, Package
from ci_gate.sbom.cyclonedx import render_cyclonedx
from ci_gate.sbom.reader import analysis_from_sbom
from ci_gate.sbom.spdx import render_spdx
from tests.sbom.conftest import SyftSboms
from tests.sbom.samples import SAMPLE


def triples(packages: tuple[Package, ...]) -> Counter[tuple[str, str, str]]:
    return Counter((p.type, p.name, p.version) for p in packages)


def test_each_of_syfts_formats_gives_syfts_packages(syft_sboms: SyftSboms) -> None:
    document = json.loads(syft_sboms.json.read_text())
    expected = Counter((a["type"], a["name"], a["version"]) for a in document["artifacts"])
    manifest_digest = document["source"]["metadata"]["manifestDigest"]
    for path in (syft_sboms.json, syft_sboms.cyclonedx, syft_sboms.spdx):
        analysis = analysis_from_sbom(path)
        assert triples(analysis.packages) == expected, path.name
        assert analysis.distro is not None and (analysis.distro.id, analysis.distro.version_id) == ("debian", "12")
        assert analysis.identity.scheme == "sbom"
        assert analysis.identity.manifest_digest == manifest_digest
        bash = next(p for p in analysis.packages if p.name == "bash")
        assert bash.purl.startswith("pkg:deb/debian/bash@")
        assert bash.metadata.get("source", "bash") == "bash"
        assert any(location.path == "/var/lib/dpkg/status" for location in bash.locations)


def test_syft_json_keeps_layers_and_metadata(syft_sboms: SyftSboms) -> None:
    document = json.loads(syft_sboms.json.read_text())
    analysis = analysis_from_sbom(syft_sboms.json)
    assert analysis.identity.config_digest == document["source"]["metadata"]["imageID"]
    assert [layer.diff_id for layer in analysis.identity.layers] == [
        layer["digest"] for layer in document["source"]["metadata"]["layers"]]
    placed = Counter((p.type, p.locations[0].layer_index) for p in analysis.packages)
    assert placed == Counter({("deb", 0): 88, ("npm", 1): 53, ("python", 1): 4})
    libc = next(p for p in analysis.packages if p.name == "libc6")
    assert libc.metadata["source"] == "glibc"
    assert libc.metadata["architecture"] == "amd64"
    assert libc.metadata["distro"] == "debian-12"


@pytest.mark.parametrize("render", [render_cyclonedx, render_spdx])
def test_our_own_sboms_read_back_the_same(render, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sbom.json"
    path.write_text(json.dumps(render(SAMPLE)))
    analysis = analysis_from_sbom(path)

    def essentials(packages: tuple[Package, ...]) -> list[tuple[object, ...]]:
        return sorted(((p.type, p.name, p.version, p.purl, p.licenses, p.found_by, p.origin or ""),
                       tuple((loc.path, loc.layer_index, loc.layer_diff_id) for loc in p.locations))
                      for p in packages)

    expected = SAMPLE.packages
    if render is render_cyclonedx:
        # CycloneDX names a license by its SPDX id where there is one: the names come back normalised.
        normalised = {"bash": ("GPL-3.0-only", "GPL-3.0-or-later", "BSD-4-Clause-UC", "permissive")}
        expected = tuple(dataclasses.replace(p, licenses=normalised.get(p.name, p.licenses)) for p in expected)
    assert essentials(analysis.packages) == essentials(expected)
    assert analysis.identity.config_digest == SAMPLE.identity.config_digest
    assert analysis.identity.manifest_digest == SAMPLE.identity.manifest_digest
    assert analysis.identity.repo_tags == SAMPLE.identity.repo_tags
    assert [layer.diff_id for layer in analysis.identity.layers] == [layer.diff_id for layer in SAMPLE.identity.layers]
    assert analysis.distro is not None and analysis.distro.id == "debian"
    assert analysis.config.labels == {"org.opencontainers.image.title": "app"}


def test_the_real_image_round_trips_through_cyclonedx(app_analysis: Analysis, tmp_path: Path) -> None:
    path = tmp_path / "app.cdx.json"
    path.write_text(json.dumps(render_cyclonedx(app_analysis)))
    analysis = analyze_image(f"sbom:{path}")
    assert triples(analysis.packages) == triples(app_analysis.packages)
    assert {(p.name, p.origin) for p in analysis.packages} == {(p.name, p.origin) for p in app_analysis.packages}
    assert dict(analysis.packages[0].metadata) == {
        key: str(value) for key, value in app_analysis.packages[0].metadata.items()
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != ""} | {
        key: ("true" if value else "false") for key, value in app_analysis.packages[0].metadata.items()
        if isinstance(value, bool)}


@pytest.mark.parametrize(("content", "expected"), [
    (None, "cannot read the SBOM"),
    (b"\x00\x01 not json", "is not JSON"),
    (b"[1, 2, 3]", "is not a JSON object"),
    (b'{"hello": "world"}', "neither a syft JSON"),
    (b'{"bomFormat": "CycloneDX", "components": "not a list"}', "does not follow its format"),
    (b'{"artifacts": [], "source": {"metadata": {"layers": "x"}}}', "does not follow its format"),
])
def test_bad_sboms_fail_with_one_clear_line(tmp_path: Path, content: bytes | None, expected: str) -> None:
    path = tmp_path / "sbom.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=expected) as raised:
        analysis_from_sbom(path)
    assert "\n" not in str(raised.value)
