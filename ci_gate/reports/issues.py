"""Findings that share one cause, merged into one issue naming every rule it satisfies (port 22
exposed fires `exposed_ports`, `privileged_ports` and `ssh_daemon`), with a title people recognise."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ci_gate.model import ACTIONS, Analysis, Finding
from ci_gate.reports.advice import LABEL_MISSING, PACKAGE_DENIED, SSH_PACKAGE, base_note, port_of, recommendation
from ci_gate.reports.common import finding_text, is_secret, secret_for, worst_first

_CATEGORY_PLURAL = {
    "secret": "secrets",
    "port": "ports",
    "root user": "root user",
    "SSH server": "SSH servers",
    "vulnerability": "vulnerabilities",
    "package": "packages",
    "setuid file": "setuid files",
    "label": "labels",
    "healthcheck": "healthcheck",
    "base image": "base image",
    "file": "files",
    "account": "accounts",
    "volume": "volumes",
    "build step": "build steps",
    "instruction": "instructions",
    "vulnerability-data problem": "vulnerability-data problems",
    "other": "other",
}


def category_name(category: str, count: int) -> str:
    return category if count == 1 else _CATEGORY_PLURAL.get(category, category + "s")


def cause_of(finding: Finding, analysis: Analysis) -> tuple[str, str]:
    """(cause key, category): findings with the same key are one problem with one fix."""
    key = (finding.gate, finding.trigger)
    vulnerability = finding.vulnerability
    if vulnerability is not None:
        return (f"vuln:{vulnerability.id}:{vulnerability.package_name}:{vulnerability.package_version}",
                "vulnerability")
    if is_secret(finding) or finding.gate == "embedded_secrets":
        secret = secret_for(analysis, finding) if is_secret(finding) else None
        where = f"{secret.path}:{secret.line}" if secret else f"{finding.path}:{finding.trigger_id}"
        return f"secret:{where}", "secret"
    port = port_of(finding)
    if port == 22:
        return "ssh-server", "SSH server"  # port 22 exposed, sshd, openssh-server: one SSH server to remove
    if port is not None:
        return f"port:{port}", "port"
    if key in (("dockerfile", "effective_user"), ("image_user", "runs_as_root")):
        return "user:root", "root user"
    if key == ("ssh_daemon", "present"):
        return "ssh-server", "SSH server"
    if key == ("packages", "denylist"):
        denied = PACKAGE_DENIED.search(finding.message)
        name = (denied.group(1) if denied else finding.trigger_id).split("-")[0]
        if name in ("openssh", "dropbear", "tinysshd"):
            return "ssh-server", "SSH server"
        return f"package:{denied.group(1) if denied else finding.trigger_id}", "package"
    if key == ("files", "suid_or_guid_set"):
        return f"setuid:{finding.path}", "setuid file"
    healthcheck_instruction = key == ("dockerfile", "instruction") and "'HEALTHCHECK'" in finding.message
    if key == ("healthcheck", "missing") or healthcheck_instruction:
        return "healthcheck", "healthcheck"
    if key == ("image_labels", "required"):
        label = LABEL_MISSING.search(finding.message)
        return f"label:{label.group(1) if label else finding.trigger_id}", "label"
    if finding.gate == "ancestry" or (key == ("dockerfile", "instruction") and "'FROM'" in finding.message):
        return f"base:{finding.trigger}:{finding.trigger_id}", "base image"
    if finding.gate == "vulnerabilities":
        return f"vulndata:{finding.trigger}", "vulnerability-data problem"
    if finding.gate == "volumes":
        return f"volume:{finding.path}", "volume"
    if finding.gate in ("accounts", "passwd_file"):
        return f"account:{finding.trigger}:{finding.trigger_id}", "account"
    if finding.gate == "build_instructions":
        return f"build:{finding.trigger}:{finding.trigger_id}", "build step"
    if finding.gate == "files":
        return f"file:{finding.trigger}:{finding.path or finding.trigger_id}", "file"
    if finding.gate == "dockerfile":
        return f"instruction:{finding.trigger}:{finding.trigger_id}", "instruction"
    return f"{finding.gate}:{finding.trigger}:{finding.trigger_id}", "other"


@dataclass(frozen=True)
class Issue:
    """One problem to fix: the findings that share a cause, worst first."""

    key: str
    category: str
    """What kind of problem: secret, port, root user, vulnerability, package… (for counts)."""
    action: str
    """The worst effective action among the findings."""
    findings: tuple[Finding, ...]

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def rules(self) -> tuple[str, ...]:
        """Every policy rule this one problem fires, in order, without repeats."""
        seen: list[str] = []
        for finding in self.findings:
            rule = finding.rule_id or f"{finding.gate}/{finding.trigger}"
            if rule not in seen:
                seen.append(rule)
        return tuple(seen)

    @property
    def controls(self) -> tuple[str, ...]:
        seen: list[str] = []
        for finding in self.findings:
            for control in finding.controls:
                if control not in seen:
                    seen.append(control)
        return tuple(seen)


def issues(findings: Iterable[Finding], analysis: Analysis) -> list[Issue]:
    """Findings grouped by cause (allowlisted findings stay apart from the ones in force), worst first."""
    groups: dict[tuple[str, bool], list[Finding]] = {}
    categories: dict[tuple[str, bool], str] = {}
    for finding in worst_first(findings):
        key, category = cause_of(finding, analysis)
        group = (key, finding.allowlisted is not None)
        groups.setdefault(group, []).append(finding)
        categories.setdefault(group, category)
    result = [
        Issue(key=key, category=categories[(key, allowlisted)],
              action=_worst(f.effective_action for f in members), findings=tuple(members))
        for (key, allowlisted), members in groups.items()
    ]
    rank = {"STOP": 0, "WARN": 1, "GO": 2}
    return sorted(result, key=lambda issue: rank.get(issue.action, 3))


def _worst(actions: Iterable[str]) -> str:
    worst = "GO"
    for action in actions:
        if ACTIONS.index(action.upper()) > ACTIONS.index(worst):
            worst = action.upper()
    return worst


def issue_recommendation(issue: Issue, analysis: Analysis) -> str:
    """The fix for a merged issue: a rule's own recommendation first, else the most specific built-in one."""
    for finding in issue.findings:
        if finding.recommendation.strip():
            return recommendation(finding, analysis)
    if issue.key == "ssh-server":
        return _ssh_advice(issue, analysis)
    return recommendation(issue.first, analysis)


def _ssh_advice(issue: Issue, analysis: Analysis) -> str:
    """One fix for every sign of an SSH server: the package, the daemon, port 22."""
    packages = []
    for finding in issue.findings:
        match = SSH_PACKAGE.search(finding.message) or PACKAGE_DENIED.search(finding.message)
        if match:
            packages.append(match.group(1))
    parts = []
    if packages or any(f.path for f in issue.findings if port_of(f) != 22):
        name = packages[0] if packages else "the SSH server"
        parts.append(f"remove {name} (or `apt-get purge -y {name}`)")
    if any(port_of(f) == 22 for f in issue.findings):
        line = next((f.dockerfile_line for f in issue.findings if port_of(f) == 22 and f.dockerfile_line), None)
        parts.append("22 from EXPOSE" + (f" (Dockerfile line {line})" if line else ""))
    base = base_note(issue.first, analysis) if packages else ""
    text = " and ".join(parts) if parts else "remove the SSH server"
    return f"{text[:1].upper()}{text[1:]}{base}; use `docker exec` / `kubectl exec` instead of SSH."


def category_counts(items: Sequence[Issue]) -> str:
    """`2 secrets, 1 port`: issues counted by category, most first."""
    tally: dict[str, int] = {}
    for issue in items:
        tally[issue.category] = tally.get(issue.category, 0) + 1
    ordered = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {category_name(category, count)}" for category, count in ordered)


def issue_title(issue: Issue, analysis: Analysis) -> str:
    """What the problem is, in a few words a developer recognises (not the gate and trigger names)."""
    finding = issue.first
    kind, _, detail = issue.key.partition(":")
    if kind == "vuln" and finding.vulnerability is not None:
        vulnerability = finding.vulnerability
        return f"{vulnerability.id} in {vulnerability.package_name} {vulnerability.package_version}".strip()
    if kind == "secret":
        secret = secret_for(analysis, finding) if is_secret(finding) else None
        if secret is not None:
            return f"Secret {secret.rule} in {secret.path}" + (f":{secret.line}" if secret.line else "")
        return f"Secret in {finding.path or finding.trigger}"
    if kind == "port":
        port = int(detail)
        if port == 22:
            return "Port 22 (SSH) exposed"
        if port < 1024 and any(f.trigger == "privileged_ports" for f in issue.findings):
            return f"Privileged port {port} exposed"
        return f"Port {port} exposed"
    if kind == "user":
        return "Runs as root"
    if kind == "ssh-server":
        parts = []
        for member in issue.findings:
            package = SSH_PACKAGE.search(member.message) or PACKAGE_DENIED.search(member.message)
            if port_of(member) == 22:
                parts.append("port 22")
            elif package:
                parts.append(package.group(1))
            elif member.path:
                parts.append(member.path)
        return "SSH server" + (f" ({', '.join(dict.fromkeys(parts))})" if parts else "")
    if kind == "package":
        return f"Denied package {detail}"
    if kind == "setuid":
        return f"setuid/setgid file {detail}"
    if kind == "healthcheck":
        return "No HEALTHCHECK"
    if kind == "label":
        return f"Missing label {detail}"
    if kind == "volume":
        return f"VOLUME on {detail}"
    if kind == "vulndata":
        if finding.trigger == "stale_feed_data":
            return "Vulnerability data is out of date"
        return "No vulnerability data for the image's distribution"
    # Anything else: the trigger's own message says best what fired (redacted, never a secret).
    text = finding_text(analysis, finding)
    return text if len(text) <= 160 else text[:159] + "…"
