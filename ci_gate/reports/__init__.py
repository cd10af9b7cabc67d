"""Report formats: each a pure function of (Evaluation, Analysis) in its own module.

`write_reports` renders the formats the user asked for and writes each through the one output
writer (`ci_gate.fileio`): a regular file is replaced atomically, so a CI system never picks up half
a report; a device, FIFO or link is written through, never replaced.

| target        | module              | function                      |
|---------------|---------------------|-------------------------------|
| json          | evaluation_json     | render_evaluation_json        |
| junit         | junit               | render_junit                  |
| sarif         | sarif               | render_sarif                  |
| gitlab_report | gitlab              | render_container_scanning     |
| codequality   | codequality         | render_codequality            |
| markdown      | markdown            | render_markdown(kind=comment) |
| compliance    | markdown            | render_markdown(kind=compliance) |
| html          | html                | render_html                   |
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci_gate.fileio import write_output
from ci_gate.model import Analysis, Evaluation, to_dict
from ci_gate.reports.common import finding_text

if TYPE_CHECKING:
    from ci_gate.gate import ReportTargets

__all__ = ["render_json", "write_reports"]


def render_json(evaluation: Evaluation, analysis: Analysis) -> Any:
    """The evaluation JSON: the policy engine's Anchore-shaped document when it is available."""
    # Imported by name: the policy engine owns that module and it may not exist in every checkout.
    try:
        module = importlib.import_module("ci_gate.reports.evaluation_json")
    except ModuleNotFoundError as error:
        if error.name != "ci_gate.reports.evaluation_json":
            raise
        document = to_dict(evaluation)
        for item, finding in zip(document["findings"], evaluation.findings, strict=True):
            item["message"] = finding_text(analysis, finding)  # never a secret, also in this fallback
        return {"evaluation": document, "image": to_dict(analysis.identity)}
    return module.render_evaluation_json(evaluation, analysis)


def _json_text(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_reports(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> list[Path]:
    """Render and write every report in `targets` (`ci_gate.fileio`); return the paths written, in order."""
    from ci_gate.reports.codequality import render_codequality
    from ci_gate.reports.gitlab import render_container_scanning
    from ci_gate.reports.html import render_html
    from ci_gate.reports.junit import render_junit
    from ci_gate.reports.markdown import render_markdown
    from ci_gate.reports.sarif import render_sarif

    renderers: list[tuple[Path | None, Callable[[], str]]] = [
        (targets.json, lambda: _json_text(render_json(evaluation, analysis))),
        (targets.junit, lambda: render_junit(evaluation, analysis)),
        (targets.sarif, lambda: _json_text(render_sarif(evaluation, analysis))),
        (targets.gitlab_report, lambda: _json_text(render_container_scanning(evaluation, analysis))),
        (targets.codequality, lambda: _json_text(render_codequality(evaluation, analysis))),
        (targets.markdown, lambda: render_markdown(evaluation, analysis, "comment", targets.template)),
        (targets.compliance, lambda: render_markdown(evaluation, analysis, "compliance")),
        (targets.html, lambda: render_html(evaluation, analysis)),
    ]
    written = []
    for path, render in renderers:
        if path is None:
            continue
        write_output(Path(path), render())
        written.append(Path(path))
    return written

