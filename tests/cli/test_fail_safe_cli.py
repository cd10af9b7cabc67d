"""The command line fails safe, as a user meets it: outputs that never clobber, global options
anywhere, "could not decide" always exit 2, one line on an interrupt, data alone on stdout."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.devices import NULL_DEVICE, make_null_device
from tests.support.oci import OciImage

REPORT_FLAGS = ("--json", "--junit", "--sarif", "--gitlab-report", "--codequality", "--markdown", "--compliance")


def _environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    environment = {**os.environ, "CI_GATE_CACHE_DIR": str(tmp_path / "cache"), "XDG_DATA_HOME": str(tmp_path),
                   "CI_GATE_VULN_DB": "", **extra}
    for name in ("CI_GATE_DEBUG", "GITHUB_ACTIONS", "GITLAB_CI", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY",
                 "CI_GATE_OUTPUT"):
        environment.pop(name, None)
    return environment


def _cli(tmp_path: Path, *arguments: str, prelude: str = "", **extra: str) -> subprocess.CompletedProcess[str]:
    """`ci-gate ARGUMENTS` in a fresh interpreter; `prelude` runs first (to plant a fault)."""
    code = f"{prelude}\nfrom ci_gate.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", code, *arguments], capture_output=True, text=True, timeout=300,
                          env=_environment(tmp_path, **extra), cwd=tmp_path)


@pytest.fixture
def null_device(tmp_path: Path) -> Path:
    return make_null_device(tmp_path / "null")


# --- every report and SBOM through the one writer ---------------------------------------------------


def test_every_gate_report_to_a_character_device_leaves_it_a_device(tmp_path: Path, tiny_oci: OciImage,
                                                                    null_device: Path) -> None:
    flags = [part for flag in REPORT_FLAGS for part in (flag, str(null_device))]
    result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", *flags)
    assert result.returncode in (0, 1), result.stderr
    status = null_device.stat()
    assert stat.S_ISCHR(status.st_mode) and status.st_rdev == NULL_DEVICE
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["null"]


def test_every_gate_report_through_a_symlink_keeps_the_link(tmp_path: Path, tiny_oci: OciImage) -> None:
    targets = tmp_path / "targets"
    targets.mkdir()
    flags = []
    for flag in REPORT_FLAGS:
        name = flag.strip("-")
        (targets / name).write_text("old")
        link = tmp_path / f"{name}.link"
        link.symlink_to(targets / name)
        flags += [flag, str(link)]
    result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", *flags)
    assert result.returncode in (0, 1), result.stderr
    for flag in REPORT_FLAGS:
        name = flag.strip("-")
        assert (tmp_path / f"{name}.link").is_symlink()
        assert (targets / name).read_text() not in ("", "old"), name
    json.loads((targets / "sarif").read_text())
    assert sorted(p.name for p in targets.iterdir()) == sorted(f.strip("-") for f in REPORT_FLAGS)


def test_a_report_to_a_fifo_reaches_its_reader(tmp_path: Path, tiny_oci: OciImage) -> None:
    fifo = tmp_path / "sarif.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as pipe:
            received.append(pipe.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", "--sarif", str(fifo))
    reader.join(timeout=30)
    assert result.returncode in (0, 1), result.stderr
    assert json.loads(received[0])["version"] == "2.1.0"
    assert stat.S_ISFIFO(fifo.stat().st_mode)


def test_a_report_to_dash_goes_to_stdout(tmp_path: Path, tiny_oci: OciImage) -> None:
    result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", "--junit", "-")
    assert result.returncode in (0, 1), result.stderr
    assert "<testsuites" in result.stdout
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("output", ["json", "cyclonedx-json", "spdx-json", "table"])
def test_analyze_to_a_device_a_link_and_dash(tmp_path: Path, tiny_oci: OciImage, null_device: Path,
                                            output: str) -> None:
    image = f"oci-dir:{tiny_oci.path}"
    assert _cli(tmp_path, "analyze", image, "-o", output, "--file", str(null_device)).returncode == 0
    assert stat.S_ISCHR(null_device.stat().st_mode)
    target = tmp_path / "sbom.out"
    link = tmp_path / "sbom.link"
    link.symlink_to(target)
    assert _cli(tmp_path, "analyze", image, "-o", output, "--file", str(link)).returncode == 0
    assert link.is_symlink() and target.stat().st_size > 0
    dashed = _cli(tmp_path, "analyze", image, "-o", output, "--file", "-")
    assert dashed.returncode == 0
    if output in ("json", "table"):
        assert dashed.stdout == target.read_text()
    else:  # SBOMs carry a fresh serial number and timestamp per run: compare what they list
        listed = "components" if output == "cyclonedx-json" else "packages"
        assert len(json.loads(dashed.stdout)[listed]) == len(json.loads(target.read_text())[listed]) > 0


# --- stdout is data, stderr is diagnostics ------------------------------------------------------------


def test_analyze_json_on_stdout_is_only_the_json_even_with_debug(tmp_path: Path, tiny_oci: OciImage) -> None:
    result = _cli(tmp_path, "analyze", f"oci-dir:{tiny_oci.path}", "-o", "json", "--debug", "--no-cache",
                  prelude="import logging; logging.getLogger('ci_gate').warning('a diagnostic')")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["identity"]["config_digest"] == tiny_oci.config_digest
    assert "a diagnostic" in result.stderr


# --- global options anywhere; --debug never changes the exit code -----------------------------------


@pytest.mark.parametrize("arguments", [
    ("--debug", "db", "status", "--vuln-db", "{missing}"),
    ("db", "--debug", "status", "--vuln-db", "{missing}"),
    ("db", "status", "--vuln-db", "{missing}", "--debug"),
])
def test_debug_anywhere_adds_a_traceback_and_keeps_exit_2(tmp_path: Path, arguments: tuple[str, ...]) -> None:
    missing = str(tmp_path / "absent.sqlite")
    result = _cli(tmp_path, *(a.replace("{missing}", missing) for a in arguments))
    assert result.returncode == 2, result.stderr
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith(f"ci-gate: error: --vuln-db {missing} does not exist")
    assert "No such option" not in result.stderr


def test_the_same_error_without_debug_is_one_line(tmp_path: Path) -> None:
    result = _cli(tmp_path, "db", "status", "--vuln-db", str(tmp_path / "absent.sqlite"))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_value_after_double_dash_is_not_taken_for_a_global_option() -> None:
    from ci_gate.cli import hoist_global_options

    assert hoist_global_options(["gate", "img", "--debug"]) == ["--debug", "gate", "img"]
    assert hoist_global_options(["policy", "test", "--", "--debug"]) == ["policy", "test", "--", "--debug"]


# --- an unexpected error is exit 2, names what is missing, never prints its text --------------------

PLANTED_SECRET = "AKIA" + "Q7PLANTEDSECRET0"


@pytest.mark.parametrize("debug", [False, True])
def test_an_internal_error_through_the_real_cli_is_exit_2_without_its_text(tmp_path: Path, tiny_oci: OciImage,
                                                                        debug: bool) -> None:
    prelude = ("import ci_gate.backends.local as local\n"
               "def broken(*args, **kwargs):\n"
               f"    raise RuntimeError('the parser choked on {PLANTED_SECRET}')\n"
               "local.LocalBackend.run = broken")
    result = _cli(tmp_path, "gate", f"oci-dir:{tiny_oci.path}", *(["--debug"] if debug else []), prelude=prelude)
    assert result.returncode == 2, (result.returncode, result.stderr)  # never 1, which a CI reads as STOP
    last = result.stderr.rstrip().splitlines()[-1]
    assert last.startswith("ci-gate: internal error: RuntimeError (rerun with --debug")
    if not debug:
        assert PLANTED_SECRET not in result.stderr + result.stdout
        assert len(result.stderr.splitlines()) == 1
    else:
        assert "Traceback" in result.stderr


def test_a_missing_module_is_named(tmp_path: Path) -> None:
    # What a fresh `pip install .` without a dependency did (the first round lacked `packaging`; a
    # command imports its dependencies lazily now, so this takes PyYAML, which reading any policy needs).
    prelude = "import sys\nsys.modules['yaml'] = None"
    result = _cli(tmp_path, "policy", "validate", "builtin:default", prelude=prelude)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "ci-gate: internal error: ModuleNotFoundError: module 'yaml' is missing (reinstall ci-gate "
        "with its dependencies: pip install ci-gate) (rerun with --debug for a traceback, and please report it)"]


# --- Ctrl-C and SIGTERM ------------------------------------------------------------------------------


def _open_when_read(fifo: Path, process: subprocess.Popen[str]) -> int:
    """The FIFO's write end, once the process has opened it for reading (a non-blocking open fails before)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"ci-gate never opened {fifo}: {process.communicate()}")


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_is_one_line_its_exit_code_and_no_partial_output(tmp_path: Path, signal_number: int,
                                                                     exit_code: int) -> None:
    # The image is a FIFO nobody writes to: ci-gate blocks opening it until the signal arrives.
    blocked = tmp_path / "image.tar"
    os.mkfifo(blocked)
    out = tmp_path / "out"
    out.mkdir()
    (out / "previous.json").write_text("previous run")
    process = subprocess.Popen(
        [sys.executable, "-m", "ci_gate.cli", "analyze", f"oci-archive:{blocked}", "-o", "json", "--file",
         str(out / "analysis.json")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=_environment(tmp_path))
    writer = _open_when_read(blocked, process)  # now ci-gate is past start-up, waiting for image bytes
    try:
        process.send_signal(signal_number)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.close(writer)
    assert process.returncode == exit_code, stderr
    assert stderr == "ci-gate: interrupted\n"
    assert stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["previous.json"]
