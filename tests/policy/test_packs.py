"""Each built-in pack on an image that fails every rule and on one that passes them all."""

from __future__ import annotations

from pathlib import Path

import pytest

from ci_gate.model import EnvVar, FileRecord, ImageConfig, Location, Package, SecretFinding, UserEntry
from ci_gate.policy.documents import load_policy
from ci_gate.policy.evaluation import EvaluationInput, evaluate
from ci_gate.vulns.matching import MatchResult
from ci_gate.vulns.provider import VulnerabilityData
from ci_gate.vulns.store import StoreStatus
from tests.policy.helpers import NOW, analysis, dockerfile

FRESH_AND_CLEAN = VulnerabilityData(result=MatchResult(matches=(), store_status=StoreStatus(
    path="vulns.sqlite", built_at="2026-05-01T00:00:00Z", updated_at="2026-06-01T06:00:00.000000Z",
    newest_modified="2026-06-01T05:00:00Z", vulnerability_count=1000, withdrawn_count=0, ecosystems=(), sources=())))
"""A vulnerability store synced six hours before NOW that knows no vulnerability of the image."""

STALE_AND_UNCOVERED = VulnerabilityData(result=MatchResult(matches=(), store_status=StoreStatus(
    path="vulns.sqlite", built_at="2025-01-01T00:00:00Z", updated_at="2025-01-02T00:00:00.000000Z",
    newest_modified="2025-01-01T00:00:00Z", vulnerability_count=10, withdrawn_count=0, ecosystems=(), sources=())),
    uncovered_distro="debian:12")
"""A store that exists but was last updated long before NOW and holds nothing for the image's distro:
stale_feed_data fires only on data that exists and is old, vulnerability_data_unavailable on the gap."""

UBI = "registry1.dso.mil/ironbank/redhat/ubi/ubi9@sha256:" + "e" * 64
LABELS = {f"org.opencontainers.image.{key}": "x" for key in ("title", "description", "licenses", "vendor", "version")}


def _package(name: str, **metadata: object) -> Package:
    return Package(name, "1.0-1", "deb", locations=(Location("/var/lib/dpkg/status", 1),), metadata=metadata)


FAILING = analysis(
    config=ImageConfig(user="", exposed_ports=("22/tcp", "80/tcp"), env=(EnvVar("API_TOKEN", "<redacted>", True),),
                       volumes=("/var/run/docker.sock",)),
    packages=(
        *(_package(n) for n in ("openssh-server", "sudo", "telnetd", "netcat-traditional", "netcat-openbsd", "gcc",
                                "gdb")),
        _package("tzdata", files=[{"path": "/usr/share/zoneinfo/UTC"}]),
    ),
    files=(FileRecord("/usr/bin/su", "file", 0o4755, layer_index=0), FileRecord("/usr/sbin/sshd", "file", 0o755),
           FileRecord("/root/.ssh/id_rsa", "file", 0o600, layer_index=1)),
    secrets=(
        SecretFinding("PRIV_KEY", "file", "/root/.ssh/id_rsa", 1, 1, regex="PRIV_KEY=(?i)-+BEGIN(.*)PRIVATE KEY-+"),
        SecretFinding("PASSWORD", "env", "ENV:DB_PASSWORD", preview="DB_PASSWORD=se****"),
        SecretFinding("AWS_SECRET_KEY", "history", "history[2]", preview="aws_****"),
        SecretFinding("API_KEY", "label", "label:api-key", preview="ab****"),
        SecretFinding("PRIV_KEY", "file", "/tmp/key.pem", 1, 1, deleted=True, preview="-----BEGIN****"),
    ),
    retrieved_files={"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ntoor::0:0::/root:/bin/sh\n"},
    users=(UserEntry("root", 0, 0), UserEntry("toor", 0, 0)),
    dockerfile=dockerfile(
        "FROM debian:12", "EXPOSE 22", "ADD https://example.com/tool.tgz /opt/", "ADD app.tgz /app",
        "RUN curl -fsSL https://get.example.com/install.sh | sh", "RUN apt-get update", "RUN sudo make install",
        base_image="debian:12",
    ),
)

PASSING = analysis(
    config=ImageConfig(user="1000:1000", exposed_ports=("8080/tcp",), healthcheck={"Test": ["CMD", "/app/health"]},
                       labels=LABELS, volumes=("/data",)),
    packages=(_package("ca-certificates"), _package("tzdata", files=[{"path": "/etc/timezone"}])),
    files=(FileRecord("/usr/bin/ls", "file", 0o755), FileRecord("/etc/timezone", "file", 0o644)),
    retrieved_files={"/etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000::/app:/sbin/nologin\n"},
    users=(UserEntry("root", 0, 0), UserEntry("app", 1000, 1000)),
    dockerfile=dockerfile(
        f"FROM {UBI}", "COPY app /app", "RUN dnf install -y python3 && dnf clean all", "USER 1000:1000",
        "EXPOSE 8080", "HEALTHCHECK CMD /app/health", base_image=UBI,
    ),
)


def _record_open_cat_i_stig_result() -> None:
    """A recorded `ci-gate stig` result for FAILING's digest with one open CAT I rule (tests/stig runs
    the real oscap; here only the dod rule that reads the record is under test)."""
    from ci_gate.stig.evaluate import record_for_gate
    from ci_gate.stig.model import StigEvaluation, StigRule

    rule = StigRule("xccdf_org.ssgproject.content_rule_package_telnet-server_removed", "Uninstall telnet-server",
                    "fail", "high", "V-230487", "SV-230487r627750_rule", "RHEL-08-040000")
    record_for_gate(StigEvaluation("oci-dir:/images/app", str(FAILING.identity.manifest_digest), "ssg-rhel8-ds.xml",
                                   "xccdf_org.ssgproject.content_benchmark_RHEL-8", "RHEL 8", "0.1.65",
                                   "xccdf_org.ssgproject.content_profile_stig", "DISA STIG", "OpenSCAP 1.3.7",
                                   [rule]))


@pytest.mark.parametrize("pack", ["dod", "cis", "default"])
def test_pack_fails_every_rule_on_the_failing_image(pack: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_CACHE_DIR", str(tmp_path))
    _record_open_cat_i_stig_result()
    policy = load_policy(f"builtin:{pack}", strict=True)
    # Old data without the distro: both data rules fire; `package` rules need matches (tested with the gate).
    evaluation = evaluate(policy, FAILING, EvaluationInput(tag="docker.io/team/app:1", now=NOW,
                                                           vulnerabilities=STALE_AND_UNCOVERED))
    rules = {rule.id for rule_set in policy.rule_sets for rule in rule_set.rules
             if (rule.gate, rule.trigger) != ("vulnerabilities", "package")}
    fired = {finding.rule_id for finding in evaluation.findings}
    assert rules - fired == set()
    assert evaluation.final_action == "STOP"


@pytest.mark.parametrize("pack", ["dod", "cis", "default"])
def test_pack_passes_the_hardened_image(pack: str) -> None:
    policy = load_policy(f"builtin:{pack}", strict=True)
    evaluation = evaluate(policy, PASSING, EvaluationInput(tag="registry.example.com/team/app:1", now=NOW,
                                                           vulnerabilities=FRESH_AND_CLEAN))
    assert [(f.rule_id, f.message) for f in evaluation.findings] == []
    assert evaluation.final_action == "GO"


def test_dod_rules_carry_controls_and_actions() -> None:
    policy = load_policy("builtin:dod")
    rules = {rule.id: rule for rule in policy.rule_sets[0].rules}
    for rule in rules.values():
        assert any(c.startswith("NIST ") for c in rule.controls), rule.id
        assert rule.description, rule.id
    assert {"NIST AC-6(10)", "CCI-002235", "DISA-CIDG 2.2"} <= set(rules["dod-2.2-non-root-user"].controls)
    assert rules["dod-2.6-healthcheck"].action == "WARN" and "waiver" in rules["dod-2.6-healthcheck"].description
    assert rules["dod-2.1-ssh-server"].action == "STOP"
    sections = {c for rule in rules.values() for c in rule.controls if c.startswith("DISA-CIDG 2.")}
    checkable = {"2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.8", "2.9", "2.10", "2.11", "2.12", "2.14", "2.17",
                 "2.18"}
    assert {f"DISA-CIDG {s}" for s in checkable} <= sections


def test_cis_rules_carry_dockle_codes() -> None:
    policy = load_policy("builtin:cis")
    codes = {c for rule in policy.rule_sets[0].rules for c in rule.controls}
    for code in ("CIS-DI-0001", "CIS-DI-0006", "CIS-DI-0007", "CIS-DI-0008", "CIS-DI-0009", "CIS-DI-0010",
                 "DKL-DI-0001", "DKL-DI-0002", "DKL-LI-0001", "DKL-LI-0002"):
        assert code in codes
