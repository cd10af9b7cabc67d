"""JUnit XML: the test tab of GitLab, Jenkins and every CI that reads test reports.

One test suite per policy gate. One test case per fired finding — a STOP is a failure, a WARN
passes with its message in system-out, an allowlisted finding is skipped with the exception's
reason — and one passing case per rule that found nothing, so the tab shows what was checked and
"0 tests" never means "the gate did not run" (trivy#1510). A first suite holds the image's final
decision. Names are unique per classname (GitLab keeps only the first of duplicates), and the
report stays well inside GitLab's limits (30 MB per file, parser complexity): texts are truncated
and the number of cases is capped, with a last case saying how many were left out.
"""

from __future__ import annotations

from collections import defaultdict

from junit_xml import TestCase, TestSuite, to_xml_report_string

from ci_gate.model import Analysis, Evaluation, Finding, RuleOutcome
from ci_gate.reports.advice import recommendation
from ci_gate.reports.advice_table import rule_advice
from ci_gate.reports.common import (
    TOOL_NAME,
    counts,
    dockerfile_uri,
    expired_for,
    finding_fingerprint,
    finding_text,
    finding_title,
    image_display_name,
    image_slug,
    is_secret,
    trigger_label,
    truncate,
    worst_first,
)
from ci_gate.reports.issues import category_counts, issues
from ci_gate.reports.unchecked import unchecked_rules

MAX_CASES = 20_000
"""Cases per report: far below GitLab.com's 500,000, and below the ~250,000-object parser limit of
self-managed GitLab (gitlab-org/gitlab#507482) even with failure and system-out elements."""
MAX_TEXT = 4_000
"""Characters per message or output text; keeps 20,000 cases well under GitLab's 30 MB per file."""


def render_junit(evaluation: Evaluation, analysis: Analysis) -> str:
    """The JUnit XML document (a `<testsuites>` root) for one image's evaluation."""
    image = image_display_name(evaluation, analysis)
    prefix = f"{TOOL_NAME}.{image_slug(evaluation, analysis)}"
    dockerfile = dockerfile_uri(analysis)
    properties = {
        "image": image,
        "image_digest": evaluation.image_digest,
        "policy": f"{evaluation.policy_name} ({evaluation.policy_id})",
        "final_action": evaluation.final_action,
    }
    names = _UniqueNames()
    suites: list[TestSuite] = [_decision_suite(evaluation, analysis, prefix, properties, names)]

    fired_by_gate: dict[str, list[Finding]] = defaultdict(list)
    for finding in worst_first(evaluation.findings):
        fired_by_gate[finding.gate].append(finding)
    unchecked = unchecked_rules(evaluation, analysis)
    quiet_by_gate: dict[str, list[RuleOutcome]] = defaultdict(list)
    for rule in evaluation.rules:
        if rule.fired == 0:
            quiet_by_gate[rule.gate].append(rule)

    budget = MAX_CASES - 1  # the decision case
    left_out = 0
    for gate in sorted(set(fired_by_gate) | set(quiet_by_gate)):
        classname = f"{prefix}.{gate}"
        cases: list[TestCase] = []
        for finding in fired_by_gate.get(gate, []):
            if budget <= 0:
                left_out += 1
                continue
            cases.append(_finding_case(evaluation, analysis, finding, classname, names, dockerfile))
            budget -= 1
        for rule in quiet_by_gate.get(gate, []):
            if budget <= 0:
                left_out += 1
                continue
            cases.append(_quiet_rule_case(rule, classname, names, unchecked.get(rule.rule_id, "")))
            budget -= 1
        if cases:
            suites.append(
                TestSuite(
                    f"{TOOL_NAME}: {gate}",
                    cases,
                    properties=properties,
                    timestamp=evaluation.evaluated_at or None,
                )
            )
    from ci_gate.stig.report import junit_suites

    suites.extend(junit_suites(evaluation, analysis, prefix, evaluation.evaluated_at or None))
    if left_out:
        note = TestCase(names.take(prefix, f"{left_out} more results not listed"), classname=prefix)
        note.stdout = (
            f"This report lists the first {MAX_CASES} results, worst first; {left_out} more are in "
            "the JSON report (--json)."
        )
        suites[0].test_cases.append(note)
    return str(to_xml_report_string(suites, prettyprint=True, encoding="utf-8"))


def _decision_suite(
    evaluation: Evaluation, analysis: Analysis, prefix: str, properties: dict[str, str], names: _UniqueNames
) -> TestSuite:
    image = image_display_name(evaluation, analysis)
    tally = counts(evaluation)
    case = TestCase(names.take(prefix, "final action"), classname=prefix)
    summary = (
        f"image: {image}\ndigest: {evaluation.image_digest}\npolicy: {evaluation.policy_name} "
        f"({evaluation.policy_id})\nfinal action: {evaluation.final_action} "
        f"({evaluation.final_action_reason})\nfindings: {tally.stop} STOP, {tally.warn} WARN, "
        f"{tally.allowlisted} allowlisted, {tally.expired} expired exceptions"
    )
    if evaluation.final_action.upper() == "STOP":
        found = issues([f for f in evaluation.findings if f.effective_action.upper() in ("STOP", "WARN")], analysis)
        stops = [issue for issue in found if issue.action == "STOP"]
        verdict = (f"policy STOP for {image}: {len(stops)} finding{'s' if len(stops) != 1 else ''} must be fixed "
                   f"before this image can be pushed ({category_counts(stops)})")
        case.add_failure_info(message=verdict, output=summary, failure_type="policy-stop")
    else:
        case.stdout = summary
    cases = [case]
    for expired in evaluation.expired_exceptions:
        expired_case = TestCase(
            names.take(prefix, f"exception expired: {expired.gate} {expired.trigger_id}"), classname=prefix
        )
        expired_case.add_failure_info(
            message=truncate(
                f"exception {expired.allowlist_id}/{expired.item_id} expired on {expired.expires_on}",
                MAX_TEXT,
            ),
            output=truncate(
                f"reason: {expired.reason or '-'}\napproved by: {expired.approved_by or '-'}\n"
                "the exception no longer applies: renew it or fix the finding",
                MAX_TEXT,
            ),
            failure_type="expired-exception",
        )
        cases.append(expired_case)
    return TestSuite(
        f"{TOOL_NAME}: decision", cases, properties=properties, timestamp=evaluation.evaluated_at or None
    )


def _finding_case(
    evaluation: Evaluation,
    analysis: Analysis,
    finding: Finding,
    classname: str,
    names: _UniqueNames,
    dockerfile: str | None,
) -> TestCase:
    if finding.vulnerability is not None:
        subject = finding_title(finding)
    elif is_secret(finding):
        subject = finding.path or "secret"
    else:
        subject = trigger_label(finding) or truncate(finding_text(analysis, finding), 120, "…")
    title = f"{finding.trigger}: {subject}"
    case = TestCase(
        names.take(
            classname,
            truncate(title, 250),
            disambiguator=finding.rule_id or finding_fingerprint(evaluation, analysis, finding)[:12],
        ),
        classname=classname,
        file=dockerfile if dockerfile and finding.dockerfile_line else None,
        line=finding.dockerfile_line if dockerfile else None,
    )
    text = finding_text(analysis, finding)
    advice = recommendation(finding, analysis)
    details = [
        text,
        f"how to fix: {advice}",
        f"rule: {finding.rule_id or '-'}  gate: {finding.gate}  trigger: {finding.trigger}",
    ]
    if finding.path:
        details.append(
            f"path: {finding.path}"
            + (f" (layer {finding.layer_index}, {finding.origin})" if finding.layer_index is not None else "")
        )
    if finding.vulnerability is not None:
        vulnerability = finding.vulnerability
        details.append(
            f"severity: {vulnerability.severity}"
            + (f"  cvss: {vulnerability.cvss_score}" if vulnerability.cvss_score is not None else "")
        )
        if vulnerability.fixed_versions:
            details.append("fixed in: " + ", ".join(vulnerability.fixed_versions))
        if vulnerability.url:
            details.append(vulnerability.url)
    if finding.controls:
        details.append("controls: " + ", ".join(finding.controls))
    expired = expired_for(evaluation, finding)
    if expired is not None and not finding.allowlisted:
        details.append(
            f"an exception for this expired on {expired.expires_on} ({expired.allowlist_id}/"
            f"{expired.item_id})"
        )
    output = truncate("\n".join(details), MAX_TEXT)
    action = finding.effective_action.upper()
    if finding.allowlisted is not None:
        match = finding.allowlisted
        reason = f"allowlisted by {match.allowlist_id}/{match.item_id}: {match.reason or 'no reason given'}"
        if match.approved_by:
            reason += f"; approved by {match.approved_by}"
        if match.expires_on:
            reason += f"; expires {match.expires_on}"
        case.add_skipped_info(message=truncate(reason, MAX_TEXT), output=output)
    elif action == "STOP":
        case.add_failure_info(
            message=truncate(f"STOP: {text}. How to fix: {advice}", MAX_TEXT), output=output,
            failure_type="policy-stop",
        )
    else:
        case.stdout = truncate(f"{action}: ", MAX_TEXT) + output
    return case


def _quiet_rule_case(rule: RuleOutcome, classname: str, names: _UniqueNames, not_checked: str = "") -> TestCase:
    """A rule that found nothing passes; one that could not check anything is skipped with the reason
    (a pass would claim a check that never happened)."""
    if not_checked:
        case = TestCase(
            names.take(classname, f"{rule.trigger}: not checked", disambiguator=rule.rule_id), classname=classname
        )
        case.add_skipped_info(
            message=truncate(f"not checked: {not_checked}", MAX_TEXT),
            output=truncate(
                f"rule {rule.rule_id or '-'} ({rule.action}) {rule.gate}/{rule.trigger} could not check this image: "
                f"{not_checked}",
                MAX_TEXT,
            ),
        )
        return case
    case = TestCase(
        names.take(classname, f"{rule.trigger}: no findings", disambiguator=rule.rule_id), classname=classname
    )
    lines = [f"rule {rule.rule_id or '-'} ({rule.action}) checked {rule.gate}/{rule.trigger}: nothing found"]
    if rule.params:
        lines.append("params: " + ", ".join(f"{key}={value}" for key, value in sorted(rule.params.items())))
    if rule.description:
        lines.append(rule.description)
    lines.append("if it fires: " + rule_advice(rule.gate, rule.trigger, rule.recommendation))
    if rule.controls:
        lines.append("controls: " + ", ".join(rule.controls))
    case.stdout = truncate("\n".join(lines), MAX_TEXT)
    return case


class _UniqueNames:
    """Hands out test-case names unique within their classname, deterministically."""

    def __init__(self) -> None:
        self._used: set[tuple[str, str]] = set()

    def take(self, classname: str, name: str, disambiguator: str = "") -> str:
        candidate = name
        if (classname, candidate) in self._used and disambiguator:
            candidate = f"{name} [{disambiguator}]"
        number = 2
        base = candidate
        while (classname, candidate) in self._used:
            candidate = f"{base} #{number}"
            number += 1
        self._used.add((classname, candidate))
        return candidate
