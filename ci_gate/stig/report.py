"""STIG results for the gate's reports: the evaluations a policy's `stig` rules read, summarised.

The reports (compliance, MR comment / job summary, JUnit, SARIF) call these functions; they own no
STIG logic. An evaluation is shown only when the evaluated policy has a `stig` rule, so the
reports of a policy without one never change with what happens to be recorded for a digest.
Every text from the image or the content goes through `ci_gate.redaction` (evidence can quote
image files).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from ci_gate.model import Analysis, Evaluation, Finding
from ci_gate.redaction import redact_text
from ci_gate.stig.model import PROFILE_PREFIX, StigEvaluation, StigRule

MAX_FIX = 1500
"""Characters of fix text per rule in a report (the checklist carries the whole text)."""


@dataclass(frozen=True, slots=True)
class OpenRuleView:
    """One open (failed) STIG rule as reports list it."""

    rule: str
    """The SSG rule name (package_telnet-server_removed)."""
    title: str
    category: str
    vuln_id: str
    sv_rule_id: str
    stig_rule_ver: str
    ccis: tuple[str, ...]
    fix: str
    evidence: str
    stopped: bool
    """A STOP finding of the policy (not allowlisted) covers this rule."""
    allowlisted: bool

    @property
    def disa_ids(self) -> str:
        return ", ".join(part for part in (self.vuln_id, self.stig_rule_ver, self.sv_rule_id) if part)


@dataclass(frozen=True, slots=True)
class StigSummary:
    """One recorded evaluation (image digest + profile) for the reports."""

    profile: str
    profile_title: str
    benchmark: str
    scanner: str
    counts: dict[str, int]
    open_by_category: dict[str, int]
    open_rules: tuple[OpenRuleView, ...]
    not_reviewed: int
    """Rules the scan did not decide (notchecked, error, unknown...): Not_Reviewed in the checklist."""
    warnings: tuple[str, ...]

    @property
    def line(self) -> str:
        cats = self.open_by_category
        done = ", ".join(f"{count} {result}" for result, count in self.counts.items())
        return (f"STIG {self.profile_title or self.profile} ({self.benchmark}; {self.scanner}): open "
                f"{cats['CAT I']} CAT I, {cats['CAT II']} CAT II, {cats['CAT III']} CAT III; {done}")


def _digest(analysis: Analysis, evaluation: Evaluation) -> str:
    identity = analysis.identity
    return identity.manifest_digest or identity.config_digest or evaluation.image_digest or ""


def _short_profile(profile: str) -> str:
    return profile.removeprefix(PROFILE_PREFIX)


def _recorded(digest: str, profile: str) -> tuple[StigEvaluation, ...]:
    """The recorded evaluations, parsed once per process while their files do not change (every
    report of a gate run, and each of its stig findings, reads them)."""
    from ci_gate.stig.evaluate import digest_index_dir

    directory = digest_index_dir(digest)
    try:
        stamp = tuple(sorted((path.name, path.stat().st_mtime_ns) for path in directory.glob("*.json")))
    except OSError:
        stamp = ()
    return _load(digest, profile, stamp)


@functools.lru_cache(maxsize=16)
def _load(digest: str, profile: str, stamp: tuple[tuple[str, int], ...]) -> tuple[StigEvaluation, ...]:
    from ci_gate.stig.evaluate import evaluations_for_digest

    return tuple(evaluations_for_digest(digest, profile))


def recorded_evaluations(evaluation: Evaluation, analysis: Analysis) -> list[StigEvaluation]:
    """The STIG evaluations the policy's `stig` rules read for this image (empty without such a rule)."""
    profiles = {str(rule.params.get("profile", "") or "") for rule in evaluation.rules if rule.gate == "stig"}
    digest = _digest(analysis, evaluation)
    if not profiles or not digest:
        return []
    wanted = [""] if "" in profiles else sorted(profiles)
    found: dict[str, StigEvaluation] = {}
    for profile in wanted:
        for recorded in _recorded(digest, profile):
            found.setdefault(recorded.profile_id, recorded)
    return [found[key] for key in sorted(found)]


def _fix(rule: StigRule) -> str:
    text = redact_text(rule.fix_text or rule.description).strip()
    return text if len(text) <= MAX_FIX else text[:MAX_FIX - 1] + "…"


def _finding_key(profile: str, rule: StigRule) -> str:
    return f"stig+{_short_profile(profile)}+{rule.short_id}"


def summaries(evaluation: Evaluation, analysis: Analysis) -> list[StigSummary]:
    """One summary per recorded evaluation the policy reads; open rules CAT I first."""
    findings = {finding.trigger_id: finding for finding in evaluation.findings if finding.gate == "stig"}
    result = []
    order = {"CAT I": 0, "CAT II": 1, "CAT III": 2}
    for recorded in recorded_evaluations(evaluation, analysis):
        views = []
        for rule in recorded.rules:
            if rule.result != "fail":
                continue
            finding = findings.get(_finding_key(recorded.profile_id, rule))
            views.append(OpenRuleView(
                rule=rule.short_id, title=rule.title, category=rule.category or "CAT II", vuln_id=rule.vuln_id,
                sv_rule_id=rule.sv_rule_id, stig_rule_ver=rule.stig_rule_ver, ccis=rule.ccis, fix=_fix(rule),
                evidence=redact_text(rule.evidence)[:600],
                stopped=finding is not None and finding.effective_action.upper() == "STOP",
                allowlisted=finding is not None and finding.allowlisted is not None))
        views.sort(key=lambda view: (order.get(view.category, 1), view.rule))
        result.append(StigSummary(
            profile=_short_profile(recorded.profile_id), profile_title=recorded.profile_title,
            benchmark=f"{recorded.benchmark_id.removeprefix('xccdf_org.ssgproject.content_benchmark_')} "
                      f"{recorded.benchmark_version}",
            scanner=recorded.scanner, counts=recorded.counts(), open_by_category=recorded.open_by_category(),
            open_rules=tuple(views),
            not_reviewed=sum(1 for rule in recorded.rules if rule.ckl_status == "Not_Reviewed"),
            warnings=tuple(redact_text(warning) for warning in recorded.warnings)))
    return result


def rule_for_finding(finding: Finding, analysis: Analysis) -> StigRule | None:
    """The STIG rule behind a `stig`/`rule_failed` finding (its trigger id is stig+PROFILE+RULE)."""
    if finding.gate != "stig" or finding.trigger != "rule_failed":
        return None
    parts = finding.trigger_id.split("+", 2)
    identity = analysis.identity
    digest = identity.manifest_digest or identity.config_digest or ""
    if len(parts) != 3 or not digest:
        return None
    for recorded in _recorded(digest, parts[1]):
        for rule in recorded.rules:
            if rule.short_id == parts[2]:
                return rule
    return None


def recommendation(finding: Finding, analysis: Analysis) -> str:
    """The content's fix text for a stig finding (empty when the rule cannot be found)."""
    rule = rule_for_finding(finding, analysis)
    if rule is None:
        return ""
    fix = _fix(rule)
    ids = ", ".join(part for part in (rule.vuln_id, rule.stig_rule_ver) if part)
    return (f"Fix from the STIG content for {rule.short_id}{' (' + ids + ')' if ids else ''}: {fix}" if fix else "")


def sarif_result_properties(finding: Finding, analysis: Analysis) -> dict[str, Any]:
    """DISA ids, CCIs and category of a stig finding, for its SARIF result's property bag."""
    rule = rule_for_finding(finding, analysis)
    if rule is None:
        return {}
    return {"stig": {"rule": rule.short_id, "category": rule.category, "vulnId": rule.vuln_id,
                     "ruleId": rule.sv_rule_id, "ruleVersion": rule.stig_rule_ver, "ccis": list(rule.ccis)}}


def sarif_run_properties(evaluation: Evaluation, analysis: Analysis) -> list[dict[str, Any]]:
    """Per profile: counts, open rules per category, and each open rule with its DISA ids and CCIs."""
    return [{"profile": summary.profile, "benchmark": summary.benchmark, "scanner": summary.scanner,
             "counts": summary.counts, "openByCategory": summary.open_by_category,
             "notReviewed": summary.not_reviewed,
             "openRules": [{"rule": view.rule, "category": view.category, "vulnId": view.vuln_id,
                            "ruleId": view.sv_rule_id, "ruleVersion": view.stig_rule_ver, "ccis": list(view.ccis),
                            "fix": view.fix} for view in summary.open_rules]}
            for summary in summaries(evaluation, analysis)]


def junit_suites(evaluation: Evaluation, analysis: Analysis, prefix: str, timestamp: str | None) -> list[Any]:
    """One suite per recorded profile: a summary case with the counts, and a passing case per open
    rule the policy does not stop on, with its DISA ids, CCIs, evidence and fix in the output. The
    rules the policy stops on are the failing cases of the gate's own `stig` suite already: listing
    them twice would double the failures of the test tab."""
    from junit_xml import TestCase, TestSuite

    suites = []
    for summary in summaries(evaluation, analysis):
        classname = f"{prefix}.stig.{summary.profile}"
        overview = TestCase(f"STIG {summary.profile}: results", classname=classname)
        stopped = [view.rule for view in summary.open_rules if view.stopped]
        overview.stdout = summary.line + (f"\nthe policy stops on {len(stopped)} of the open rules (failing cases "
                                          f"of the stig gate): {', '.join(stopped)}" if stopped else "")
        cases = [overview]
        for view in summary.open_rules:
            if view.stopped:
                continue
            case = TestCase(f"{view.category} {view.rule}"[:250], classname=classname)
            case.stdout = (("open, covered by an exception" if view.allowlisted else
                            "open; the policy does not stop on it") +
                           f"\n{view.title}\nDISA: {view.disa_ids or '-'}\nCCI: {', '.join(view.ccis) or '-'}\n"
                           f"evidence: {view.evidence}\nfix: {view.fix}")
            cases.append(case)
        suites.append(TestSuite(f"ci-gate: STIG {summary.profile}", cases, timestamp=timestamp,
                                properties={"profile": summary.profile, "benchmark": summary.benchmark,
                                            **{f"open {cat}": str(n) for cat, n in summary.open_by_category.items()}}))
    return suites
