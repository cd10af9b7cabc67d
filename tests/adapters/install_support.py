"""Install ci-gate the way the adapters do, for tests: from the hash-pinned locks, without an index.

- `locked_wheelhouse()`: the wheels of requirements/ci-gate.lock and requirements/build.lock for this
  interpreter and platform, downloaded once by pip with `--require-hashes` (so every file matches a
  hash in the lock) into the shared test cache. It is the "wheel folder" the adapter tests install
  from (`PIP_NO_INDEX=1`, `PIP_FIND_LINKS=<folder>`), standing in for the package index a user's
  runner reaches.
- `bare_python(folder)`: a Python with nothing but pip (a venv without system site packages), put
  first on PATH as `python3`: a clean runner or job image, without `packaging`, `wheel` or any of
  ci-gate's dependencies.
- `offline_pip_env(wheelhouse)`: the pip environment for both (no config files: this machine's
  pip.conf must not leak in).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.cache import cached, key_of

REPOSITORY = Path(__file__).resolve().parents[2]
LOCKS = (REPOSITORY / "requirements" / "ci-gate.lock", REPOSITORY / "requirements" / "build.lock")


def _download(target: Path) -> None:
    target.mkdir()
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
               "--require-hashes", "--only-binary=:all:", "--no-deps", "--dest", str(target)]
    for lock in LOCKS:
        command += ["--requirement", str(lock)]
    # The machine's pip configuration (extra indexes, constraints) stays out of it.
    environment = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=600)
    if completed.returncode != 0:
        raise RuntimeError(f"pip download of the locked wheels failed:\n{completed.stderr[-3000:]}")


def locked_wheelhouse() -> Path:
    """The locked wheels for this Python, hash-checked, cached on the locks' content."""
    key = key_of(*(lock.read_bytes() for lock in LOCKS), sys.version_info[:2], sys.platform)
    return cached(f"wheelhouse-{key}", _download, stale_prefix="wheelhouse-")


def offline_pip_env(wheelhouse: Path) -> dict[str, str]:
    return {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheelhouse),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_CACHE_DIR": "1"}


def bare_python(folder: Path) -> Path:
    """A venv with only pip, isolated from every site-packages; returns its bin folder (holds python3)."""
    if not (folder / "bin" / "python3").exists():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    return folder / "bin"


def clean_path(bare_bin: Path) -> str:
    """PATH for a clean runner: the bare Python first, then the system's folders (sh, git, tar, …)."""
    return os.pathsep.join([str(bare_bin), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
                            "/sbin", "/bin"])
