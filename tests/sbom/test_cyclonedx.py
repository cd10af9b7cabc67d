"""CycloneDX output: valid against the official 1.6 schema, and the same packages as syft's."""

from __future__ import annotations

import json
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from ci_gate.model import Analysis
from ci_gate.sbom.cyclonedx import render_cyclonedx
from tests.sbom.conftest import SyftSboms
from tests.sbom.samples import SAMPLE


def assert_valid(document: dict[str, Any]) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    assert error is None, str(error)


def test_the_real_image_sbom_is_valid_and_lists_every_package(app_analysis: Analysis) -> None:
    document = render_cyclonedx(app_analysis)
    assert_valid(document)
    assert document["specVersion"] == "1.6"
    libraries = [c for c in document["components"] if c["type"] == "library"]
    assert len(libraries) == len(app_analysis.packages) == 145
    assert [c["purl"] for c in libraries] == [p.purl for p in app_analysis.packages]
    (system,) = [c for c in document["components"] if c["type"] == "operating-system"]
    assert (system["name"], system["version"]) == ("debian", "12")
    subject = document["metadata"]["component"]
    assert subject["type"] == "container"
    assert subject["version"] == app_analysis.identity.manifest_digest


def test_the_same_purls_as_syfts_cyclonedx(app_analysis: Analysis, syft_sboms: SyftSboms) -> None:
    theirs = json.loads(syft_sboms.cyclonedx.read_text())
    ours = render_cyclonedx(app_analysis)
    assert sorted(c["purl"] for c in ours["components"] if "purl" in c) == sorted(
        c["purl"] for c in theirs["components"] if "purl" in c)


def test_properties_licenses_and_awkward_packages() -> None:
    document = render_cyclonedx(SAMPLE)
    assert_valid(document)
    components = [c for c in document["components"] if c["type"] == "library"]
    references = [c["bom-ref"] for c in components]
    assert len(set(references)) == len(references) == 6  # the duplicate `debug` gets its own id
    bash = components[0]
    properties = {p["name"]: p["value"] for p in bash["properties"]}
    assert properties["syft:package:type"] == "deb"
    assert properties["syft:package:foundBy"] == "dpkg-db-cataloger"
    assert properties["syft:location:0:path"] == "/var/lib/dpkg/status"
    assert properties["syft:location:0:layerID"] == "sha256:" + "a" * 64
    assert properties["ci-gate:origin"] == "base"
    assert properties["ci-gate:metadata:installed_size"] == "7000"
    assert bash["licenses"] == [
        {"license": {"id": "GPL-3.0-only"}}, {"license": {"id": "GPL-3.0-or-later"}},
        {"license": {"id": "BSD-4-Clause-UC"}}, {"license": {"name": "permissive"}}]
    by_name = {c["name"]: c for c in components}
    assert by_name["@scope/thing"]["licenses"] == [{"expression": "(MIT OR Apache-2.0)"}]
    assert "version" not in by_name["@scope/thing"]
    assert by_name["weird"]["licenses"] == [{"license": {"name": "MIT and (BSD or GPLv2+)"}},
                                            {"license": {"name": "Some Custom License!"}}]
    assert "purl" not in by_name["nolicense"] and "licenses" not in by_name["nolicense"]


def test_the_serial_number_is_stable_for_the_same_analysis() -> None:
    assert render_cyclonedx(SAMPLE)["serialNumber"] == render_cyclonedx(SAMPLE)["serialNumber"]
