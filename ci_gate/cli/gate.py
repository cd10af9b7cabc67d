"""`ci-gate gate IMAGE ...`: settings from flags, CI_GATE_* variables and .ci-gate.yaml; a clear verdict.

The settings are declared once, in `ci_gate.cli.settings` (precedence: flag, variable, file, default).
The command only parses, calls `gate.run_gate` and prints.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import typer

from ci_gate.backends.interface import AnchoreOptions
from ci_gate.cli.options import interactive_output, show_progress, source_options
from ci_gate.cli.settings import load_config_file, resolve, with_settings
from ci_gate.errors import CiGateError, UsageError
from ci_gate.gate import EXIT_PASS, GateOptions, GateResult, OnError
from ci_gate.reports.formats import FORMATS, ReportTargets

__all__ = ["build_options", "load_config_file", "register", "render_plain", "render_rich", "resolve"]


def _path(value: Any) -> Path | None:
    return Path(str(value)) if value not in (None, "") else None


def build_options(settings: Mapping[str, Any]) -> GateOptions:
    if not settings.get("image"):
        raise UsageError("no image given: pass IMAGE, set CI_GATE_IMAGE, or put image: in .ci-gate.yaml")
    insecure = settings.get("insecure-registry")
    return GateOptions(
        image=str(settings["image"]),
        policy=str(settings["policy"]),
        dockerfile=_path(settings["dockerfile"]),
        tag=settings["tag"] or None,
        backend=str(settings["backend"]),
        vuln_db=_path(settings["vuln-db"]),
        fail_on=settings["fail-on"],
        on_error=settings["on-error"],
        comment=settings["comment"],
        reports=ReportTargets({spec.id: _path(settings[spec.id]) for spec in FORMATS},
                              template=_path(settings["template"])),
        source=source_options(settings.get("platform"), list(insecure) if insecure else None,
                              _path(settings.get("ca-bundle")), image=str(settings["image"])),
        use_cache=not bool(settings["no-cache"]),
        base_image=settings["base-image"] or None,
        vex=tuple(Path(str(item)) for item in settings.get("vex") or ()),
        secret_rules=_path(settings.get("secret-rules")),
        anchore=_anchore_options(settings),
    )


def _seconds(settings: Mapping[str, Any], name: str) -> float | None:
    value = settings.get(name)
    if value in (None, ""):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{name} {value!r} is not a number of seconds") from None
    if not seconds > 0 or seconds == math.inf:  # nan and inf too: a deadline of nan never comes
        raise UsageError(f"{name} {value!r} must be a number of seconds more than 0")
    return seconds


def _anchore_options(settings: Mapping[str, Any]) -> AnchoreOptions:
    """The anchore backend's connection; the password only from --anchore-password or the environment
    (never .ci-gate.yaml, which is committed), and anything unset falls back to ANCHORE_*/ANCHORECTL_*."""
    def text(name: str) -> str | None:
        value = settings.get(name)
        return str(value) if value not in (None, "") else None

    return AnchoreOptions(
        url=text("anchore-url"), username=text("anchore-user"),
        password=text("anchore-password"),
        account=text("anchore-account"), policy_id=text("anchore-policy-id"),
        timeout=_seconds(settings, "timeout"), poll_interval=_seconds(settings, "poll-interval"),
        force=bool(settings.get("force")),
    )


# --- the terminal verdict --------------------------------------------------------------------------


def render_plain(result: GateResult, verbose: bool = False, policy: str = "") -> str:
    """Plain lines (CI logs, pipes); see `ci_gate.reports.terminal`."""
    from ci_gate.reports.terminal import render_plain as plain

    return plain(result, verbose=verbose, policy=policy)


def render_rich(result: GateResult, verbose: bool = False, policy: str = "") -> None:
    """Tables on a terminal; rich is imported only then."""
    from ci_gate.reports.terminal import render_rich as rich

    rich(result, verbose=verbose, policy=policy)


GATE_HELP = "\n".join((
    "Analyse IMAGE, evaluate the policy, write the reports, and end with the verdict: what must be fixed before "
    "the image can be pushed, and how.",
    "",
    "IMAGE is SCHEME:LOCATION (the schemes syft uses):",
    "  docker-archive:PATH  a `docker save` archive       e.g. docker-archive:app.tar",
    "  oci-archive:PATH     an OCI archive                e.g. oci-archive:app-oci.tar",
    "  oci-dir:PATH         an OCI image layout           e.g. oci-dir:build/oci",
    "  dir:PATH             a root filesystem             e.g. dir:rootfs",
    "  registry:REF         a registry, no daemon needed  e.g. registry:ghcr.io/acme/app:1.4",
    "  docker:REF           the local Docker daemon       e.g. docker:acme/app:1.4",
    "  sbom:PATH            an SBOM (syft/CycloneDX/SPDX) e.g. sbom:app.cdx.json",
    "A bare path is detected; a bare reference tries the Docker daemon, then the registry.",
    "",
    "Example: ci-gate gate oci-dir:build/oci --policy builtin:dod --dockerfile Dockerfile --sarif ci-gate.sarif",
))

GATE_EPILOG = ("Exit codes: 0 the image may be pushed (GO or WARN), 1 policy STOP (or WARN with --fail-on warn), "
               "2 ci-gate could not decide. Every option can also be set as CI_GATE_<OPTION> or in .ci-gate.yaml.")


def gate(flags: dict[str, Any]) -> None:
    on_error_value = flags.get("on-error") or os.environ.get("CI_GATE_ON_ERROR") or OnError.FAIL
    try:
        settings = resolve(flags, os.environ, load_config_file(Path.cwd()))
        on_error_value = settings["on-error"]
        options = build_options(settings)
        from ci_gate.cli.watch import gate_with_history

        result = gate_with_history(options, settings.get("compare-to"), settings.get("save-sbom"),
                                   progress=show_progress())
    except CiGateError as error:
        if on_error_value != OnError.PASS:
            raise
        typer.echo(f"ci-gate: error: {error}", err=True)
        typer.echo("ci-gate: WARNING: the gate could NOT decide, and --on-error pass lets the build continue "
                   "unchecked", err=True)
        raise typer.Exit(EXIT_PASS) from None
    show_all = bool(settings.get("verbose"))
    if interactive_output():
        render_rich(result, verbose=show_all, policy=options.policy)
    else:
        typer.echo(render_plain(result, verbose=show_all, policy=options.policy), nl=False)
    raise typer.Exit(result.exit_code)


def register(app: typer.Typer) -> None:
    """Add the `gate` command to the root app (ci_gate.cli.COMMANDS)."""
    app.command("gate", help=GATE_HELP, epilog=GATE_EPILOG)(with_settings(gate))
