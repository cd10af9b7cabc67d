"""A finding keeps its fingerprint across rebuilds, so a GitHub or GitLab dismissal survives.

Guards the mutation that adds the line number or the message to the fingerprint: every dismissal
would reset after a Dockerfile edit (lines move) or a database refresh (messages change). The tag
and the digest of a rebuild must not count either. A different finding must still differ.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from ci_gate.model import Analysis, Evaluation
from ci_gate.reports.codequality import render_codequality
from ci_gate.reports.common import finding_fingerprint
from ci_gate.reports.gitlab import render_container_scanning
from ci_gate.reports.sarif import render_sarif
from tests.reports.report_samples import sample_analysis, sample_evaluation


def _fingerprints(evaluation: Evaluation, analysis: Analysis) -> dict[str, Any]:
    sarif = render_sarif(evaluation, analysis)["runs"][0]["results"]
    return {
        "core": sorted(finding_fingerprint(evaluation, analysis, f) for f in evaluation.findings),
        "sarif": sorted(r["partialFingerprints"]["primaryLocationLineHash"] for r in sarif),
        "codequality": sorted(i["fingerprint"] for i in render_codequality(evaluation, analysis)),
        "gitlab": sorted(v["id"] for v in render_container_scanning(evaluation, analysis)["vulnerabilities"]),
    }


def _lines_moved(evaluation: Evaluation, analysis: Analysis) -> tuple[Evaluation, Analysis]:
    findings = tuple(replace(f, dockerfile_line=f.dockerfile_line + 7) if f.dockerfile_line is not None else f
                     for f in evaluation.findings)
    instructions = tuple(replace(i, line=i.line + 7, end_line=i.end_line + 7 if i.end_line else 0)
                         for i in analysis.dockerfile.instructions)
    return (replace(evaluation, findings=findings),
            replace(analysis, dockerfile=replace(analysis.dockerfile, instructions=instructions)))


def _messages_changed(evaluation: Evaluation, analysis: Analysis) -> tuple[Evaluation, Analysis]:
    findings = tuple(
        replace(f, message=f.message + " (text refreshed by the feed)",
                vulnerability=replace(f.vulnerability, summary="a reworded advisory summary")
                if f.vulnerability is not None else None)
        for f in evaluation.findings)
    return replace(evaluation, findings=findings), analysis


REBUILD_TAG = "registry.example.com/team/app:1.5.0"
REBUILD_DIGEST = "sha256:" + "99" * 32

VARIANTS = {
    "lines moved": lambda: _lines_moved(sample_evaluation(), sample_analysis()),
    "messages changed": lambda: _messages_changed(sample_evaluation(), sample_analysis()),
    "new tag": lambda: (sample_evaluation(tag=REBUILD_TAG), sample_analysis(tag=REBUILD_TAG)),
    "new digest": lambda: (sample_evaluation(digest=REBUILD_DIGEST), sample_analysis(digest=REBUILD_DIGEST)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_fingerprints_survive_a_rebuild(variant: str) -> None:
    baseline = _fingerprints(sample_evaluation(), sample_analysis())
    assert all(baseline.values()), baseline  # every format has findings to compare
    evaluation, analysis = VARIANTS[variant]()
    if variant == "lines moved":
        assert any(f.dockerfile_line for f in evaluation.findings)
    assert _fingerprints(evaluation, analysis) == baseline


def test_a_different_finding_gets_a_different_fingerprint() -> None:
    evaluation, analysis = sample_evaluation(), sample_analysis()
    baseline = _fingerprints(evaluation, analysis)
    first = evaluation.findings[0]
    changed = replace(evaluation, findings=(replace(first, trigger_id=first.trigger_id + "-other"),
                                            *evaluation.findings[1:]))
    after = _fingerprints(changed, analysis)
    assert after["core"] != baseline["core"] and after["sarif"] != baseline["sarif"]
    other_repository = "registry.example.com/team/worker:1.4.2"
    elsewhere = _fingerprints(sample_evaluation(tag=other_repository), sample_analysis(tag=other_repository))
    assert not set(elsewhere["core"]) & set(baseline["core"])
