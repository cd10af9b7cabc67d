"""Report formats: each a pure function of (Evaluation, Analysis) in its own module.

`ci_gate.reports.formats.FORMATS` lists them (id, help, render). `write_reports` renders the formats
the user asked for and writes each through the one output writer (`ci_gate.fileio`): a regular
file is replaced atomically, so a CI system never picks up half a report; a device, FIFO or link
is written through, never replaced.
"""

from __future__ import annotations

from pathlib import Path

from ci_gate.fileio import write_output
from ci_gate.model import Analysis, Evaluation
from ci_gate.reports.formats import FORMATS, ReportTargets

__all__ = ["ReportTargets", "write_reports"]


def write_reports(evaluation: Evaluation, analysis: Analysis, targets: ReportTargets) -> list[Path]:
    """Render and write every report in `targets` (`ci_gate.fileio`); return the paths written, in order."""
    written = []
    for spec in FORMATS:
        path = targets.get(spec.id)
        if path is None:
            continue
        write_output(path, spec.render(evaluation, analysis, targets))
        written.append(path)
    return written
