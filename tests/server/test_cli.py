"""`ci-gate serve` refuses to start without its password or its extra: one line, exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(arguments: list[str], environment: dict[str, str], prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nimport sys\nsys.argv = ['ci-gate', *{arguments!r}]\nfrom ci_gate.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=60)


def test_refuses_to_start_without_the_admin_password(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "CI_GATE_ADMIN_PASSWORD"}
    result = _run(["serve", "--data-dir", str(tmp_path)], environment)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ci-gate: error: set CI_GATE_ADMIN_PASSWORD to the password of the admin user before starting ci-gate serve"]


def test_says_how_to_install_the_server_extra(tmp_path: Path) -> None:
    environment = {**os.environ, "CI_GATE_ADMIN_PASSWORD": "x"}
    # Without the extra installed, starlette cannot be imported (None in sys.modules makes import fail).
    result = _run(["serve", "--data-dir", str(tmp_path)], environment, "import sys; sys.modules['starlette'] = None")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "ci-gate: error: ci-gate serve needs the server extra: pip install 'ci-gate[server]'"]


def test_port_in_use_and_unusable_data_dir_are_one_line(tmp_path: Path) -> None:
    import socket

    environment = {**os.environ, "CI_GATE_ADMIN_PASSWORD": "x"}
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = _run(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], environment)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ci-gate: error: cannot listen on 127.0.0.1:{port}")
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = _run(["serve", "--port", "0", "--data-dir", str(blocker / "data")], environment)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"ci-gate: error: cannot open the data dir {blocker / 'data'}: [Errno 20] Not a directory: "
        f"'{blocker / 'data'}'; pass a writable --data-dir"]
