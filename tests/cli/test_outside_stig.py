"""`ci-gate stig` as a user meets it: relative paths, misplaced flags, outputs that cannot be written.

Real oscap and the real SCAP Security Guide Debian 11 content, on the tiny image relabelled Debian 11
(the content's platform check reads /etc/debian_version), through the CLI in a fresh process.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.oci import TarItem, build_oci_layout
from tests.support.tiny import tiny_layers

DEBIAN11_DS = Path("/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml")

pytestmark = pytest.mark.skipif(shutil.which("oscap") is None or not DEBIAN11_DS.is_file(),
                                reason="oscap / ssg-debian not installed (.ci/run installs them)")


@pytest.fixture(scope="module")
def debian11_image(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("debian11") / "oci"
    build_oci_layout(out, [*tiny_layers(), [TarItem("etc/debian_version", b"11.9\n")]], tag="debian11")
    return f"oci-dir:{out}"


def _cli(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CI": "true", "CI_GATE_CACHE_DIR": str(cwd / "cache"), "CI_GATE_VULN_DB": ""}
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "stig", *arguments], capture_output=True, text=True,
                          timeout=300, env=environment, cwd=cwd)


def _one_line(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_a_relative_datastream_is_read_from_where_the_user_is(tmp_path: Path, debian11_image: str) -> None:
    # oscap runs in its own working directory: a relative --datastream was "Unable to open file".
    (tmp_path / "content").mkdir()
    shutil.copy(DEBIAN11_DS, tmp_path / "content" / "debian11.xml")
    result = _cli(tmp_path, debian11_image, "--datastream", "content/debian11.xml", "--profile", "standard",
                  "--ckl", "out/os.ckl")
    assert result.returncode in (0, 1), result.stderr
    assert "<CHECKLIST>" in (tmp_path / "out" / "os.ckl").read_text()


def test_a_datastream_that_is_a_folder_or_a_device_says_so(tmp_path: Path, debian11_image: str) -> None:
    _one_line(_cli(tmp_path, debian11_image, "--datastream", str(tmp_path)), "--datastream", "is a folder")
    _one_line(_cli(tmp_path, debian11_image, "--datastream", "/dev/null"), "--datastream", "not a regular file")


def test_a_bad_profile_is_one_clean_line(tmp_path: Path, debian11_image: str) -> None:
    result = _cli(tmp_path, debian11_image, "--datastream", str(DEBIAN11_DS), "--profile", "no_such_profile")
    _one_line(result, "no_such_profile", f"oscap info {DEBIAN11_DS}")
    assert "Get available profiles using" not in result.stderr


@pytest.mark.parametrize("flag", ["--vuln-db", "--dockerfile"])
def test_dod_only_flags_without_a_dod_checklist_are_refused(tmp_path: Path, debian11_image: str, flag: str) -> None:
    # They feed only the DoD checklist: alone, a mistyped --vuln-db or --dockerfile passed silently.
    (tmp_path / "given").write_text("FROM scratch\n")
    result = _cli(tmp_path, debian11_image, "--datastream", str(DEBIAN11_DS), flag, str(tmp_path / "given"))
    _one_line(result, flag, "--dod-ckl")


def test_an_output_that_cannot_be_written_fails_before_any_is_written(tmp_path: Path, debian11_image: str) -> None:
    (tmp_path / "plain").write_text("x")
    (tmp_path / "folder").mkdir()
    for bad_flag, bad_path in (("--dod-ckl", "plain/dod.ckl"), ("--json", "folder"), ("--cklb", "plain/sub/x.cklb")):
        result = _cli(tmp_path, debian11_image, "--datastream", str(DEBIAN11_DS), "--ckl", "out/os.ckl",
                      bad_flag, bad_path)
        _one_line(result, bad_flag, bad_path)
        assert "materialised" not in result.stderr  # refused before the image was opened
        assert not (tmp_path / "out").exists()


def test_a_missing_dockerfile_for_the_dod_checklist_fails_before_the_evaluation(tmp_path: Path,
                                                                              debian11_image: str) -> None:
    result = _cli(tmp_path, debian11_image, "--datastream", str(DEBIAN11_DS), "--dod-ckl", "out/dod.ckl",
                  "--dockerfile", "Dockerfil")
    _one_line(result, "--dockerfile Dockerfil")
    assert "materialised" not in result.stderr and "Errno" not in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_during_the_evaluation_is_the_cli_contract(tmp_path: Path, debian11_image: str,
                                                            signal_number: int, exit_code: int) -> None:
    # README: "Ctrl-C and SIGTERM print `ci-gate: interrupted` and exit 130 / 143". stig's own SIGTERM
    # handler raised a KeyboardInterrupt that typer turned into a silent exit 130.
    temp = tmp_path / "tmp"
    temp.mkdir()
    environment = {**os.environ, "CI": "true", "CI_GATE_CACHE_DIR": str(tmp_path / "cache"), "TMPDIR": str(temp)}
    process = subprocess.Popen([sys.executable, "-m", "ci_gate.cli", "stig", debian11_image, "--datastream",
                                str(DEBIAN11_DS), "--no-cache", "--ckl", str(tmp_path / "out" / "os.ckl")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(temp.glob("ci-gate-oscap-*/*")):  # oscap is running
        time.sleep(0.02)
    process.send_signal(signal_number)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == exit_code, stderr
    assert stderr.splitlines()[-1] == "ci-gate: interrupted", stderr
    assert list(temp.iterdir()) == [] and not (tmp_path / "out").exists()
