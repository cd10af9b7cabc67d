"""STIG Viewer checklists: `.ckl` (STIG Viewer 2, XML) and `.cklb` (STIG Viewer 3, JSON).

Element order and status values follow DISA's checklist format as STIG Viewer and STIG Manager
read it (docs/stig.md): ASSET children in DISA's order with ROLE and HOST_NAME, STIG_INFO with
`stigid`, and each VULN's STIG_DATA attributes in DISA's order, then STATUS, FINDING_DETAILS,
COMMENTS, SEVERITY_OVERRIDE, SEVERITY_JUSTIFICATION.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from ci_gate import __version__
from ci_gate.stig.model import StigEvaluation, StigRule

ASSET_ORDER = ("ROLE", "ASSET_TYPE", "MARKING", "HOST_NAME", "HOST_IP", "HOST_MAC", "HOST_FQDN",
               "TARGET_COMMENT", "TECH_AREA", "TARGET_KEY", "WEB_OR_DATABASE", "WEB_DB_SITE",
               "WEB_DB_INSTANCE")
STIG_DATA_ORDER = ("Vuln_Num", "Severity", "Group_Title", "Rule_ID", "Rule_Ver", "Rule_Title", "Vuln_Discuss",
                   "IA_Controls", "Check_Content", "Fix_Text", "False_Positives", "False_Negatives",
                   "Documentable", "Mitigations", "Potential_Impact", "Third_Party_Tools", "Mitigation_Control",
                   "Responsibility", "Security_Override_Guidance", "Check_Content_Ref", "Weight", "Class",
                   "STIGRef", "TargetKey", "STIG_UUID")
CKL_STATUSES = frozenset({"NotAFinding", "Open", "Not_Applicable", "Not_Reviewed"})
CKLB_STATUS = {"NotAFinding": "not_a_finding", "Open": "open", "Not_Applicable": "not_applicable",
               "Not_Reviewed": "not_reviewed"}
_NAMESPACE = uuid.UUID("6f1b2a4e-8c1d-4e0b-9a57-3c2f5d7e9b10")
"""Fixed namespace: the same image and rule give the same checklist UUIDs on every run."""


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One checklist entry: a DISA rule, decided by one or more SSG rules (SSG splits some DISA rules)."""

    rule: StigRule
    """The first SSG rule: titles, texts and DISA ids come from it."""
    members: tuple[StigRule, ...]

    @property
    def status(self) -> str:
        statuses = {member.ckl_status for member in self.members}
        if "Open" in statuses:
            return "Open"
        if "Not_Reviewed" in statuses:
            return "Not_Reviewed"
        if statuses == {"Not_Applicable"}:
            return "Not_Applicable"
        return "NotAFinding"

    @property
    def finding_details(self) -> str:
        lines = []
        for member in self.members:
            line = f"{member.short_id}: {member.evidence}"
            if member.ckl_status == "Not_Reviewed":
                line += (f". Not decided by the automated scan (result {member.result}): review manually")
            lines.append(line)
        return "\n".join(lines)


MAX_RULE_ID = 45
"""STIG Manager stores at most 45 characters of a Rule_ID (and truncates longer ones on import)."""


def checklist_rule_id(rule: StigRule) -> str:
    """DISA's Rule_ID (SV-…_rule), else the SSG rule's short name, kept unique within 45 characters."""
    if rule.sv_rule_id:
        return rule.sv_rule_id
    if len(rule.short_id) <= MAX_RULE_ID:
        return rule.short_id
    digest = hashlib.sha256(rule.rule_id.encode()).hexdigest()[:8]
    return f"{rule.short_id[:MAX_RULE_ID - 9]}_{digest}"


def checklist_items(evaluation: StigEvaluation) -> list[ChecklistItem]:
    """The evaluation's rules grouped by DISA Rule_ID (the SSG rule's name when the content has none)."""
    groups: dict[str, list[StigRule]] = {}
    for rule in evaluation.rules:
        groups.setdefault(checklist_rule_id(rule), []).append(rule)
    return [ChecklistItem(members[0], tuple(members)) for members in groups.values()]


def host_name(evaluation: StigEvaluation) -> str:
    """The checklist's asset name: the image reference (STIG Manager needs one)."""
    return evaluation.image[:255] or "container-image"


def stig_id(evaluation: StigEvaluation) -> str:
    return evaluation.benchmark_id.removeprefix("xccdf_org.ssgproject.content_benchmark_") + "_" + \
        evaluation.profile_id.removeprefix("xccdf_org.ssgproject.content_profile_")


def _comment(evaluation: StigEvaluation) -> str:
    return (f"Automated result from ci-gate {__version__} with {evaluation.scanner}, "
            f"{evaluation.benchmark_id} {evaluation.benchmark_version}, profile {evaluation.profile_id}; "
            f"image {evaluation.image} digest {evaluation.image_digest or 'unknown'}.")


def _vuln_num(rule: StigRule) -> str:
    return rule.vuln_id or rule.short_id


def _rule_uuid(evaluation: StigEvaluation, rule: StigRule) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{evaluation.benchmark_id}/{evaluation.profile_id}/{rule.rule_id}"))


def _stig_uuid(evaluation: StigEvaluation) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{evaluation.benchmark_id}/{evaluation.profile_id}"))


def _release_info(evaluation: StigEvaluation) -> str:
    return f"Release: {evaluation.benchmark_version} Benchmark Date: unknown"


def _stig_data(evaluation: StigEvaluation, item: ChecklistItem) -> list[tuple[str, str]]:
    rule = item.rule
    ccis = sorted({cci for member in item.members for cci in member.ccis})
    values = {
        "Vuln_Num": _vuln_num(rule),
        "Severity": rule.severity if rule.severity in ("high", "medium", "low") else "medium",
        "Group_Title": rule.srgs[0] if rule.srgs else rule.title,
        "Rule_ID": checklist_rule_id(rule),
        "Rule_Ver": rule.stig_rule_ver or rule.short_id,
        "Rule_Title": rule.title,
        "Vuln_Discuss": rule.rationale,
        "Check_Content": f"Automated check {rule.check_ref}" if rule.check_ref else "",
        "Fix_Text": rule.fix_text or rule.description,
        "Documentable": "false",
        "Check_Content_Ref": rule.check_ref or "M",
        "Weight": "10.0",
        "Class": "Unclass",
        "STIGRef": f"{evaluation.profile_title or evaluation.profile_id} :: {evaluation.benchmark_version}",
        "STIG_UUID": _stig_uuid(evaluation),
    }
    data = [(name, values.get(name, "")) for name in STIG_DATA_ORDER]
    data.extend(("CCI_REF", cci) for cci in ccis)
    return data


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(parent: ET.Element, tag: str, value: str) -> None:
    """A child element with `value` as text, minus characters XML 1.0 cannot carry (from image files)."""
    ET.SubElement(parent, tag).text = _NOT_XML.sub("\ufffd", value)


def render_ckl(evaluation: StigEvaluation) -> bytes:
    checklist = ET.Element("CHECKLIST")
    asset = ET.SubElement(checklist, "ASSET")
    asset_values = {"ROLE": "None", "ASSET_TYPE": "Computing", "HOST_NAME": host_name(evaluation),
                    "TARGET_COMMENT": _comment(evaluation), "TECH_AREA": "", "WEB_OR_DATABASE": "false"}
    for name in ASSET_ORDER:
        _text(asset, name, asset_values.get(name, ""))
    stigs = ET.SubElement(checklist, "STIGS")
    istig = ET.SubElement(stigs, "iSTIG")
    info = ET.SubElement(istig, "STIG_INFO")
    for name, value in (
        ("version", evaluation.benchmark_version), ("classification", "UNCLASSIFIED"), ("customname", ""),
        ("stigid", stig_id(evaluation)), ("description", evaluation.benchmark_title),
        ("filename", evaluation.datastream.rsplit("/", 1)[-1]), ("releaseinfo", _release_info(evaluation)),
        ("title", evaluation.profile_title or evaluation.benchmark_title), ("uuid", _stig_uuid(evaluation)),
        ("notice", ""), ("source", evaluation.scanner),
    ):
        si_data = ET.SubElement(info, "SI_DATA")
        _text(si_data, "SID_NAME", name)
        if value:
            _text(si_data, "SID_DATA", value)
    comment = _comment(evaluation)
    for item in checklist_items(evaluation):
        vuln = ET.SubElement(istig, "VULN")
        for attribute, value in _stig_data(evaluation, item):
            stig_data = ET.SubElement(vuln, "STIG_DATA")
            _text(stig_data, "VULN_ATTRIBUTE", attribute)
            _text(stig_data, "ATTRIBUTE_DATA", value)
        _text(vuln, "STATUS", item.status)
        _text(vuln, "FINDING_DETAILS", item.finding_details)
        _text(vuln, "COMMENTS", comment)
        _text(vuln, "SEVERITY_OVERRIDE", "")
        _text(vuln, "SEVERITY_JUSTIFICATION", "")
    ET.indent(checklist, space="\t")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n<!--DISA STIG Viewer :: 2.17-->\n' + \
        ET.tostring(checklist, encoding="utf-8", xml_declaration=False) + b"\n"


def render_cklb(evaluation: StigEvaluation) -> bytes:
    stig_uuid = _stig_uuid(evaluation)
    comment = _comment(evaluation)
    rules: list[dict[str, Any]] = []
    for item in checklist_items(evaluation):
        rule = item.rule
        group_title = rule.srgs[0] if rule.srgs else rule.title
        rules.append({
            "uuid": _rule_uuid(evaluation, rule), "stig_uuid": stig_uuid,
            "group_id": _vuln_num(rule), "group_id_src": _vuln_num(rule),
            "rule_id": checklist_rule_id(rule).removesuffix("_rule"),
            "rule_id_src": checklist_rule_id(rule),
            "rule_version": rule.stig_rule_ver or rule.short_id,
            "group_title": group_title, "rule_title": rule.title,
            "severity": rule.severity if rule.severity in ("high", "medium", "low") else "medium",
            "weight": "10.0", "classification": "Unclassified",
            "discussion": rule.rationale,
            "check_content": f"Automated check {rule.check_ref}" if rule.check_ref else "",
            "check_content_ref": {"href": evaluation.datastream.rsplit("/", 1)[-1], "name": rule.check_ref or "M"},
            "fix_text": rule.fix_text or rule.description, "legacy_ids": [],
            "ccis": sorted({cci for member in item.members for cci in member.ccis}),
            "group_tree": [{"id": _vuln_num(rule), "title": group_title,
                            "description": "<GroupDescription></GroupDescription>"}],
            "false_positives": "", "false_negatives": "", "documentable": "false", "mitigations": "",
            "potential_impacts": "", "third_party_tools": "", "mitigation_control": "", "responsibility": "",
            "security_override_guidance": "", "ia_controls": "", "reference_identifier": "",
            "status": CKLB_STATUS[item.status], "overrides": {}, "comments": comment,
            "finding_details": item.finding_details,
        })
    document = {
        "title": f"{stig_id(evaluation)} - {host_name(evaluation)}",
        "id": str(uuid.uuid5(_NAMESPACE, f"{evaluation.image_digest}/{stig_uuid}")),
        "active": False, "mode": 1, "has_path": True, "cklb_version": "1.0",
        "target_data": {
            "target_type": "Computing", "host_name": host_name(evaluation), "ip_address": "", "mac_address": "",
            "fqdn": "", "comments": comment, "role": "None", "is_web_database": False, "technology_area": "",
            "web_db_site": "", "web_db_instance": "", "classification": None,
        },
        "stigs": [{
            "stig_name": evaluation.profile_title or evaluation.benchmark_title,
            "display_name": evaluation.profile_title or evaluation.benchmark_title,
            "stig_id": stig_id(evaluation), "release_info": _release_info(evaluation),
            "version": evaluation.benchmark_version, "uuid": stig_uuid,
            "reference_identifier": "", "size": len(rules), "rules": rules,
        }],
    }
    return (json.dumps(document, indent=2) + "\n").encode()
