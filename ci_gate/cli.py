"""The `ci-gate` command line: parse, call, print. No business logic lives here.

Every `CiGateError` becomes one line on stderr and exit code 2 (a traceback only with --debug).
Sub-command groups live in their own `cli_*.py` modules and are mounted here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from ci_gate import __version__
from ci_gate.errors import CiGateError
from ci_gate.gate import EXIT_ERROR
from ci_gate.redaction import escape_control
from ci_gate.sources.interface import Limits, SourceOptions

app = typer.Typer(
    name="ci-gate",
    help="A container-image policy gate for CI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ci-gate {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """A container-image policy gate for CI."""
    _state["debug"] = debug or os.environ.get("CI_GATE_DEBUG", "") not in ("", "0", "false")


# Options every image-reading command shares.
PlatformOption = Annotated[
    str | None, typer.Option("--platform", help="os/arch or os/arch/variant to pick from a multi-platform image.")
]
InsecureOption = Annotated[
    list[str] | None,
    typer.Option("--insecure-registry", help="HOST[:PORT] that may be reached over plain HTTP (repeatable)."),
]
CaBundleOption = Annotated[Path | None, typer.Option("--ca-bundle", help="CA bundle for registry TLS.")]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the analysis cache.")]


def source_options(
    platform: str | None, insecure: list[str] | None, ca_bundle: Path | None, image: str | None = None
) -> SourceOptions:
    """Options from flags and the environment. CI_GATE_REGISTRY_USERNAME/PASSWORD are for the registry
    CI_GATE_REGISTRY_HOST names, else for the registry of `image` (the one the user asked for)."""
    username = os.environ.get("CI_GATE_REGISTRY_USERNAME") or None
    registry_host = os.environ.get("CI_GATE_REGISTRY_HOST") or None
    if username and registry_host is None:
        from ci_gate.sources.registry_auth import credentials_host_for_image

        registry_host = credentials_host_for_image(image)
    return SourceOptions(
        platform=platform or os.environ.get("CI_GATE_PLATFORM") or None,
        insecure_registries=tuple(insecure or ()),
        ca_bundle=str(ca_bundle) if ca_bundle else os.environ.get("CI_GATE_CA_BUNDLE") or None,
        registry_username=username,
        registry_password=os.environ.get("CI_GATE_REGISTRY_PASSWORD") or None,
        registry_host=registry_host,
        limits=Limits.from_env(),
    )


@app.command()
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
    analysis = analyze_image(image, options, progress=_progress())
    render_analysis(analysis, output, file)


def _progress() -> bool:
    """Show a live progress bar only on an interactive terminal outside CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


def _mount_subcommands() -> None:
    """Mount the command groups that exist; each lives in its own module."""
    import importlib

    for module_name, group in (("ci_gate.cli_policy", "policy"), ("ci_gate.cli_db", "db")):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        app.add_typer(module.app, name=group)
    for module_name in ("ci_gate.cli_gate", "ci_gate.cli_serve"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(app)


_mount_subcommands()


def _is_usage_error(error: Exception) -> bool:
    """A click usage error, from click itself or from the copy typer bundles (typer._click)."""
    return any(cls.__name__ == "ClickException" and cls.__module__.endswith("click.exceptions")
               for cls in type(error).__mro__)


def main() -> None:
    """Console entry point: run the app, turning errors into one line and exit code 2."""
    try:
        code = app(standalone_mode=False)
        # Without standalone mode click returns a typer.Exit's code instead of exiting with it.
        if isinstance(code, int) and code:
            sys.exit(code)
    except CiGateError as error:
        if _state["debug"]:
            raise
        typer.echo(f"ci-gate: error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        typer.echo("ci-gate: aborted", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        typer.echo("ci-gate: interrupted", err=True)
        sys.exit(130)
    except Exception as error:
        if _is_usage_error(error):
            # One line, like every other error: "No such option: --x", "Missing argument 'IMAGE'".
            message = escape_control(error.format_message())  # type: ignore[attr-defined]
            typer.echo(f"ci-gate: error: {message} (see ci-gate --help)", err=True)
            sys.exit(EXIT_ERROR)
        if _state["debug"]:
            raise
        # Only the type: an unexpected exception's text may quote image content (a secret).
        typer.echo(f"ci-gate: internal error: {type(error).__name__} (rerun with --debug for a traceback, "
                   "and please report it)", err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
