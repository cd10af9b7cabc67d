"""`ci-gate stig`: evaluate an image against SCAP Security Guide / DISA STIG content, write checklists.

Parsing and printing only; the work is in `ci_gate.stig`. Exit codes as `gate`: 0 no open rule,
1 at least one open (failed) rule, 2 not evaluated (missing tools or content, a profile whose
platform does not match the image, bad input).
"""


import json
from pathlib import Path
from typing import Annotated

import typer

from ci_gate.cli.options import (
    CaBundleOption,
    InsecureOption,
    NoCacheOption,
    PlatformOption,
    check_outputs,
    source_options,
)
from ci_gate.errors import AnalysisError, UsageError


def register(app: typer.Typer) -> None:
    """Add the `stig` command to the root app."""

    @app.command()
    def stig(
        image: Annotated[str, typer.Argument(help="The image: SCHEME:LOCATION or a path/reference.")],
        profile: Annotated[str, typer.Option("--profile", help="auto (the DISA STIG profile for the image's "
                                             "distribution) or an XCCDF profile id / short name.")] = "auto",
        datastream: Annotated[Path | None, typer.Option("--datastream", help="SCAP source datastream to use "
                                                        "instead of the SSG content for the distribution.")] = None,
        ckl: Annotated[Path | None, typer.Option("--ckl", help="Write a STIG Viewer 2 checklist (.ckl).")] = None,
        cklb: Annotated[Path | None, typer.Option("--cklb", help="Write a STIG Viewer 3 checklist (.cklb).")] = None,
        json_report: Annotated[Path | None, typer.Option("--json", help="Write the results as JSON.")] = None,
        dod_ckl: Annotated[Path | None, typer.Option("--dod-ckl", help="Also evaluate builtin:dod and write its "
                                                     "container-level controls as a .ckl checklist.")] = None,
        dod_cklb: Annotated[Path | None, typer.Option("--dod-cklb", help="The same as a .cklb (STIG Viewer 3).")
                            ] = None,
        dockerfile: Annotated[Path | None, typer.Option("--dockerfile", help="With --dod-ckl/--dod-cklb: the "
                                                        "Dockerfile the image was built from.")] = None,
        vuln_db: Annotated[Path | None, typer.Option("--vuln-db", help="With --dod-ckl/--dod-cklb: the offline "
                                                     "vulnerability store (as for `gate`).")] = None,
        platform: PlatformOption = None,
        insecure_registry: InsecureOption = None,
        ca_bundle: CaBundleOption = None,
        no_cache: NoCacheOption = False,
    ) -> None:
        """Evaluate the image with OpenSCAP and the SCAP Security Guide; write STIG Viewer checklists."""
        from ci_gate.fileio import write_atomic
        from ci_gate.stig.checklists import render_ckl, render_cklb
        from ci_gate.stig.evaluate import evaluate_image, summary_line

        dod_only = [flag for flag, given in (("--vuln-db", vuln_db), ("--dockerfile", dockerfile)) if given]
        if dod_only and dod_ckl is None and dod_cklb is None:  # else a mistyped path would pass unnoticed
            raise UsageError(f"{dod_only[0]} is used only for the DoD checklist: add --dod-ckl FILE or "
                             f"--dod-cklb FILE, or drop {dod_only[0]}")
        if dockerfile is not None and not dockerfile.is_file():  # else found after the whole evaluation
            raise UsageError(f"--dockerfile {dockerfile} is not a file: give the Dockerfile the image was built "
                             "from")
        check_outputs((("--ckl", ckl), ("--cklb", cklb), ("--json", json_report), ("--dod-ckl", dod_ckl),
                       ("--dod-cklb", dod_cklb)))
        source = source_options(platform, insecure_registry, ca_bundle, image=image)
        evaluation = evaluate_image(image, source,
                                    profile=profile, datastream=datastream, use_cache=not no_cache,
                                    log=lambda line: typer.echo(f"ci-gate: {line}", err=True))
        for warning in evaluation.warnings:
            typer.echo(f"ci-gate: warning: {warning}", err=True)
        if not evaluation.platform_matched:
            raise AnalysisError(f"every rule of {evaluation.profile_id} is notapplicable: the content "
                                f"({Path(evaluation.datastream).name}) is for another distribution or release "
                                "than the image; pick the matching --datastream")
        outputs = [(ckl, render_ckl), (cklb, render_cklb)]
        rendered = [(path, render(evaluation)) for path, render in outputs if path is not None]
        if dod_ckl is not None or dod_cklb is not None:
            # After the STIG evaluation is recorded, so the pack's stig rule reads this very result.
            from ci_gate.backends.interface import BackendRequest
            from ci_gate.backends.local import LocalBackend
            from ci_gate.reports.dod_checklist import DOD_POLICY, dod_checklist_evaluation

            outcome = LocalBackend().run(BackendRequest(image=image, policy=DOD_POLICY, dockerfile=dockerfile,
                                                        vuln_db=vuln_db, source=source, use_cache=not no_cache))
            dod = dod_checklist_evaluation(outcome.evaluation, outcome.analysis, image)
            rendered += [(path, render(dod)) for path, render in ((dod_ckl, render_ckl), (dod_cklb, render_cklb))
                         if path is not None]
        if json_report is not None:
            rendered.append((json_report, (json.dumps(evaluation.to_json(), indent=2) + "\n").encode()))
        for path, data in rendered:
            write_atomic(path, data)
        typer.echo(summary_line(evaluation))
        for rule in evaluation.rules:
            if rule.result == "fail":
                ids = " ".join(part for part in (rule.vuln_id, rule.stig_rule_ver) if part)
                typer.echo(f"  open {rule.category or rule.severity}: {rule.short_id} {ids} - {rule.title}")
        if any(rule.result == "fail" for rule in evaluation.rules):
            raise typer.Exit(1)
