"""`ci-gate gate` end to end on real OCI layouts: exit codes, settings precedence, reports, packs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ci_gate.cli.gate import load_config_file, resolve
from ci_gate.errors import UsageError
from tests.support.oci import OciImage, TarItem, build_oci_layout

PASSWD = b"root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000::/app:/sbin/nologin\n"


def _base_items() -> list[TarItem]:
    return [
        TarItem("etc/", kind="dir", mode=0o755),
        TarItem("etc/passwd", PASSWD),
        TarItem("usr/", kind="dir", mode=0o755),
        TarItem("usr/bin/", kind="dir", mode=0o755),
        TarItem("usr/bin/tool", b"#!/bin/sh\n", mode=0o755),
    ]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OciImage]:
    root = tmp_path_factory.mktemp("gate-images")
    bad = build_oci_layout(
        root / "bad",
        [[*_base_items(), TarItem("usr/bin/su", b"ELF", mode=0o4755)]],
        tag="bad",
        config={"User": "root", "ExposedPorts": {"22/tcp": {}}},
        history=[{"created_by": "/bin/sh -c #(nop) ADD file:" + "a" * 64 + " in / "}],
    )
    warn = build_oci_layout(
        root / "warn",
        [_base_items()],
        tag="warn",
        config={"User": "1000:1000", "ExposedPorts": {"8080/tcp": {}}},
        history=[{"created_by": "/bin/sh -c curl -fsSL https://get.example.com | sh"}],
    )
    good = build_oci_layout(
        root / "good",
        [_base_items()],
        tag="good",
        config={"User": "app", "ExposedPorts": {"8080/tcp": {}},
                "Healthcheck": {"Test": ["CMD", "/usr/bin/tool"]}},
        history=[{"created_by": "/bin/sh -c #(nop) COPY dir:" + "b" * 64 + " in / "},
                 {"created_by": "/bin/sh -c #(nop)  HEALTHCHECK &{[\"CMD\" \"/usr/bin/tool\"]}", "empty_layer": True}],
    )
    return {"bad": bad, "warn": warn, "good": good}


def _gate(*args: str, cwd: Path, env: dict[str, str] | None = None, cache: bool = False
          ) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CI_GATE_")}
    environment["CI"] = "1"
    environment.update(env or {})
    flags = [] if cache else ["--no-cache"]
    return subprocess.run([sys.executable, "-m", "ci_gate.cli", "gate", *args, *flags], capture_output=True,
                          text=True, cwd=cwd, env=environment, timeout=300, check=False)


@pytest.fixture(scope="module")
def analysis_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One analysis cache for the Debian runs: the first pack analyses, the others reuse it."""
    return tmp_path_factory.mktemp("analysis-cache")


def test_stop_image_exits_1_and_writes_the_evaluation_json(images: dict[str, OciImage], tmp_path: Path) -> None:
    report = tmp_path / "out" / "evaluation.json"
    report.parent.mkdir()
    result = _gate(f"oci-dir:{images['bad'].path}", "--policy", "builtin:dod", "--json", str(report), cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"ci-gate: checking oci-dir:{images['bad'].path} against builtin:dod")
    assert lines[-1].startswith("STOP: ") and "must be fixed before this image can be pushed" in lines[-1]
    # STOP problems first, each followed by its fix
    assert lines[1].startswith("STOP  ") and lines[2].startswith("      fix: ")
    document = json.loads(report.read_text())
    evaluation = document["evaluations"][0]
    assert (evaluation["final_action"], evaluation["status"], evaluation["final_action_reason"]) == (
        "stop", "fail", "policy_evaluation")
    triggers = {(f["gate"], f["trigger"]) for f in evaluation["details"]["findings"]}
    assert {("image_user", "runs_as_root"), ("files", "suid_or_guid_set"), ("ssh_daemon", "present"),
            ("network_ports", "privileged_ports")} <= triggers
    assert document["image_digest"] == images["bad"].manifest_digest
    assert not list(report.parent.glob(".*.tmp"))


def test_warn_passes_unless_fail_on_warn(images: dict[str, OciImage], tmp_path: Path) -> None:
    image = f"oci-dir:{images['warn'].path}"
    assert _gate(image, cwd=tmp_path).returncode == 0
    assert _gate(image, "--fail-on", "warn", cwd=tmp_path).returncode == 1
    assert _gate(image, cwd=tmp_path, env={"CI_GATE_FAIL_ON": "warn"}).returncode == 1
    assert _gate(image, "--fail-on", "stop", cwd=tmp_path, env={"CI_GATE_FAIL_ON": "warn"}).returncode == 0
    assert _gate(f"oci-dir:{images['bad'].path}", "--fail-on", "never", cwd=tmp_path).returncode == 0


def test_settings_from_ci_gate_yaml(images: dict[str, OciImage], tmp_path: Path) -> None:
    (tmp_path / ".ci-gate.yaml").write_text(yaml.safe_dump({"policy": "builtin:cis", "fail_on": "warn",
                                                            "image": f"oci-dir:{images['good'].path}"}))
    result = _gate(cwd=tmp_path, env={"XDG_DATA_HOME": str(tmp_path / "no-store-here")})  # no store at all
    assert "against builtin:cis" in result.stdout.splitlines()[0]
    # fail_on warn from the file; without vulnerability data cis warns (CIS 4.4)
    assert result.returncode == 1, result.stdout
    assert any(line.startswith("WARN ") and "vulnerability data" in line for line in result.stdout.splitlines())
    assert _gate("--fail-on", "stop", cwd=tmp_path).returncode == 0  # the flag wins over the file


def test_could_not_decide(images: dict[str, OciImage], tmp_path: Path) -> None:
    missing = f"oci-dir:{tmp_path / 'nothing-here'}"
    result = _gate(missing, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("ci-gate: error: ") and result.stderr.count("\n") == 1
    result = _gate(missing, "--on-error", "pass", cwd=tmp_path)
    assert result.returncode == 0
    assert "could NOT decide" in result.stderr
    result = _gate(missing, cwd=tmp_path, env={"CI_GATE_ON_ERROR": "pass"})
    assert result.returncode == 0
    bad_choice = _gate(f"oci-dir:{images['good'].path}", "--fail-on", "sometimes", cwd=tmp_path)
    assert bad_choice.returncode == 2 and "fail-on 'sometimes' is not valid" in bad_choice.stderr


def test_allowlist_written_for_the_reported_trigger_ids(images: dict[str, OciImage], tmp_path: Path) -> None:
    report = tmp_path / "first.json"
    _gate(f"oci-dir:{images['bad'].path}", "--policy", "builtin:dod", "--json", str(report), cwd=tmp_path)
    findings = json.loads(report.read_text())["evaluations"][0]["details"]["findings"]
    stops = [f for f in findings if f["action"] == "stop"]
    assert stops
    policy = yaml.safe_load(subprocess.run([sys.executable, "-m", "ci_gate.cli", "policy", "show", "builtin:dod"],
                                           capture_output=True, text=True, check=True).stdout)
    policy["allowlists"][0]["items"] = [
        {"id": f"waiver-{n}", "gate": f["gate"], "trigger_id": f["trigger_id"], "expires_on": "2099-01-01T00:00:00Z",
         "reason": "accepted for the test", "approved_by": "ISSO"} for n, f in enumerate(stops)]
    custom = tmp_path / "policy.yaml"
    custom.write_text(yaml.safe_dump(policy))
    second = tmp_path / "second.json"
    result = _gate(f"oci-dir:{images['bad'].path}", "--policy", str(custom), "--json", str(second), cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    evaluation = json.loads(second.read_text())["evaluations"][0]
    allowlisted = [f for f in evaluation["details"]["findings"] if f["allowlisted"]]
    assert len(allowlisted) == len(stops)
    assert allowlisted[0]["allowlist_match"]["approved_by"] == "ISSO"
    assert result.stdout.splitlines()[-1].startswith("WARN: the image may be pushed")
    assert f"{len(stops)} findings covered by exceptions (--verbose lists them)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("pack", "code", "fired", "not_fired"), [
    ("dod", 1, {"dod-2.3-setuid-setgid", "dod-2.6-healthcheck", "dod-ironbank-oci-labels"},
     {"dod-2.2-non-root-user", "dod-2.2-dockerfile-user", "dod-2.5-privileged-ports", "dod-2.1-ssh-server"}),
    ("cis", 0, {"cis-4.8-setuid", "cis-4.6-healthcheck"}, {"cis-4.1-user", "cis-4.10-secret-files"}),
    ("default", 0, {"default-healthcheck"}, {"default-root-user", "default-ssh-port", "default-secrets-in-files"}),
])
def test_debian_app_image_under_each_pack(debian_app_oci: OciImage, analysis_cache: Path, tmp_path: Path, pack: str,
                                          code: int, fired: set[str], not_fired: set[str]) -> None:
    report = tmp_path / "evaluation.json"
    result = _gate(f"oci-dir:{debian_app_oci.path}", "--policy", f"builtin:{pack}", "--json", str(report),
                   cwd=tmp_path, env={"CI_GATE_CACHE_DIR": str(analysis_cache)}, cache=True)
    assert result.returncode == code, result.stdout + result.stderr
    document: dict[str, Any] = json.loads(report.read_text())
    rules = {f["rule_id"] for f in document["evaluations"][0]["details"]["findings"]}
    assert fired <= rules
    assert not (not_fired & rules)
    setuid = [f for f in document["evaluations"][0]["details"]["findings"] if f["trigger"] == "suid_or_guid_set"]
    if pack != "default":  # the default pack has no setuid rule
        assert any(f["path"] == "/usr/bin/passwd" and f["origin"] == "base" for f in setuid)


def test_settings_precedence_flags_env_file_default() -> None:
    config = {"policy": "builtin:cis", "fail-on": "warn", "json": "from-file.json"}
    environment = {"CI_GATE_FAIL_ON": "never", "CI_GATE_JUNIT": "env.xml", "CI_GATE_NO_CACHE": "true"}
    settings = resolve({"fail-on": "stop", "image": "x"}, environment, config)
    assert settings["fail-on"] == "stop"  # flag beats variable and file
    assert settings["policy"] == "builtin:cis"  # file beats default
    assert settings["json"] == "from-file.json"
    assert settings["junit"] == "env.xml"  # variable
    assert settings["no-cache"] is True
    assert settings["backend"] == "local"  # default
    assert resolve({}, {"CI_GATE_FAIL_ON": "never"}, config)["fail-on"] == "never"  # variable beats file
    with pytest.raises(UsageError, match="backend 'cloud' is not valid"):
        resolve({"backend": "cloud"}, {}, {})


def test_config_file_errors(tmp_path: Path) -> None:
    (tmp_path / ".ci-gate.yaml").write_text("polcy: builtin:dod\n")
    with pytest.raises(UsageError, match="unknown setting 'polcy' \\(did you mean 'policy'\\?\\)"):
        load_config_file(tmp_path)
    (tmp_path / ".ci-gate.yaml").write_text("gate:\n  fail_on: warn\n  vuln_db: db.sqlite\n")
    assert load_config_file(tmp_path) == {"fail-on": "warn", "vuln-db": "db.sqlite"}
    (tmp_path / ".ci-gate.yaml").write_text("policy: [\n")
    with pytest.raises(UsageError, match=r"\.ci-gate\.yaml:2:1: invalid YAML"):
        load_config_file(tmp_path)


def test_reports_and_ci_outputs_are_written(images: dict[str, OciImage], tmp_path: Path) -> None:
    outputs = tmp_path / "github_output"
    summary = tmp_path / "summary.md"
    result = _gate(f"oci-dir:{images['bad'].path}", "--policy", "builtin:dod", "--junit", str(tmp_path / "j.xml"),
                   "--sarif", str(tmp_path / "s.sarif"), "--json", str(tmp_path / "e.json"), cwd=tmp_path,
                   env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 1
    wrote = next(line for line in result.stdout.splitlines() if line.startswith("wrote "))
    for name in ("j.xml", "s.sarif", "e.json"):
        assert (tmp_path / name).stat().st_size > 0
        assert str(tmp_path / name) in wrote
    assert "STOP" in outputs.read_text()
    assert summary.read_text().strip()
