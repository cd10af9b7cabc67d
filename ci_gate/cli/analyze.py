"""`ci-gate analyze IMAGE`: describe what is inside an image. The analyzer is imported when it runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ci_gate.cli.options import (
    CaBundleOption,
    InsecureOption,
    NoCacheOption,
    PlatformOption,
    show_progress,
    source_options,
)


def analyze(
    image: Annotated[str, typer.Argument(help="The image: SCHEME:LOCATION (docker-archive:, oci-archive:, "
                                         "oci-dir:, dir:, registry:, docker:, sbom:) or a path/reference.")],
    output: Annotated[
        str, typer.Option("-o", "--output", help="json, cyclonedx-json, spdx-json or table.")
    ] = "table",
    file: Annotated[Path | None, typer.Option("--file", help="Write the output here instead of stdout.")] = None,
    dockerfile: Annotated[
        Path | None, typer.Option("--dockerfile", help="The Dockerfile the image was built from.")
    ] = None,
    base_image: Annotated[
        str | None, typer.Option("--base-image", help="The base image (reference or path) to mark base layers.")
    ] = None,
    secret_rules: Annotated[
        Path | None,
        typer.Option("--secret-rules", help="YAML file that adds, disables or tunes secret rules "
                     "(docs/secret-rules.md).", envvar="CI_GATE_SECRET_RULES"),
    ] = None,
    platform: PlatformOption = None,
    insecure_registry: InsecureOption = None,
    ca_bundle: CaBundleOption = None,
    no_cache: NoCacheOption = False,
) -> None:
    """Describe what is inside an image: identity, config, distro, packages, users, files, secrets."""
    from ci_gate.analyze.analyzer import AnalyzeOptions, analyze_image
    from ci_gate.analyze.output import render_analysis

    options = AnalyzeOptions(
        source=source_options(platform, insecure_registry, ca_bundle, image=image),
        dockerfile=dockerfile,
        base_image=base_image,
        use_cache=not no_cache,
        secret_rules=secret_rules,
    )
    analysis = analyze_image(image, options, progress=show_progress())
    render_analysis(analysis, output, file)


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze)
