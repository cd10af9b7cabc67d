"""What several commands share: the image-source options, and how to tell an interactive terminal."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from ci_gate.errors import UsageError
from ci_gate.sources.interface import Limits, SourceOptions

PLATFORM_HELP = "os/arch or os/arch/variant to pick from a multi-platform image."
INSECURE_REGISTRY_HELP = "HOST[:PORT] that may be reached over plain HTTP (repeatable)."
CA_BUNDLE_HELP = "CA bundle for registry TLS."
NO_CACHE_HELP = "Do not read or write the analysis cache."

PlatformOption = Annotated[str | None, typer.Option("--platform", help=PLATFORM_HELP)]
InsecureOption = Annotated[list[str] | None, typer.Option("--insecure-registry", help=INSECURE_REGISTRY_HELP)]
CaBundleOption = Annotated[Path | None, typer.Option("--ca-bundle", help=CA_BUNDLE_HELP)]
NoCacheOption = Annotated[bool, typer.Option("--no-cache", help=NO_CACHE_HELP)]


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


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


def show_progress() -> bool:
    """A live progress bar only on an interactive terminal outside CI."""
    return sys.stderr.isatty() and not in_ci()


def interactive_output() -> bool:
    """Rich tables only when stdout is a terminal outside CI; plain lines for logs and pipes."""
    return sys.stdout.isatty() and not in_ci()


def check_outputs(outputs: Iterable[tuple[str, Path | None]]) -> None:
    """Before the work starts: each (flag, path) can be written — a file, a device, or nothing yet under
    a writable folder (missing folders are made when writing) — so a run never stops after writing
    some of its outputs. `-` is stdout."""
    for flag, path in outputs:
        if path is None or str(path) == "-":
            continue
        try:
            mode: int | None = os.stat(path).st_mode
        except FileNotFoundError:
            mode = None
        except NotADirectoryError:
            raise UsageError(f"{flag} {path}: a parent of it is not a folder; give a writable file path") from None
        except OSError as error:
            raise UsageError(f"{flag} {path}: {error.strerror or error}; give a writable file path") from None
        if mode is not None:
            if stat.S_ISDIR(mode):
                raise UsageError(f"{flag} {path} is a folder: give a file path")
            continue
        folder = Path(os.path.abspath(path)).parent
        while not os.path.lexists(folder):
            folder = folder.parent
        if not folder.is_dir():
            raise UsageError(f"{flag} {path}: a parent of it is not a folder; give a writable file path")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"{flag} {path}: the folder {folder} is not writable; give a writable file path")
