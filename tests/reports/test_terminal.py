"""The verdict as a developer sees it: the example run in a real 100x30 terminal (tmux), ending with the
decision on the last line, and the help a new user reads."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ci_tools import require_command

REPOSITORY = Path(__file__).resolve().parents[2]



def in_terminal(arguments: list[str], tmp_path: Path, cwd: Path, columns: int = 100, rows: int = 30
                ) -> tuple[list[str], int]:
    """Run a command in a detached tmux window of the given size; the whole pane (scroll-back included)
    once it ended, and its exit code."""
    tmux = require_command("tmux", "apt-get install tmux")
    socket = f"ci-gate-test-{os.getpid()}-{time.monotonic_ns()}"
    done = tmp_path / "exit-code"
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI"))}
    environment["PYTHONPATH"] = str(REPOSITORY) + os.pathsep + environment.get("PYTHONPATH", "")
    environment["TERM"] = "xterm-256color"
    script = tmp_path / "run.sh"
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in environment.items()
                      if name.isidentifier())
    # After the command, a pane title set through the terminal itself: tmux handles the pane's output in
    # order, so once the title shows, every line the command printed is on the pane (a fixed pause after
    # the exit code can be too short on a busy machine).
    finished = f"ci-gate-test-finished-{os.getpid()}"
    script.write_text(f"{exports}cd {shlex.quote(str(cwd))}\n{shlex.join(arguments)}\n"
                      f"echo $? > {shlex.quote(str(done))}\nprintf '\\033]2;%s\\033\\\\' {finished}\nsleep 120\n")
    base = [tmux, "-L", socket, "-f", "/dev/null"]
    subprocess.run([*base, "new-session", "-d", "-x", str(columns), "-y", str(rows), "bash", str(script)],
                   check=True, env=environment)
    try:
        deadline = time.monotonic() + 300
        while not done.exists() or not done.read_text().strip() or subprocess.run(
                [*base, "display-message", "-p", "-t", "0", "#{pane_title}"], capture_output=True, text=True,
                check=True).stdout.strip() != finished:
            assert time.monotonic() < deadline, "the gate did not finish in the terminal"
            time.sleep(0.2)
        pane = subprocess.run([*base, "capture-pane", "-p", "-S", "-", "-t", "0"], capture_output=True, text=True,
                              check=True).stdout
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True)
    lines = pane.rstrip("\n").split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines, int(done.read_text())


@pytest.mark.parametrize("policy", ["builtin:default", "builtin:dod"])
def test_noncompliant_example_fits_one_100x30_screen_with_the_verdict_last(images, tmp_path, policy):
    # As in the README's quick start: from a checkout, the example built under examples/build, reports in out/.
    workdir = tmp_path / "checkout"
    (workdir / "examples").mkdir(parents=True)
    (workdir / "examples" / "build").symlink_to(images["noncompliant"].parent)
    (workdir / "examples" / "images").symlink_to(REPOSITORY / "examples" / "images")
    arguments = [sys.executable, "-m", "ci_gate.cli", "gate", "oci-dir:examples/build/noncompliant", "--policy", policy,
                 "--vuln-db", "examples/build/vulns.sqlite", "--dockerfile", "examples/images/noncompliant/Dockerfile",
                 "--no-cache", "--json", "out/evaluation.json", "--junit", "out/junit.xml", "--sarif",
                 "out/ci-gate.sarif", "--gitlab-report", "out/gl-container-scanning.json", "--codequality",
                 "out/gl-code-quality.json", "--markdown", "out/comment.md", "--compliance", "out/compliance.md"]
    (workdir / "out").mkdir()
    lines, code = in_terminal(arguments, tmp_path, workdir)
    assert code == 1
    # Nothing scrolled away: the whole output (plus the next prompt line) is one screen.
    assert len(lines) <= 29, "\n".join(lines)
    assert lines[0].startswith(f"ci-gate: checking oci-dir:examples/build/noncompliant against {policy}")
    assert lines[-1].startswith("STOP: ") and "must be fixed before this image can be pushed (" in lines[-1]
    assert all(len(line) <= 100 for line in lines)
    screen = "\n".join(lines)
    assert "/root/.aws/credentials" in screen  # paths whole, never "…" cut
    assert "USER 10001:10001" in screen  # every problem with its fix
    assert next(line[:4] for line in lines if line[:4] in ("STOP", "WARN")) == "STOP"  # STOP problems first
    assert "wJalrXUtnFEMI" not in screen and "IOSFODNN7EXAMPLE" not in screen


def test_gate_help_groups_options_and_documents_the_image_schemes():
    environment = {**os.environ, "COLUMNS": "120", "PYTHONPATH": str(REPOSITORY)}
    completed = subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", "--help"], capture_output=True,
                               text=True, env=environment, cwd=REPOSITORY, timeout=60)
    text = completed.stdout
    for scheme in ("docker-archive:PATH", "oci-archive:PATH", "oci-dir:PATH", "dir:PATH", "registry:REF",
                   "docker:REF", "sbom:PATH", "e.g. sbom:app.cdx.json"):
        assert scheme in text
    panels = ["Policy", "Vulnerabilities", "Reports", "Publishing", "Anchore backend"]
    positions = [text.index(f"─ {panel}") for panel in panels]
    assert positions == sorted(positions)
    anchore = text[text.index("─ Anchore backend"):]
    assert "--anchore-url" in anchore and "--anchore-url" not in text[:text.index("─ Anchore backend")]
    assert "[default: (builtin:default)]" in text and "[default: (stop)]" in text


def test_a_pack_name_without_builtin_gets_the_builtin_suggested(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", "oci-dir:nowhere", "--policy", "dod"],
                               capture_output=True, text=True, cwd=tmp_path, timeout=60,
                               env={**os.environ, "PYTHONPATH": str(REPOSITORY)})
    assert completed.returncode == 2
    assert completed.stderr.strip() == "ci-gate: error: policy file dod does not exist; did you mean builtin:dod?"
