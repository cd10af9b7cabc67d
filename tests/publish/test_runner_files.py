"""The CI runner's files (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, CI_GATE_OUTPUT) go through the one output
writer: appended to, a link followed and kept, a device written through and left a device."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from report_samples import sample_analysis, sample_evaluation

from ci_gate.publish import publish_comment

NULL_DEVICE = os.makedev(1, 3)


def test_runner_files_behind_links_and_devices(tmp_path: Path) -> None:
    device = tmp_path / "null"
    try:
        os.mknod(device, 0o666 | stat.S_IFCHR, NULL_DEVICE)
    except PermissionError:
        pytest.skip("making a character device needs root: run the suite as root (bash .ci/run does)")
    runner = tmp_path / "runner"
    runner.mkdir()
    (runner / "set_output").write_text("earlier=1\n")
    output_link = tmp_path / "GITHUB_OUTPUT"
    output_link.symlink_to(runner / "set_output")
    dotenv_link = tmp_path / "ci-gate.env"
    dotenv_link.symlink_to(runner / "dotenv")  # dangling: the writer creates the target
    env = {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output_link), "GITHUB_STEP_SUMMARY": str(device),
           "CI_GATE_OUTPUT": str(dotenv_link)}
    notes = publish_comment(sample_evaluation(), sample_analysis(), "off", env=env, stream=io.StringIO())
    assert notes == []
    assert output_link.is_symlink() and dotenv_link.is_symlink()
    written = (runner / "set_output").read_text()
    assert written.startswith("earlier=1\n") and "final-action<<ghadelimiter_" in written
    assert "FINAL_ACTION=STOP" in (runner / "dotenv").read_text()
    assert stat.S_ISCHR(device.stat().st_mode) and device.stat().st_rdev == NULL_DEVICE
    assert sorted(p.name for p in runner.iterdir()) == ["dotenv", "set_output"]
