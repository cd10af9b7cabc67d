"""The `ci-gate` command line: parse, call, print. No business logic lives here.

Every `CiGateError` becomes one line on stderr and exit code 2 (a traceback only with --debug).
Sub-command groups live in their own `cli_*.py` modules and are mounted here.
"""

from __future__ import annotations

import contextlib
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

def _version(value: bool) -> None:
    if value:
        typer.echo(f"ci-gate {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors (also after the subcommand; "
                                        "never changes the exit code).")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """A container-image policy gate for CI."""
    # --debug (here or anywhere on the command line, or CI_GATE_DEBUG=1) is read by `main`.


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

    for module_name, group in (("ci_gate.cli_policy", "policy"), ("ci_gate.cli_db", "db"),
                              ("ci_gate.cli_admission", "admission")):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        app.add_typer(module.app, name=group)
    for module_name in ("ci_gate.cli_gate", "ci_gate.cli_serve", "ci_gate.cli_stig", "ci_gate.cli_watch"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        module.register(app)


_mount_subcommands()


def _is_usage_error(error: BaseException) -> bool:
    """A click usage error, from click itself or from the copy typer bundles (typer._click)."""
    return any(cls.__name__ == "ClickException" and cls.__module__.endswith("click.exceptions")
               for cls in type(error).__mro__)


GLOBAL_FLAGS = ("--debug",)
"""Options of the root command that may stand anywhere on the command line (`ci-gate db import X --debug`)."""


def hoist_global_options(arguments: list[str]) -> list[str]:
    """Move the global flags in front of the subcommand; nothing after a `--` is touched."""
    end = arguments.index("--") if "--" in arguments else len(arguments)
    hoisted = [a for a in arguments[:end] if a in GLOBAL_FLAGS]
    rest = [a for a in arguments[:end] if a not in GLOBAL_FLAGS]
    return hoisted + rest + arguments[end:]


def _debug_wanted(arguments: list[str]) -> bool:
    return "--debug" in arguments or os.environ.get("CI_GATE_DEBUG", "") not in ("", "0", "false")


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived. A BaseException, so that no `except Exception` swallows it and every
    `finally` and writer on the way out runs (a half-written output is removed, never renamed in)."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(signal_number)
        self.signal_number = signal_number


def _raise_interrupted(signal_number: int, _frame: object) -> None:
    raise Interrupted(signal_number)


def _install_signal_handlers() -> None:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, _raise_interrupted)


def _internal_error_line(error: BaseException) -> str:
    """The exception type and, when it says what is missing, the module or host file; never its text,
    which may quote image content (a secret)."""
    detail = ""
    if isinstance(error, ImportError) and error.name:
        detail = f": module {error.name!r} is missing (reinstall ci-gate with its dependencies: pip install ci-gate)"
    elif isinstance(error, OSError) and error.filename:
        detail = f": {error.strerror or 'error'}: {error.filename}"
    return (f"ci-gate: internal error: {type(error).__name__}{escape_control(detail)} (rerun with --debug for a "
            "traceback, and please report it)")


def _interrupted_exit(signal_number: int) -> None:
    """One line and 128+N. Worker threads (layer readers, servers) must not hold the process open."""
    import signal

    # A second Ctrl-C while leaving must not print a traceback or a second line.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    with contextlib.suppress(Exception):
        sys.stderr.write("ci-gate: interrupted\n")
        sys.stderr.flush()
    os._exit(128 + signal_number)


def main(arguments: list[str] | None = None) -> None:
    """Console entry point: run the app; an error is one line and exit 2, with --debug also a traceback.

    --debug adds the traceback and never changes the exit code: "could not decide" is always 2."""
    import signal
    import traceback

    given = list(sys.argv[1:] if arguments is None else arguments)
    argv = hoist_global_options(given)
    debug = _debug_wanted(argv)
    _install_signal_handlers()
    try:
        code = app(args=argv, prog_name="ci-gate", standalone_mode=False)
        # Without standalone mode click returns a typer.Exit's code instead of exiting with it.
        if isinstance(code, int) and code:
            sys.exit(code)
    except Interrupted as interrupted:
        _interrupted_exit(interrupted.signal_number)
    except CiGateError as error:
        if debug:
            traceback.print_exc()
        typer.echo(f"ci-gate: error: {error}", err=True)
        sys.exit(EXIT_ERROR)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort as aborted:
        if isinstance(aborted.__context__, KeyboardInterrupt):  # a KeyboardInterrupt raised by code, not by us
            _interrupted_exit(signal.SIGINT)
        typer.echo("ci-gate: aborted", err=True)
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _interrupted_exit(signal.SIGINT)
    except SystemExit:
        raise
    except Exception as error:
        if _is_usage_error(error):
            # One line, like every other error: "No such option: --x", "Missing argument 'IMAGE'".
            message = escape_control(error.format_message())  # type: ignore[attr-defined]
            if message.strip():  # empty when the help was shown instead (`ci-gate` with no arguments)
                typer.echo(f"ci-gate: error: {message} (see ci-gate --help)", err=True)
            sys.exit(EXIT_ERROR)
        if debug:
            traceback.print_exc()
        typer.echo(_internal_error_line(error), err=True)
        sys.exit(EXIT_ERROR)


if __name__ == "__main__":
    main()
