"""What a STIG/SCAP evaluation of an image produced: one `StigRule` per selected rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

CATEGORY_BY_SEVERITY = {"high": "CAT I", "medium": "CAT II", "low": "CAT III"}
"""DISA's severity categories for XCCDF severities (the STIG Viewer mapping)."""

CKL_STATUS = {"pass": "NotAFinding", "fail": "Open", "notapplicable": "Not_Applicable"}
"""XCCDF results STIG Viewer has a status for; everything else (notchecked, error, unknown,
informational) is Not_Reviewed: an automated scan did not decide it."""

DECIDED_RESULTS = frozenset({"pass", "fail", "notapplicable"})

PROFILE_PREFIX = "xccdf_org.ssgproject.content_profile_"
"""SCAP Security Guide's profile ids are this prefix and the short name (stig, standard, ...)."""


@dataclass(frozen=True, slots=True)
class StigRule:
    rule_id: str
    """The XCCDF rule id, e.g. xccdf_org.ssgproject.content_rule_file_permissions_etc_shadow."""
    title: str
    result: str
    """The XCCDF result: pass, fail, notapplicable, notchecked, error, unknown, informational."""
    severity: str
    """XCCDF severity: high, medium, low or unknown."""
    vuln_id: str = ""
    """DISA Vuln_Num (V-257911), from the SV- reference; empty when the content has none."""
    sv_rule_id: str = ""
    """DISA Rule_ID (SV-257911r991589_rule)."""
    stig_rule_ver: str = ""
    """The STIG's Rule_Ver / STIG ID (RHEL-09-232155)."""
    ccis: tuple[str, ...] = ()
    srgs: tuple[str, ...] = ()
    description: str = ""
    rationale: str = ""
    check_ref: str = ""
    """The check that decided the rule (OVAL definition id)."""
    evidence: str = ""
    fix_text: str = ""
    """How to fix it, from the content: the rule's fixtext, else its description (SSG writes the fix there)."""
    fix_script: str = ""
    """The content's shell remediation (urn:xccdf:fix:script:sh), when it has one."""

    @property
    def category(self) -> str:
        return CATEGORY_BY_SEVERITY.get(self.severity, "CAT II" if self.severity == "unknown" else "")

    @property
    def ckl_status(self) -> str:
        return CKL_STATUS.get(self.result, "Not_Reviewed")

    @property
    def short_id(self) -> str:
        return self.rule_id.removeprefix("xccdf_org.ssgproject.content_rule_")


@dataclass(slots=True)
class StigEvaluation:
    image: str
    image_digest: str
    datastream: str
    benchmark_id: str
    benchmark_title: str
    benchmark_version: str
    profile_id: str
    profile_title: str
    scanner: str
    """e.g. OpenSCAP 1.3.7."""
    rules: list[StigRule] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for rule in self.rules:
            totals[rule.result] = totals.get(rule.result, 0) + 1
        return dict(sorted(totals.items()))

    def open_by_category(self) -> dict[str, int]:
        totals = {"CAT I": 0, "CAT II": 0, "CAT III": 0}
        for rule in self.rules:
            if rule.result == "fail" and rule.category in totals:
                totals[rule.category] += 1
        return totals

    @property
    def platform_matched(self) -> bool:
        """False when the content's platform check excluded every rule (content for another distro)."""
        return any(rule.result != "notapplicable" for rule in self.rules)

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["counts"] = self.counts()
        document["open_by_category"] = self.open_by_category()
        for rule, source in zip(document["rules"], self.rules, strict=True):
            rule["category"] = source.category
            rule["ckl_status"] = source.ckl_status
        return document
