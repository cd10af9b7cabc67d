"""The real anchore-cli 0.9.3 (PyPI `anchorecli`) as a subprocess against `ci-gate serve`, and the images it acts on.

.ci/run installs it into its own venv ($CI_GATE_TOOLS/anchore-cli-venv) and exports CI_GATE_ANCHORE_CLI.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.oci import OciImage, TarItem, build_oci_layout
from tests.support.serve import PASSWORD, ServeProcess
from tests.support.tiny import TINY_CONFIG, tiny_layers

TOOLS = Path(os.environ.get("CI_GATE_TOOLS", Path.home() / ".cache" / "ci-gate-tools"))
INSTALL = ("python -m venv ~/.cache/ci-gate-tools/anchore-cli-venv && pip install Click==8.0.1 prettytable==2.2.0 "
           "python-dateutil==2.8.2 requests==2.26.0 six==1.16.0 urllib3==1.26.6 PyYAML==6.0.2 && "
           "pip install --no-deps anchorecli==0.9.3 (as .ci/run does)")


def anchore_cli_path() -> Path:
    """The installed anchore-cli, or a skip naming the install (CI installs it, so CI never skips)."""
    path = Path(os.environ.get("CI_GATE_ANCHORE_CLI") or TOOLS / "anchore-cli-venv" / "bin" / "anchore-cli")
    if not path.exists():
        pytest.skip(f"anchore-cli is not installed: {INSTALL}")
    return path


@dataclass
class AnchoreCli:
    """Runs anchore-cli against one server with the admin credentials, from a scratch HOME."""

    path: Path
    server: ServeProcess
    home: Path

    def run(self, *arguments: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        environment = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "LANG": "C.UTF-8",
                       "ANCHORE_CLI_URL": f"{self.server.url}/v1", "ANCHORE_CLI_USER": "admin",
                       "ANCHORE_CLI_PASS": PASSWORD}
        return subprocess.run([str(self.path), *arguments], capture_output=True, text=True, timeout=timeout,
                              env=environment, check=False)

    def ok(self, *arguments: str) -> str:
        """stdout of a command that must succeed (exit 0)."""
        result = self.run(*arguments)
        assert result.returncode == 0, f"anchore-cli {' '.join(arguments)} exited {result.returncode}:\n" \
                                       f"{result.stdout}\n{result.stderr}\n{self.server.log()}"
        return result.stdout

    def json(self, *arguments: str) -> Any:
        return json.loads(self.ok("--json", *arguments))


def field(output: str, name: str) -> list[str]:
    """Every value of `Name: value` lines in anchore-cli's plain output."""
    return re.findall(rf"^{re.escape(name)}: (.*)$", output, flags=re.MULTILINE)


def build_app_image(out: Path, leaky: bool) -> OciImage:
    """The tiny Debian image run as user 1000 plus an app config: `leaky` plants AWS credentials in it
    (made up at each run), which the default policy's secret_scans rule stops."""
    if leaky:
        key_id = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        content = f"aws_access_key_id = {key_id}\naws_secret_access_key = {secrets.token_urlsafe(30)[:40]}\n"
    else:
        content = "listen 8080\n"
    layers: list[list[TarItem]] = [*tiny_layers(), [TarItem("etc", kind="dir", mode=0o755),
                                                    TarItem("etc/app.conf", content.encode())]]
    history = [{"created": "2024-01-01T00:00:00Z", "created_by": f"/bin/sh -c #(nop) ADD file:layer{n} in /"}
               for n in range(len(layers))]
    return build_oci_layout(out, layers, tag="leaky" if leaky else "clean", config={**TINY_CONFIG, "User": "1000"},
                            history=history)
