"""Text from an image, a tag or a template never takes control of where it is printed: no GitHub
workflow command from a tag or an image path, no ESC byte on the terminal, no Python from a
`--template` (the real CLI on the tiny image, as a GitHub Actions step)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ci_gate.model import Analysis, Evaluation, ImageIdentity
from ci_gate.publish.github import _escape_data, annotation_lines
from tests.support.oci import OciImage
from tests.support.serve import build_vuln_db

OUR_COMMANDS = re.compile(r"^::(error|warning|notice) (title|file)=")
"""The only workflow commands ci-gate itself writes."""


@pytest.fixture(scope="module")
def vuln_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_vuln_db(tmp_path_factory.mktemp("injection-vulns"))


def _run(arguments: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("GITHUB_", "GITLAB_", "CI_", "RUNNER_"))}
    environment.update({"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
                        "GITHUB_OUTPUT": str(tmp_path / "output.txt"), "CI_GATE_CACHE_DIR": str(tmp_path / "cache"),
                        **extra})
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", *arguments], capture_output=True, text=True,
                          env=environment, cwd=tmp_path, timeout=300, check=False)


def _commands(text: str) -> list[str]:
    """Lines a GitHub runner reads as workflow commands (it trims leading blanks first)."""
    return [line.lstrip() for line in text.split("\n") if line.lstrip().startswith("::")]


def test_a_tag_cannot_inject_a_workflow_command(tiny_oci: OciImage, vuln_db: Path, tmp_path: Path) -> None:
    tag = "registry.example.com/app:1\n::error title=pwned::owned\r::warning::x\x1b]0;title\x07"
    done = _run(["gate", f"oci-dir:{tiny_oci.path}", "--policy", "builtin:dod", "--vuln-db", str(vuln_db),
                 "--comment", "off"], tmp_path, CI_GATE_TAG=tag)
    assert done.returncode in (0, 1), done.stderr
    commands = _commands(done.stdout + "\n" + done.stderr)
    assert all(OUR_COMMANDS.match(line) for line in commands), commands
    assert "\x1b" not in done.stdout + done.stderr and "\r" not in done.stdout + done.stderr
    assert "registry.example.com/app:1\\n::error title=pwned::owned" in done.stdout  # shown, escaped


def test_an_image_path_cannot_inject_a_command_or_drive_the_terminal(tiny_oci: OciImage, vuln_db: Path,
                                                                     tmp_path: Path) -> None:
    hostile = tmp_path / "img\n::error::pwned\x1b[2J"
    shutil.copytree(tiny_oci.path, hostile)
    for arguments in (["analyze", f"oci-dir:{hostile}", "-o", "table"],
                      ["gate", f"oci-dir:{hostile}", "--policy", "builtin:dod", "--vuln-db", str(vuln_db),
                       "--comment", "off"]):
        done = _run(arguments, tmp_path)
        assert done.returncode in (0, 1), done.stderr
        output = done.stdout + done.stderr
        assert "\x1b" not in output
        assert all(OUR_COMMANDS.match(line) for line in _commands(output)), _commands(output)
        assert "img\\n::error::pwned\\x1b[2J" in done.stdout
    # An error line is escaped the same way.
    done = _run(["analyze", f"oci-dir:{tmp_path / 'missing'}\n::error::pwned"], tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "\\n::error::pwned" in done.stderr


def test_annotation_data_escaping() -> None:
    assert _escape_data("50%\r\n::error::x\x1b[31m\u2028") == "50%25%0D%0A::error::x\\x1b[31m\\u2028"


def test_a_stop_annotation_carries_a_hostile_tag_on_its_own_line() -> None:
    identity = ImageIdentity(reference="oci-dir:x\n::error::pwned", scheme="oci-dir", manifest_digest=None,
                             config_digest=None)
    evaluation = Evaluation(image_digest="sha256:" + "a" * 64, tag="app:1\n::error title=pwned::owned\x1b[0K",
                            policy_id="p", policy_name="p", final_action="STOP",
                            final_action_reason="policy_evaluation")
    [line] = annotation_lines(evaluation, Analysis(identity=identity))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    # the tag is in the title property, where `:` and `,` are escaped too
    assert line == ("::error title=ci-gate%3A STOP for app%3A1%0A%3A%3Aerror title=pwned%3A%3Aowned\\x1b[0K::"
                    "the policy says STOP; see the job summary")


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('touch PWNED').read() }}",
])
def test_a_template_cannot_reach_python(payload: str, tiny_oci: OciImage, vuln_db: Path, tmp_path: Path) -> None:
    template = tmp_path / "evil.md.j2"
    template.write_text(f"Gate: {{{{ final_action }}}} {payload}\n")
    summary = tmp_path / "summary-report.md"
    done = _run(["gate", f"oci-dir:{tiny_oci.path}", "--policy", "builtin:dod", "--vuln-db", str(vuln_db),
                 "--comment", "off", "--markdown", str(summary), "--template", str(template)], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.fullmatch(r"ci-gate: error: markdown template \S+ failed: .+; fix the template or drop --template\n",
                        done.stderr), done.stderr
    assert not (tmp_path / "PWNED").exists()
    assert not summary.exists()
