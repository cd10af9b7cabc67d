"""syft itself on a fixture tree, restricted to one cataloger: the reference our output must equal."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.support.syft import SYFT_TIMEOUT_SECONDS, SyftError, syft_binary


def syft_artifacts(root: Path, cataloger: str) -> list[dict[str, Any]]:
    """`syft scan dir:ROOT --override-default-catalogers CATALOGER -o json` → its artifacts."""
    environment = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    result = subprocess.run(
        [str(syft_binary()), "scan", f"dir:{root}", "-q", "-o", "json", "--override-default-catalogers", cataloger],
        capture_output=True, text=True, env=environment, stdin=subprocess.DEVNULL, check=False,
        timeout=SYFT_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise SyftError(f"syft scan dir:{root} failed (rc {result.returncode}): {result.stderr.strip()[-2000:]}")
    return list(json.loads(result.stdout)["artifacts"])


def triples(artifacts: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    """(name, version, purl) of each syft artifact; syft writes a missing version as UNKNOWN."""
    return {(a["name"], "" if a["version"] == "UNKNOWN" else a["version"], a["purl"]) for a in artifacts}
