"""`ci-gate analyze` output: the analysis as JSON, an SBOM, or a table for people."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ci_gate.errors import UsageError
from ci_gate.fileio import STDOUT, binary_output, text_output, write_output
from ci_gate.model import Analysis, to_dict, write_json
from ci_gate.redaction import terminal_line

FORMATS = ("json", "cyclonedx-json", "spdx-json", "table")


def render_analysis_text(analysis: Analysis, output: str) -> str:
    if output == "json":
        # Compact: the C encoder only runs without indentation, and syft prints compact JSON too.
        return json.dumps(to_dict(analysis), separators=(",", ":")) + "\n"
    if output == "cyclonedx-json":
        from ci_gate.sbom.cyclonedx import render_cyclonedx

        return json.dumps(render_cyclonedx(analysis), indent=2) + "\n"
    if output == "spdx-json":
        from ci_gate.sbom.spdx import render_spdx

        return json.dumps(render_spdx(analysis), indent=2) + "\n"
    if output == "table":
        return render_table(analysis)
    raise UsageError(f"unknown output format {output!r}; choose one of: {', '.join(FORMATS)}")


def render_analysis(analysis: Analysis, output: str, file: Path | None) -> None:
    """Write the analysis to `file` (the one output writer: devices, FIFOs and links are safe), else stdout."""
    target: Path | str = file if file is not None else STDOUT
    if output == "json":
        # Streamed: the files list of a large image never exists as one string.
        from ci_gate.analyze.cache import copies_through, write_cached_json

        if copies_through(analysis):
            # A cache hit copies its stored file table: 100,000 records are never decoded or encoded.
            with binary_output(target) as raw:
                write_cached_json(analysis, raw)
                raw.write(b"\n")
            return
        with text_output(target) as out:
            write_json(analysis, out)
            out.write("\n")
        return
    write_output(target, render_analysis_text(analysis, output))


def render_table(analysis: Analysis) -> str:
    """A plain, aligned summary followed by the package list; fits a CI log as well as a terminal."""
    identity = analysis.identity
    lines = [
        f"Image      {identity.reference}",
        f"Digest     {identity.manifest_digest or '-'}",
        f"Image id   {identity.config_digest or '-'}",
        f"Tags       {', '.join(identity.repo_tags) or '-'}",
        f"Platform   {identity.platform or '-'}",
        f"Distro     {analysis.distro.pretty_name or analysis.distro.id if analysis.distro else '-'}",
        f"Layers     {len(identity.layers)} ({identity.total_size / 1e6:.1f} MB stored)",
        f"User       {analysis.config.user or '(root: no USER set)'}",
        f"Ports      {', '.join(analysis.config.exposed_ports) or '-'}",
        f"Files      {analysis.file_count}  setuid/setgid: {len(analysis.setuid_files)}  "
        f"world-writable: {len(analysis.world_writable_files)}",
        f"Users      {len(analysis.users)}  groups: {len(analysis.groups)}",
        f"Dockerfile {analysis.dockerfile.mode} ({len(analysis.dockerfile.instructions)} instructions)",
    ]
    counts = Counter(p.type for p in analysis.packages)
    summary = ", ".join(f"{count} {kind}" for kind, count in sorted(counts.items())) or "none"
    lines.append(f"Packages   {len(analysis.packages)} ({summary})")
    lines.append(f"Secrets    {len(analysis.secrets)}")
    for secret in analysis.secrets:
        where = f"{secret.path}:{secret.line}" if secret.line else secret.path
        layer = f" layer {secret.layer_index + 1}" if secret.layer_index is not None else ""
        deleted = " (deleted later, still shipped)" if secret.deleted else ""
        lines.append(f"  {secret.rule:<20} {where}{layer}{deleted}  {secret.preview}")
    for warning in analysis.warnings:
        lines.append(f"Warning    {warning}")
    if analysis.packages:
        width_name = min(40, max(len(p.name) for p in analysis.packages))
        width_version = min(30, max(len(p.version) for p in analysis.packages))
        lines.append("")
        lines.append(f"{'NAME':<{width_name}}  {'VERSION':<{width_version}}  {'TYPE':<13} ORIGIN")
        for package in analysis.packages:
            lines.append(f"{package.name:<{width_name}}  {package.version:<{width_version}}  "
                         f"{package.type:<13} {package.origin or '-'}")
    # Names, paths and warnings come from the image: no control character reaches the terminal.
    return "\n".join(terminal_line(line) for line in lines) + "\n"
