"""The gate core: run a backend, write the reports, publish, decide the exit code.

The CLI builds a `GateOptions` and calls `run_gate`; CI adapters call the CLI. Nothing here parses
flags or prints tables: `run_gate` returns a `GateResult` that the CLI renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ci_gate.backends.interface import BackendRequest
from ci_gate.backends.registry import backend_named
from ci_gate.choices import Choice
from ci_gate.errors import EXIT_ERROR, EXIT_PASS, EXIT_STOP, PublishError
from ci_gate.model import Analysis, Evaluation
from ci_gate.publish import CommentMode, publish_comment
from ci_gate.reports import write_reports
from ci_gate.reports.formats import ReportTargets

__all__ = ["EXIT_ERROR", "EXIT_PASS", "EXIT_STOP", "FailOn", "GateOptions", "GateResult", "OnError",
           "ReportTargets", "exit_code_for", "run_gate"]


class FailOn(Choice):
    """`--fail-on`: which verdict fails the build."""

    STOP = "stop"
    WARN = "warn"
    NEVER = "never"


class OnError(Choice):
    """`--on-error`: what exit code "could not decide" gives."""

    FAIL = "fail"
    PASS = "pass"


@dataclass(frozen=True)
class GateOptions(BackendRequest):
    """What the backend decides on (the `BackendRequest` fields), which backend, and what to do with the verdict."""

    backend: str = "local"
    """A name in `ci_gate.backends.registry.BACKENDS`."""
    fail_on: FailOn = FailOn.STOP
    on_error: OnError = OnError.FAIL
    comment: CommentMode = CommentMode.OFF
    reports: ReportTargets = field(default_factory=ReportTargets)


@dataclass(frozen=True)
class GateResult:
    analysis: Analysis
    evaluation: Evaluation
    written: tuple[Path, ...] = ()
    exit_code: int = EXIT_PASS
    notes: tuple[str, ...] = ()
    """Warnings for the user (e.g. a comment that fell back to the job summary)."""


def exit_code_for(final_action: str, fail_on: FailOn | str) -> int:
    """The exit codes (docs/architecture.md): 0 GO/WARN, 1 STOP (or WARN with --fail-on warn); never 1
    with --fail-on never."""
    action = final_action.upper()
    if fail_on == FailOn.NEVER:
        return EXIT_PASS
    if action == "STOP" or (action == "WARN" and fail_on == FailOn.WARN):
        return EXIT_STOP
    return EXIT_PASS


def _publish(evaluation: Evaluation, analysis: Analysis, mode: CommentMode, targets: ReportTargets) -> list[str]:
    """Comment and CI summaries; the publisher's problems come back as notes.

    Called whatever the mode: `off` posts no comment, but the publisher still writes the CI's own
    summary and outputs (GitHub step summary, CI_GATE_OUTPUT)."""
    markdown = None
    if targets.template is not None:
        from ci_gate.reports.markdown import render_markdown  # jinja2: only for a --template

        markdown = render_markdown(evaluation, analysis, "comment", targets.template)
    try:
        return publish_comment(evaluation, analysis, mode, markdown, targets)
    except PublishError as error:
        return [f"comment not published: {error}"]


def run_gate(options: GateOptions, progress: bool = False) -> GateResult:
    """Run the backend, write the reports, publish, and decide the exit code.

    Errors (bad input, unreachable backend) propagate as CiGateError; the CLI applies --on-error.
    """
    backend = backend_named(options.backend)
    outcome = backend.run(options, progress=progress)
    written = write_reports(outcome.evaluation, outcome.analysis, options.reports)
    notes = _publish(outcome.evaluation, outcome.analysis, options.comment, options.reports)
    return GateResult(
        analysis=outcome.analysis,
        evaluation=outcome.evaluation,
        written=tuple(written),
        exit_code=exit_code_for(outcome.evaluation.final_action, options.fail_on),
        notes=tuple(notes),
    )
