"""The container-level checklist: each rule of `builtin:dod` (DoD Container Image Creation and
Deployment Guide section 2, Iron Bank hardening) as one checklist item, with its status from the
policy evaluation of the image, so an assessor reviews the container-level controls in STIG Viewer
or STIG Manager next to the operating-system STIG.

Status of an item (a policy rule):
- Open: the rule fired and the finding is in force, or is covered by an exception (the exception,
  its reason and expiry are in FINDING_DETAILS: an accepted risk is still a finding);
- NotAFinding: the rule was checked and found nothing;
- Not_Reviewed: the rule could not check anything (no Dockerfile, no vulnerability data, no STIG
  evaluation recorded...), with the reason; never a pass it did not earn.

The guide assigns no DISA severity categories: every item is `medium` (CAT II, STIG Viewer's
default) and the pack's action (STOP/WARN) is in the discussion.
"""

from __future__ import annotations

import re

from ci_gate import __version__
from ci_gate.model import Analysis, Evaluation, Finding, RuleOutcome
from ci_gate.stig.model import StigEvaluation, StigRule

DOD_POLICY = "builtin:dod"
BENCHMARK_ID = "Container_Image_Creation_and_Deployment_Guide"
BENCHMARK_TITLE = ("DoD Container Image Creation and Deployment Guide section 2 and Container Hardening Process "
                   "Guide (Iron Bank): container-level controls of ci-gate builtin:dod")
GUIDE_VERSION = "V2R0.6"
"""The guide release the pack's rules cite (its header)."""
_CCI = re.compile(r"^CCI-\d+$")
_GUIDE_ITEM = re.compile(r"^DISA-CIDG\s+\S+$")


def _evidence(findings: list[Finding], analysis: Analysis) -> str:
    from ci_gate.reports.common import finding_text

    lines = []
    for finding in findings[:20]:
        line = f"{finding.effective_action}: {finding_text(analysis, finding)}"
        match = finding.allowlisted
        if match is not None:
            line += (f" (exception {match.allowlist_id}/{match.item_id}: {match.reason or 'no reason given'}"
                     f"{'; approved by ' + match.approved_by if match.approved_by else ''}"
                     f"{'; expires ' + match.expires_on if match.expires_on else ''})")
        lines.append(line)
    if len(findings) > 20:
        lines.append(f"... and {len(findings) - 20} more findings (see the gate's JSON report)")
    return "\n".join(lines)


def _item(rule: RuleOutcome, findings: list[Finding], not_checked: str, analysis: Analysis) -> StigRule:
    from ci_gate.reports.advice_table import rule_advice

    if findings:
        result = "fail"
        evidence = _evidence(findings, analysis)
    elif not_checked:
        result = "notchecked"
        evidence = f"ci-gate could not check this rule: {not_checked}"
    else:
        result = "pass"
        evidence = f"ci-gate checked {rule.gate}/{rule.trigger} on the image and found nothing"
    guide = next((control for control in rule.controls if _GUIDE_ITEM.match(control)), "")
    return StigRule(
        rule_id=rule.rule_id, title=rule.description or f"{rule.gate}/{rule.trigger}", result=result,
        severity="medium", stig_rule_ver=guide or rule.rule_id,
        ccis=tuple(control for control in rule.controls if _CCI.match(control)),
        description=rule.description,
        rationale=(f"Policy rule {rule.rule_id} ({rule.gate}/{rule.trigger}, action {rule.action}); controls: "
                   f"{', '.join(rule.controls) or '-'}"),
        check_ref=f"{rule.gate}/{rule.trigger}", evidence=evidence,
        fix_text=rule_advice(rule.gate, rule.trigger, rule.recommendation))


def dod_checklist_evaluation(evaluation: Evaluation, analysis: Analysis, image: str) -> StigEvaluation:
    """The policy evaluation of `builtin:dod` as a checklist-shaped evaluation (one item per rule)."""
    from ci_gate.reports.unchecked import unchecked_rules

    unchecked = unchecked_rules(evaluation, analysis)
    by_rule: dict[str, list[Finding]] = {}
    for finding in evaluation.findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    rules = [_item(rule, by_rule.get(rule.rule_id, []), unchecked.get(rule.rule_id, ""), analysis)
             for rule in evaluation.rules]
    return StigEvaluation(
        image=image, image_digest=evaluation.image_digest, datastream=DOD_POLICY, benchmark_id=BENCHMARK_ID,
        benchmark_title=BENCHMARK_TITLE, benchmark_version=GUIDE_VERSION, profile_id=evaluation.policy_id,
        profile_title=f"ci-gate {DOD_POLICY} ({evaluation.policy_name or evaluation.policy_id})",
        scanner=f"ci-gate {__version__} policy {DOD_POLICY}", rules=rules, warnings=list(evaluation.warnings))
