"""Realistic evaluations built from model objects, shared by the report, publish and adapter tests.

`sample_evaluation()` is what a DoD-pack gate on an application image typically says: several
gates, STOP and WARN, an allowlisted vulnerability with reason/approver/expiry, an expired
exception, a secret finding (its full value must never appear in any report), vulnerabilities with
CVSS scores, and Dockerfile lines. `many_findings(n)` scales it for size tests and the benchmark.
"""

from __future__ import annotations

from ci_gate.model import (
    AllowlistMatch,
    Analysis,
    Distro,
    Dockerfile,
    DockerfileInstruction,
    Evaluation,
    ExpiredException,
    Finding,
    ImageConfig,
    ImageIdentity,
    Layer,
    RuleOutcome,
    SecretFinding,
    VulnerabilityDetail,
)

IMAGE = "registry.example.com/team/app:1.4.2"
DIGEST = "sha256:" + "ab" * 32
SECRET_VALUE = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
"""The full secret planted in the image: it must appear in no report."""
AWS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"


def sample_analysis(dockerfile_path: str = "Dockerfile", digest: str = DIGEST, tag: str = IMAGE) -> Analysis:
    identity = ImageIdentity(
        reference=f"registry:{tag}",
        scheme="registry",
        manifest_digest=digest,
        config_digest="sha256:" + "cd" * 32,
        repo_tags=(tag,),
        repo_digests=(f"{tag.rsplit(':', 1)[0]}@{digest}",),
        platform="linux/amd64",
        layers=(
            Layer(
                0,
                "sha256:" + "01" * 32,
                "sha256:" + "11" * 32,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                30_000_000,
                "debootstrap",
                base=True,
            ),
            Layer(
                1,
                "sha256:" + "02" * 32,
                "sha256:" + "12" * 32,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                2_000_000,
                "COPY app /app",
                base=False,
            ),
        ),
    )
    dockerfile = Dockerfile(
        mode="actual",
        path=dockerfile_path,
        instructions=(
            DockerfileInstruction("FROM", "debian:bookworm", 1),
            DockerfileInstruction("ENV", f"AWS_SECRET_ACCESS_KEY={SECRET_VALUE}", 3),
            DockerfileInstruction(
                "RUN", "apt-get update && apt-get install -y openssh-server curl", 4, end_line=5
            ),
            DockerfileInstruction("EXPOSE", "22 8080", 6),
            DockerfileInstruction("COPY", "app /app", 7),
        ),
        base_image="debian:bookworm",
    )
    return Analysis(
        identity=identity,
        config=ImageConfig(user="", exposed_ports=("22/tcp", "8080/tcp")),
        distro=Distro(id="debian", version_id="12", name="Debian GNU/Linux", version_codename="bookworm"),
        secrets=(
            SecretFinding(
                rule="AWS_SECRET_ACCESS_KEY",
                where="file",
                path="/app/config/settings.ini",
                line=12,
                layer_index=1,
                preview="aws_secret_access_key = wJal****",
            ),
        ),
        dockerfile=dockerfile,
    )


def _vuln(
    vulnerability_id: str,
    package: str,
    version: str,
    severity: str,
    cvss: float | None,
    fixed: tuple[str, ...],
    action: str,
    rule_id: str,
    **extra: object,
) -> Finding:
    detail = VulnerabilityDetail(
        id=vulnerability_id,
        severity=severity,
        cvss_score=cvss,
        fixed_versions=fixed,
        package_name=package,
        package_version=version,
        package_type="deb",
        package_path="/var/lib/dpkg/status",
        url=f"https://security-tracker.debian.org/tracker/{vulnerability_id}",
        summary=f"{package}: a {severity} flaw",
    )
    return Finding(
        gate="vulnerabilities",
        trigger="package",
        trigger_id=f"{vulnerability_id}+{package}",
        action=action,
        message=f"{severity.upper()} Vulnerability found in os package type (dpkg) - {package} "
        f"({vulnerability_id} - {detail.url})",
        rule_id=rule_id,
        policy_id="dod",
        rule_set_id="dod-rules",
        controls=("NIST RA-5", "NIST SI-2"),
        path="/var/lib/dpkg/status",
        layer_index=0,
        origin="base",
        vulnerability=detail,
        **extra,  # type: ignore[arg-type]
    )


def sample_evaluation(tag: str = IMAGE, digest: str = DIGEST) -> Evaluation:
    findings = (
        Finding(
            gate="dockerfile",
            trigger="effective_user",
            trigger_id="root",
            action="STOP",
            message="User root found as effective user, which is not on the allowed list",
            rule_id="rule-user",
            policy_id="dod",
            controls=("NIST AC-6(10)", "DISA-CIDG 2.2", "CIS-DI 4.1"),
            dockerfile_line=None,
        ),
        Finding(
            gate="dockerfile",
            trigger="exposed_ports",
            trigger_id="22",
            action="STOP",
            message="Dockerfile exposes port (22) which is in policy file DENIEDPORTS list",
            rule_id="rule-ports",
            policy_id="dod",
            controls=("NIST CM-7(1)(b)", "DISA-CIDG 2.5"),
            dockerfile_line=6,
        ),
        Finding(
            gate="packages",
            trigger="denylist",
            trigger_id="openssh-server",
            action="STOP",
            message="Package is denylisted: openssh-server",
            rule_id="rule-sshd",
            policy_id="dod",
            controls=("NIST CM-7 a", "DISA-CIDG 2.1"),
            path="/var/lib/dpkg/status",
            layer_index=1,
            origin="app",
            dockerfile_line=4,
        ),
        Finding(
            gate="dockerfile",
            trigger="instruction",
            trigger_id="HEALTHCHECK",
            action="WARN",
            message="Dockerfile directive 'HEALTHCHECK' not found, matching condition 'not_exists' check",
            rule_id="rule-health",
            policy_id="dod",
            controls=("NIST SC-5", "DISA-CIDG 2.6", "CIS-DI 4.6"),
        ),
        Finding(
            gate="secret_scans",
            trigger="content_regex_checks",
            trigger_id="AWS_SECRET_ACCESS_KEY+/app/config/settings.ini",
            action="STOP",
            message=f"Secret search analyzer found regexp match in container: file=/app/config/settings.ini "
            f"regexp=AWS_SECRET_ACCESS_KEY value={SECRET_VALUE}",
            rule_id="rule-secrets",
            policy_id="dod",
            controls=("NIST IA-5(7)", "DISA-CIDG 2.18"),
            path="/app/config/settings.ini",
            layer_index=1,
            origin="app",
        ),
        Finding(
            gate="dockerfile",
            trigger="instruction",
            trigger_id="ENV AWS_SECRET_ACCESS_KEY",
            action="STOP",
            message=f"Dockerfile directive 'ENV' check 'like' matched against 'AWS_SECRET_ACCESS_KEY="
            f"{SECRET_VALUE}' with key id {AWS_KEY_ID}",
            rule_id="rule-env-secret",
            policy_id="dod",
            controls=("NIST CM-6 b", "DISA-CIDG 2.9"),
            dockerfile_line=3,
        ),
        _vuln(
            "CVE-2024-3094",
            "xz-utils",
            "5.6.0-1",
            "critical",
            10.0,
            ("5.6.1+really5.4.5-1",),
            "STOP",
            "rule-vuln-critical",
        ),
        _vuln(
            "CVE-2023-4911",
            "libc6",
            "2.36-9+deb12u1",
            "high",
            7.8,
            ("2.36-9+deb12u3",),
            "STOP",
            "rule-vuln-high",
            allowlisted=AllowlistMatch(
                allowlist_id="team-exceptions",
                allowlist_name="Team exceptions",
                item_id="glibc-waiver",
                reason="not reachable: no setuid binaries use GLIBC_TUNABLES",
                approved_by="isso@example.mil",
                expires_on="2099-12-31",
            ),
        ),
        _vuln("CVE-2023-5678", "openssl", "3.0.11-1~deb12u1", "medium", None, (), "WARN", "rule-vuln-medium"),
        _vuln("CVE-2022-0001", "zlib1g", "1:1.2.13.dfsg-1", "low", 3.1, (), "WARN", "rule-vuln-medium"),
    )
    rules = (
        RuleOutcome(
            "rule-user",
            "dockerfile",
            "effective_user",
            "STOP",
            policy_id="dod",
            controls=("NIST AC-6(10)", "DISA-CIDG 2.2", "CIS-DI 4.1"),
            params={"users": "root,0"},
            fired=1,
        ),
        RuleOutcome(
            "rule-ports",
            "dockerfile",
            "exposed_ports",
            "STOP",
            policy_id="dod",
            controls=("NIST CM-7(1)(b)", "DISA-CIDG 2.5"),
            params={"ports": "22,23"},
            fired=1,
        ),
        RuleOutcome(
            "rule-sshd",
            "packages",
            "denylist",
            "STOP",
            policy_id="dod",
            controls=("NIST CM-7 a", "DISA-CIDG 2.1"),
            params={"name": "openssh-server"},
            fired=1,
        ),
        RuleOutcome(
            "rule-health",
            "dockerfile",
            "instruction",
            "WARN",
            policy_id="dod",
            controls=("NIST SC-5", "DISA-CIDG 2.6", "CIS-DI 4.6"),
            params={"instruction": "HEALTHCHECK"},
            fired=1,
        ),
        RuleOutcome(
            "rule-env-secret",
            "dockerfile",
            "instruction",
            "STOP",
            policy_id="dod",
            controls=("NIST CM-6 b", "DISA-CIDG 2.9"),
            params={"instruction": "ENV"},
            fired=1,
        ),
        RuleOutcome(
            "rule-add",
            "dockerfile",
            "instruction",
            "STOP",
            policy_id="dod",
            controls=("NIST CM-7 a", "DISA-CIDG 2.4", "CIS-DI 4.9"),
            params={"instruction": "ADD"},
            fired=0,
            description="No ADD instruction (use COPY)",
        ),
        RuleOutcome(
            "rule-setuid",
            "files",
            "suid_or_guid_set",
            "STOP",
            policy_id="dod",
            controls=("NIST AC-6(10)", "DISA-CIDG 2.3", "CIS-DI 4.8"),
            fired=0,
        ),
        RuleOutcome(
            "rule-secrets",
            "secret_scans",
            "content_regex_checks",
            "STOP",
            policy_id="dod",
            controls=("NIST IA-5(7)", "DISA-CIDG 2.18"),
            fired=1,
        ),
        RuleOutcome(
            "rule-vuln-critical",
            "vulnerabilities",
            "package",
            "STOP",
            policy_id="dod",
            controls=("NIST RA-5", "NIST SI-2"),
            params={"severity": "critical", "severity_comparison": ">="},
            fired=1,
        ),
        RuleOutcome(
            "rule-vuln-high",
            "vulnerabilities",
            "package",
            "STOP",
            policy_id="dod",
            controls=("NIST RA-5", "NIST SI-2"),
            params={"severity": "high", "severity_comparison": "="},
            fired=1,
        ),
        RuleOutcome(
            "rule-vuln-medium",
            "vulnerabilities",
            "package",
            "WARN",
            policy_id="dod",
            controls=("NIST RA-5",),
            params={"severity": "low", "severity_comparison": ">="},
            fired=2,
        ),
        RuleOutcome(
            "rule-sudo",
            "packages",
            "denylist",
            "STOP",
            policy_id="dod",
            controls=("NIST CM-7 a", "DISA-CIDG 2.12"),
            params={"name": "sudo"},
            fired=0,
        ),
    )
    return Evaluation(
        image_digest=digest,
        tag=tag,
        policy_id="dod",
        policy_name="DoD container image (DISA CIDG §2)",
        final_action="STOP",
        final_action_reason="policy_evaluation",
        findings=findings,
        rules=rules,
        matched_mapping="default",
        expired_exceptions=(
            ExpiredException(
                allowlist_id="team-exceptions",
                item_id="ssh-temporary",
                gate="packages",
                trigger_id="openssh-server",
                expires_on="2026-01-31",
                reason="debugging access during migration",
                approved_by="ao@example.mil",
            ),
        ),
        evaluated_at="2026-11-29T02:30:00Z",
    )


def compliant_evaluation(tag: str = "registry.example.com/team/app:1.4.3") -> Evaluation:
    """The same policy on a fixed image: every rule checked, nothing fired."""
    base = sample_evaluation(tag=tag)
    rules = tuple(
        RuleOutcome(
            r.rule_id,
            r.gate,
            r.trigger,
            r.action,
            r.policy_id,
            r.rule_set_id,
            r.controls,
            r.params,
            0,
            r.description,
        )
        for r in base.rules
    )
    return Evaluation(
        image_digest="sha256:" + "ef" * 32,
        tag=tag,
        policy_id=base.policy_id,
        policy_name=base.policy_name,
        final_action="GO",
        final_action_reason="policy_evaluation",
        rules=rules,
        evaluated_at=base.evaluated_at,
    )


def many_findings(count: int, tag: str = IMAGE) -> Evaluation:
    """`count` vulnerability findings (distinct CVE and package), severities and actions mixed."""
    base = sample_evaluation(tag=tag)
    severities = (
        ("critical", 9.8, "STOP"),
        ("high", 7.5, "STOP"),
        ("medium", 5.3, "WARN"),
        ("low", 2.1, "WARN"),
    )
    findings = []
    for number in range(count):
        severity, score, action = severities[number % 4]
        findings.append(
            _vuln(
                f"CVE-2025-{10000 + number}",
                f"package{number % 700}",
                f"1.{number % 13}-1",
                severity,
                score,
                (f"1.{number % 13}-2",) if number % 3 else (),
                action,
                f"rule-vuln-{severity}",
            )
        )
    return Evaluation(
        image_digest=base.image_digest,
        tag=tag,
        policy_id=base.policy_id,
        policy_name=base.policy_name,
        final_action="STOP",
        final_action_reason="policy_evaluation",
        findings=tuple(findings),
        rules=base.rules,
        evaluated_at=base.evaluated_at,
    )
