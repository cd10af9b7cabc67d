"""The evaluation JSON: Anchore Enterprise v2's `PolicyEvaluation` shape plus ci-gate's fields.

Keys Anchore defines keep Anchore's names and meanings (`PolicyEvaluation` in Anchore Enterprise's
OpenAPI spec, anchore/enterprise-client-go pkg/anchore-api-swagger-main.yaml), so tooling
written for `GET /v2/images/{digest}/check` reads this file unchanged. ci-gate's additions are
extra keys: per finding `controls`, `path`, `layer_index`, `origin`, `dockerfile_line`,
`effective_action`, `vulnerability`, `allowlist_match.reason/approved_by/expires_on`; per
evaluation a `ci_gate` object (policy name, backend, warnings, expired exceptions, rules checked).
Secrets never appear: messages go through the reports' redaction.
"""

from __future__ import annotations

from typing import Any

from ci_gate.model import Analysis, Evaluation, Finding, to_dict


def _message(analysis: Analysis, finding: Finding) -> str:
    """Anchore's message (byte for byte where it holds no secret): the field Anchore tooling reads."""
    try:
        from ci_gate.reports.common import finding_message
    except ImportError:  # the reports package is another stage's work; the message is already redacted
        return finding.message
    return finding_message(analysis, finding)


def _finding(analysis: Analysis, finding: Finding) -> dict[str, Any]:
    from ci_gate.reports.advice import recommendation

    allowlisted = finding.allowlisted
    return {
        "trigger_id": finding.trigger_id,
        "gate": finding.gate,
        "trigger": finding.trigger,
        "message": _message(analysis, finding),
        "action": finding.action.lower(),
        "policy_id": finding.rule_set_id,
        "rule_id": finding.rule_id,
        "recommendation": recommendation(finding, analysis),
        "allowlisted": allowlisted is not None,
        "allowlist_match": None if allowlisted is None else {
            "id": allowlisted.allowlist_id,
            "name": allowlisted.allowlist_name,
            "matched_rule_id": allowlisted.item_id,
            "reason": allowlisted.reason,
            "approved_by": allowlisted.approved_by,
            "expires_on": allowlisted.expires_on,
        },
        "inherited_from_base": finding.origin == "base",
        "effective_action": finding.effective_action.lower(),
        "controls": list(finding.controls),
        "path": finding.path,
        "layer_index": finding.layer_index,
        "origin": finding.origin,
        "dockerfile_line": finding.dockerfile_line,
        "vulnerability": to_dict(finding.vulnerability) if finding.vulnerability else None,
    }


def _rules(evaluation: Evaluation, analysis: Analysis) -> list[dict[str, Any]]:
    """Every rule checked, with `checked: false` and the reason for one that could not check anything."""
    from ci_gate.reports.advice_table import rule_advice
    from ci_gate.reports.unchecked import unchecked_rules

    unchecked = unchecked_rules(evaluation, analysis)
    rules = []
    for rule in evaluation.rules:
        item = to_dict(rule)
        item["recommendation"] = rule_advice(rule.gate, rule.trigger, rule.recommendation)
        item["checked"] = rule.rule_id not in unchecked
        item["not_checked_reason"] = unchecked.get(rule.rule_id, "")
        rules.append(item)
    return rules


def _problem(warning: str) -> dict[str, str]:
    return {"severity": "warn", "problem_type": "PolicyEvaluationWarning", "details": warning}


def render_evaluation_json(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    """The evaluation document (a JSON-ready dict)."""
    denied = evaluation.final_action_reason == "denylisted"
    allowed = evaluation.final_action_reason == "allowlisted"
    image_rule = {"name": evaluation.matched_image_rule} if evaluation.matched_image_rule else None
    findings = [_finding(analysis, f) for f in evaluation.findings]
    status = "fail" if evaluation.final_action.upper() == "STOP" else "pass"
    return {
        "policy_id": evaluation.policy_id,
        "image_digest": evaluation.image_digest,
        "evaluated_tag": evaluation.tag,
        "evaluations": [{
            "evaluation_time": evaluation.evaluated_at,
            "status": status,
            "final_action": evaluation.final_action.lower(),
            "final_action_reason": evaluation.final_action_reason,
            "image_allowlisted": allowed,
            "matched_allowlisted_images_rule": image_rule if allowed else None,
            "image_denylisted": denied,
            "matched_denylisted_images_rule": image_rule if denied else None,
            "image_mapped_to_rule": evaluation.matched_mapping is not None,
            "matched_mapping_rule": {"name": evaluation.matched_mapping} if evaluation.matched_mapping else None,
            "number_of_findings": len(findings),
            "evaluation_problems": [_problem(w) for w in evaluation.warnings],
            "comparison_image_digest": None,
            "details": {
                "policy_action": (evaluation.policy_action or evaluation.final_action).lower(),
                "remediations": [],
                "findings": findings,
            },
        }],
        "ci_gate": {
            "policy_name": evaluation.policy_name,
            "backend": evaluation.backend,
            "image": analysis.identity.reference,
            "config_digest": analysis.identity.config_digest,
            "warnings": list(evaluation.warnings),
            "expired_exceptions": [to_dict(e) for e in evaluation.expired_exceptions],
            "rules": _rules(evaluation, analysis),
        },
    }
