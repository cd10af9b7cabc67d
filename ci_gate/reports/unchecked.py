"""Rules that could not check anything (no vulnerability data, no base image, no Dockerfile), with
the reason: a report lists them as not checked, never as passed."""

from __future__ import annotations

import re

from ci_gate.model import Analysis, Evaluation, RuleOutcome
from ci_gate.policy.gates import registry
from ci_gate.reports.advice import from_scratch

_RULE_WARNING = re.compile(r"^rule '([^']+)'")


def unchecked_rules(evaluation: Evaluation, analysis: Analysis) -> dict[str, str]:
    """rule id → why the rule could not check anything (it did not fire, but that proves nothing)."""
    reasons: dict[str, str] = {}
    for warning in evaluation.warnings:
        match = _RULE_WARNING.match(warning)
        if match and ("not evaluated" in warning or "skipped" in warning):
            reasons[match.group(1)] = warning[match.end():].lstrip(": ").strip()
    no_vulnerability_data = next(
        (w for w in evaluation.warnings if w.startswith("vulnerabilities were not checked")), ""
    )
    data_unavailable = any(
        f.gate == "vulnerabilities" and f.trigger == "vulnerability_data_unavailable" for f in evaluation.findings
    )
    for rule in evaluation.rules:
        if rule.rule_id in reasons or rule.fired:
            continue
        reason = _unchecked_reason(rule, analysis, no_vulnerability_data, data_unavailable)
        if reason:
            reasons[rule.rule_id] = reason
    return reasons


def _unchecked_reason(rule: RuleOutcome, analysis: Analysis, no_data: str, data_unavailable: bool) -> str:
    key = (rule.gate, rule.trigger)
    if key in (("vulnerabilities", "package"), ("vulnerabilities", "denylist")):
        if no_data:
            return "no vulnerability data: " + no_data.split(": ", 1)[-1]
        if data_unavailable:
            return "no vulnerability data for the image's distribution (give --vuln-db)"
    if rule.gate == "ancestry" and rule.trigger != "no_ancestors_analyzed":
        if from_scratch(analysis):
            return "FROM scratch: no base image whose source could be checked"
        if not analysis.dockerfile.base_image.strip() and not any(layer.base for layer in analysis.identity.layers):
            return "the base image is unknown (give --dockerfile or --base-image)"
    if rule.gate == "dockerfile" and rule.trigger != "no_dockerfile_provided":
        actual_only = rule.params.get("actual_dockerfile_only", "false").strip().lower() == "true"
        if analysis.dockerfile.mode == "unknown" or (actual_only and analysis.dockerfile.mode != "actual"):
            return "no Dockerfile was given (--dockerfile), so its instructions could not be checked"
    no_passwd = "/etc/passwd" not in analysis.retrieved_files and not analysis.users
    if rule.gate == "passwd_file" and rule.trigger != "content_not_available" and no_passwd:
        return "the image has no /etc/passwd to check"
    if rule.gate in ("npms", "ruby_gems") and "feed" in rule.trigger:
        return "needs Anchore's package feeds, which ci-gate does not have"
    if key == ("malware", "scans"):
        return "no malware scanner ran (ci-gate has none; Anchore Enterprise runs one)"
    # A gate whose evidence lives outside the analysis (stig: recorded evaluations) says itself.
    gate = registry.gate(rule.gate)
    trigger = gate.trigger(rule.trigger) if gate is not None else None
    if trigger is not None and trigger.unchecked is not None:
        return trigger.unchecked(analysis, rule.params)
    return ""
