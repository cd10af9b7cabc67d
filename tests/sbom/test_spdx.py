"""SPDX output: valid against the official SPDX 2.3 JSON schema and spdx-tools' full validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped,unused-ignore]
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from ci_gate.model import Analysis
from ci_gate.sbom.spdx import render_spdx
from tests.sbom.conftest import SyftSboms
from tests.sbom.samples import SAMPLE

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "spdx-schema-2.3.json").read_text())


def assert_valid(document: dict[str, Any], folder: Path) -> None:
    errors = [error.message for error in jsonschema.Draft7Validator(SCHEMA).iter_errors(document)]
    assert errors == []
    path = folder / "document.spdx.json"
    path.write_text(json.dumps(document))
    messages = [message.validation_message for message in validate_full_spdx_document(parse_file(str(path)))]
    assert messages == []


def test_the_real_image_sbom_is_valid(app_analysis: Analysis, tmp_path: Path) -> None:
    document = render_spdx(app_analysis)
    assert_valid(document, tmp_path)
    assert document["spdxVersion"] == "SPDX-2.3"
    root = document["packages"][0]
    assert root["primaryPackagePurpose"] == "CONTAINER"
    assert document["documentDescribes"] == [root["SPDXID"]]
    contained = [r for r in document["relationships"] if r["relationshipType"] == "CONTAINS"]
    assert len(contained) == len(document["packages"]) - 1 == 145


def test_the_same_purls_as_syfts_spdx(app_analysis: Analysis, syft_sboms: SyftSboms) -> None:
    def purls(document: dict[str, Any]) -> list[str]:
        return sorted(ref["referenceLocator"] for package in document["packages"]
                      for ref in package.get("externalRefs", []) if ref["referenceType"] == "purl"
                      and package.get("primaryPackagePurpose") != "CONTAINER")

    assert purls(render_spdx(app_analysis)) == purls(json.loads(syft_sboms.spdx.read_text()))


def test_licenses_become_spdx_expressions(tmp_path: Path) -> None:
    document = render_spdx(SAMPLE)
    assert_valid(document, tmp_path)
    declared = {p["name"]: p["licenseDeclared"] for p in document["packages"][1:]}
    assert declared["bash"] == "GPL-3.0-only AND GPL-3.0-or-later AND BSD-4-Clause-UC AND LicenseRef-permissive"
    assert declared["@scope/thing"] == "(MIT OR Apache-2.0)"
    assert declared["weird"] == "LicenseRef-MIT-and-BSD-or-GPLv2 AND LicenseRef-Some-Custom-License"
    assert declared["nolicense"] == "NOASSERTION"
    extracted = {info["licenseId"]: info["extractedText"] for info in document["hasExtractedLicensingInfos"]}
    assert extracted["LicenseRef-Some-Custom-License"] == "Some Custom License!"
    identifiers = [p["SPDXID"] for p in document["packages"]]
    assert len(set(identifiers)) == len(identifiers)
