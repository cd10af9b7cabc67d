"""The gate core: run a backend, write the reports, publish, decide the exit code.

The CLI builds a `GateOptions` and calls `run_gate`; CI adapters call the CLI. Nothing here parses
flags or prints tables: `run_gate` returns a `GateResult` that the CLI renders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ci_gate.model import Analysis, Evaluation
from ci_gate.sources.interface import SourceOptions

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


@dataclass(frozen=True)
class GateResult:
    analysis: Analysis
    evaluation: Evaluation
    written: tuple[Path, ...] = ()
    exit_code: int = EXIT_PASS
    notes: tuple[str, ...] = ()
    """Warnings for the user (e.g. a comment that fell back to the job summary)."""


def exit_code_for(final_action: str, fail_on: str) -> int:
    """DESIGN.md's exit codes: 0 GO/WARN, 1 STOP (or WARN with --fail-on warn); never with --fail-on never."""
    action = final_action.upper()
    if fail_on == "never":
        return EXIT_PASS
    if action == "STOP" or (action == "WARN" and fail_on == "warn"):
        return EXIT_STOP
    return EXIT_PASS
