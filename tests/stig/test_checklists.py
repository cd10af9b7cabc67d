"""Checklist rendering details that image content can reach: text from files is XML-safe."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ci_gate.stig.checklists import render_ckl, render_cklb
from ci_gate.stig.model import StigEvaluation, StigRule


def test_control_characters_from_image_files_keep_the_ckl_valid_xml() -> None:
    rule = StigRule("xccdf_org.ssgproject.content_rule_banner", "Banner", "fail", "high",
                    evidence="looked at: /etc/issue: \x1b[31mWelcome\x00 <&>")
    evaluation = StigEvaluation("oci-dir:x", "sha256:" + "a" * 64, "ssg-x-ds.xml", "bench", "B", "0.1.65",
                                "xccdf_org.ssgproject.content_profile_stig", "P", "OpenSCAP 1.3.7", [rule])
    details = ET.fromstring(render_ckl(evaluation)).findtext(".//FINDING_DETAILS") or ""
    assert "Welcome" in details and "<&>" in details and "\x1b" not in details and "\x00" not in details
    cklb = json.loads(render_cklb(evaluation))
    assert cklb["stigs"][0]["rules"][0]["status"] == "open" and "Welcome" in cklb["stigs"][0]["rules"][0][
        "finding_details"]
