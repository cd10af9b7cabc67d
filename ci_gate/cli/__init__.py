"""The `ci-gate` command line: parse, call, print. No business logic lives here.

Every `CiGateError` becomes one line on stderr and exit code 2 (a traceback only with --debug).
Each command (or command group) lives in its own module with a `register(app)` function and is
named once in `COMMANDS`; a module is imported only when its command runs (or --help lists it), so
`ci-gate --version` and `ci-gate gate` load only what they use. See docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import os
import sys
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from ci_gate import __version__
from ci_gate.errors import EXIT_ERROR, CiGateError

COMMANDS: dict[str, str] = {
    "analyze": "ci_gate.cli.analyze",
    "gate": "ci_gate.cli.gate",
    "serve": "ci_gate.cli.serve",
    "stig": "ci_gate.cli.stig",
    "policy": "ci_gate.cli.policy",
    "db": "ci_gate.cli.db",
    "admission": "ci_gate.cli.admission",
    "watch": "ci_gate.cli.watch",
}
"""Every command, in --help order: its name and the module whose `register(app)` adds it (a command
with `app.command(...)`, or a group with `app.add_typer(..., name=NAME)`). A new command is one
module and one line here. tests/test_architecture.py reads this table as import edges."""


def load_command(name: str) -> click.Command:
    """Import the command's module and build its click command (typer turns the functions into click)."""
    module = importlib.import_module(COMMANDS[name])
    holder = typer.Typer(add_completion=False)
    module.register(holder)
    return typer.main.get_group(holder).commands[name]


class LazyCommands(TyperGroup):
    """The root group: knows the commands by name and imports a command's module only when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load_command(cmd_name)
        return self.commands[cmd_name]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            # typer suggests from the commands already loaded; a typo must be matched against them all.
            close = difflib.get_close_matches(args[0], list(COMMANDS)) if args else []
            if close and "Did you mean" not in error.message:
                suggestion = f"{error.message.rstrip('.')}. Did you mean {', '.join(map(repr, close))}?"
                error.message = suggestion  # type: ignore[misc]  # Final in click's stubs; typer assigns it too
            raise


app = typer.Typer(
    name="ci-gate",
    help="A container-image policy gate for CI.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=LazyCommands,
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
    from ci_gate.redaction import escape_control

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
        if isinstance(done.__context__, KeyboardInterrupt):  # typer turns one raised by code into a silent 130
            _interrupted_exit(signal.SIGINT)
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
            from ci_gate.redaction import escape_control

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
