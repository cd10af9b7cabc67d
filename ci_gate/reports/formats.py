"""The report formats, as data: one `ReportFormat` per file `ci-gate gate` can write.

Everything that offers the formats loops over `FORMATS`: `write_reports`, the `gate` command's
flags (and so the CI_GATE_* variables and `.ci-gate.yaml` keys), the CI outputs `publish` writes
(`<id>-file`), and the adapters' inputs are checked against it (tests/adapters/test_formats.py).
Adding a format is one module with a render function and one line in `FORMATS`
(docs/architecture.md shows the diff).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_gate.model import Analysis, Evaluation


class ReportTargets(Mapping[str, Path]):
    """Which report files to write: format id -> path, for the formats asked for only (in `FORMATS` order).

    Built with keywords, `ReportTargets(json=..., gitlab_report=...)` (a `_` stands for the `-` of an
    id), or from a mapping of ids. `template` is not a format: it replaces the built-in Markdown
    comment template (`--template`)."""

    __slots__ = ("_paths", "template")

    def __init__(self, paths: Mapping[str, Path | str | None] | None = None, /, *,
                 template: Path | None = None, **by_format: Path | str | None) -> None:
        given = {**(paths or {}), **{name.replace("_", "-"): path for name, path in by_format.items()}}
        unknown = sorted(set(given) - set(FORMATS_BY_ID))
        if unknown:
            raise TypeError(f"unknown report format(s) {unknown}; formats: {', '.join(FORMATS_BY_ID)}")
        self._paths = {spec.id: Path(given[spec.id]) for spec in FORMATS  # type: ignore[arg-type]
                       if given.get(spec.id) not in (None, "")}
        self.template = template

    def __getitem__(self, format_id: str) -> Path:
        return self._paths[format_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ReportTargets) and self._paths == other._paths
                and self.template == other.template)

    def __hash__(self) -> int:
        return hash((tuple(self._paths.items()), self.template))

    def __repr__(self) -> str:
        return f"ReportTargets({self._paths!r}, template={self.template!r})"


Render = Callable[[Evaluation, Analysis, ReportTargets], str]
"""A format's renderer: the file's whole text, from the evaluation, the analysis and the targets
(which carry the --template)."""


@dataclass(frozen=True)
class ReportFormat:
    id: str
    """The format's name: the flag without `--`, the `.ci-gate.yaml` key, and the CI output `<id>-file`."""
    help: str
    """The flag's help (also the adapters' input description)."""
    render: Render

    @property
    def flag(self) -> str:
        """The `gate` flag; the variable and the `.ci-gate.yaml` key come from `ci_gate.cli.settings`."""
        return f"--{self.id}"


def json_text(render: Callable[[Evaluation, Analysis], Any]) -> Render:
    """A renderer that returns a JSON document, as the file's text (indented, UTF-8, final newline)."""

    def text(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> str:
        return json.dumps(render(evaluation, analysis), indent=2, ensure_ascii=False) + "\n"

    return text


# Each renderer's module is imported when its format is written, not when the formats are listed:
# the `gate` flags read FORMATS on every run, and a run that writes no report (or only one) must not
# load jinja2, the HTML template and every other renderer (start-up, docs/architecture.md).


def _evaluation_json(evaluation: Evaluation, analysis: Analysis) -> Any:
    from ci_gate.reports.evaluation_json import render_evaluation_json

    return render_evaluation_json(evaluation, analysis)


def _junit(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> str:
    from ci_gate.reports.junit import render_junit

    return render_junit(evaluation, analysis)


def _sarif(evaluation: Evaluation, analysis: Analysis) -> Any:
    from ci_gate.reports.sarif import render_sarif

    return render_sarif(evaluation, analysis)


def _container_scanning(evaluation: Evaluation, analysis: Analysis) -> Any:
    from ci_gate.reports.gitlab import render_container_scanning

    return render_container_scanning(evaluation, analysis)


def _codequality(evaluation: Evaluation, analysis: Analysis) -> Any:
    from ci_gate.reports.codequality import render_codequality

    return render_codequality(evaluation, analysis)


def _markdown(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> str:
    from ci_gate.reports.markdown import render_markdown

    return render_markdown(evaluation, analysis, "comment", targets.template)


def _compliance(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> str:
    from ci_gate.reports.markdown import render_markdown

    return render_markdown(evaluation, analysis, "compliance")


def _html(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> str:
    from ci_gate.reports.html import render_html

    return render_html(evaluation, analysis)


FORMATS: tuple[ReportFormat, ...] = (
    ReportFormat("json", "The evaluation JSON (Anchore v2 shaped).", json_text(_evaluation_json)),
    ReportFormat("junit", "JUnit XML (GitLab, Jenkins test tabs).", _junit),
    ReportFormat("sarif", "SARIF 2.1.0 (GitHub code scanning).", json_text(_sarif)),
    ReportFormat("gitlab-report", "GitLab container scanning report.", json_text(_container_scanning)),
    ReportFormat("codequality", "GitLab Code Quality report.", json_text(_codequality)),
    ReportFormat("markdown", "The Markdown comment, with fixes.", _markdown),
    ReportFormat("compliance", "The compliance report (DISA / CIS item, status, evidence, fix).", _compliance),
    ReportFormat("html", "One self-contained HTML page: verdict, fixes, vulnerabilities, compliance, layers.", _html),
)
"""Every report format, in the order they are written and listed."""

FORMATS_BY_ID: dict[str, ReportFormat] = {spec.id: spec for spec in FORMATS}
