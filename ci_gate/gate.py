"""The gate core: run a backend, write the reports, publish, decide the exit code.

The CLI builds a `GateOptions` and calls `run_gate`; CI adapters call the CLI. Nothing here parses
flags or prints tables: `run_gate` returns a `GateResult` that the CLI renders.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ci_gate.errors import PublishError, UsageError
from ci_gate.fileio import write_output
from ci_gate.model import Analysis, Evaluation
from ci_gate.sources.interface import SourceOptions

if TYPE_CHECKING:
    from ci_gate.backends.interface import AnchoreOptions, Backend

EXIT_PASS = 0
EXIT_STOP = 1
EXIT_ERROR = 2


@dataclass(frozen=True)
class ReportTargets:
    """Which report files to write; None = not asked for."""

    json: Path | None = None
    junit: Path | None = None
    sarif: Path | None = None
    gitlab_report: Path | None = None
    codequality: Path | None = None
    markdown: Path | None = None
    compliance: Path | None = None
    template: Path | None = None
    """A jinja2 template that replaces the built-in markdown template."""
    html: Path | None = None


@dataclass(frozen=True)
class GateOptions:
    image: str
    policy: str = "builtin:default"
    dockerfile: Path | None = None
    tag: str | None = None
    """The tag policies map on; default: the image's own tag, else the reference."""
    backend: str = "local"
    vuln_db: Path | None = None
    fail_on: str = "stop"
    """stop, warn or never."""
    on_error: str = "fail"
    """fail or pass: what exit code an error (could not decide) gives."""
    comment: str = "off"
    """auto, github, gitlab or off."""
    reports: ReportTargets = field(default_factory=ReportTargets)
    source: SourceOptions = field(default_factory=SourceOptions)
    use_cache: bool = True
    base_image: str | None = None
    vex: tuple[Path, ...] = ()
    """OpenVEX / CycloneDX VEX documents whose statements suppress vulnerability matches."""
    secret_rules: Path | None = None
    anchore: AnchoreOptions | None = None
    """Connection settings for `--backend anchore` (None: all from the environment)."""


@dataclass(frozen=True)
class GateResult:
    analysis: Analysis
    evaluation: Evaluation
    written: tuple[Path, ...] = ()
    exit_code: int = EXIT_PASS
    notes: tuple[str, ...] = ()
    """Warnings for the user (e.g. a comment that fell back to the job summary)."""


def exit_code_for(final_action: str, fail_on: str) -> int:
    """The verdict's exit code: 0 GO/WARN, 1 STOP (or WARN with --fail-on warn); never with --fail-on never."""
    action = final_action.upper()
    if fail_on == "never":
        return EXIT_PASS
    if action == "STOP" or (action == "WARN" and fail_on == "warn"):
        return EXIT_STOP
    return EXIT_PASS


def _backend(name: str) -> Backend:
    if name == "local":
        from ci_gate.backends.local import LocalBackend

        return LocalBackend()
    if name == "anchore":
        try:
            module = importlib.import_module("ci_gate.backends.anchore")
        except ModuleNotFoundError as error:
            if error.name != "ci_gate.backends.anchore":
                raise
            raise UsageError(
                "the anchore backend is not available in this ci-gate build; use --backend local"
            ) from None
        backend: Backend = module.AnchoreBackend()
        return backend
    raise UsageError(f"unknown backend {name!r}; use local or anchore")


def _write_reports(result_evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> list[Path]:
    """The report formats module when it exists; otherwise only the evaluation JSON, written here."""
    reports = importlib.import_module("ci_gate.reports")
    write_reports = getattr(reports, "write_reports", None)
    if write_reports is not None:
        written: list[Path] = write_reports(result_evaluation, analysis, targets)
        return written
    if targets.json is None:
        return []
    from ci_gate.reports.evaluation_json import render_evaluation_json

    document = render_evaluation_json(result_evaluation, analysis)
    write_output(Path(targets.json), json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return [Path(targets.json)]


def _publish(evaluation: Evaluation, analysis: Analysis, mode: str, targets: ReportTargets) -> list[str]:
    """Comment and CI summaries via `ci_gate.publish` when it exists; its problems come back as notes.

    Called whatever the mode: `off` posts no comment, but the publisher still writes the CI's own
    summary and outputs (GitHub step summary, CI_GATE_OUTPUT)."""
    try:
        module = importlib.import_module("ci_gate.publish")
    except ModuleNotFoundError as error:
        if error.name != "ci_gate.publish":
            raise
        module = None
    publish_comment = getattr(module, "publish_comment", None)
    if publish_comment is None:
        if mode == "off":
            return []
        return [f"--comment {mode}: publishing is not available in this ci-gate build; no comment posted"]
    markdown = None
    if targets.template is not None:
        from ci_gate.reports.markdown import render_markdown

        markdown = render_markdown(evaluation, analysis, "comment", targets.template)
    try:
        notes: list[str] = publish_comment(evaluation, analysis, mode, markdown, targets)
    except PublishError as error:
        return [f"comment not published: {error}"]
    return notes


def run_gate(options: GateOptions, progress: bool = False) -> GateResult:
    """Run the backend, write the reports, publish, and decide the exit code.

    Errors (bad input, unreachable backend) propagate as CiGateError; the CLI applies --on-error.
    """
    if options.fail_on not in ("stop", "warn", "never"):
        raise UsageError(f"--fail-on {options.fail_on!r}: use stop, warn or never")
    if options.on_error not in ("fail", "pass"):
        raise UsageError(f"--on-error {options.on_error!r}: use fail or pass")
    from ci_gate.backends.interface import BackendRequest

    backend = _backend(options.backend)
    request = BackendRequest(
        image=options.image, policy=options.policy, tag=options.tag, dockerfile=options.dockerfile,
        base_image=options.base_image, vuln_db=options.vuln_db, source=options.source, use_cache=options.use_cache,
        vex=options.vex, secret_rules=options.secret_rules, anchore=options.anchore,
    )
    outcome = backend.run(request, progress=progress)
    written = _write_reports(outcome.evaluation, outcome.analysis, options.reports)
    notes = _publish(outcome.evaluation, outcome.analysis, options.comment, options.reports)
    return GateResult(
        analysis=outcome.analysis,
        evaluation=outcome.evaluation,
        written=tuple(written),
        exit_code=exit_code_for(outcome.evaluation.final_action, options.fail_on),
        notes=tuple(notes),
    )
