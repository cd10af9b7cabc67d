"""What every report format shares: image naming, stable keys, ordering, severity scales, redaction.

Reports are pure functions of (Evaluation, Analysis). The helpers here make sure that all of them
name the image the same way, compute the same stable fingerprint for a finding (so GitHub code
scanning, GitLab Code Quality and the comment agree run after run), order findings worst first, and
never print a secret: a secret finding is shown only as rule, path, line and a redacted preview.
"""

from __future__ import annotations

import functools
import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from ci_gate.model import (
    ACTIONS,
    SEVERITY_ORDER,
    Analysis,
    Evaluation,
    ExpiredException,
    Finding,
    RuleOutcome,
    SecretFinding,
)
from ci_gate.redaction import redact_message
from ci_gate.sources.schemes import LOCAL_PREFIXES, SCHEMES

TOOL_NAME = "ci-gate"


SEVERITY_SCORE = {"critical": 9.5, "high": 8.0, "medium": 5.5, "low": 2.0, "negligible": 0.5, "unknown": 0.0}
"""A numeric score for a severity when no CVSS score is known (the values trivy and grype use)."""

ACTION_RANK = {action: rank for rank, action in enumerate(reversed(ACTIONS))}
"""STOP 0, WARN 1, GO 2: worst first."""

SECRET_GATES = frozenset({"secret_scans"})
"""Gates whose findings are about secrets: described by rule/path/line/preview in ci-gate's own reports."""


# --- the image -----------------------------------------------------------------------------------


def image_display_name(evaluation: Evaluation, analysis: Analysis) -> str:
    """What a human calls the image: the evaluated tag, else the reference the user gave."""
    return evaluation.tag or analysis.identity.reference


def image_key(evaluation: Evaluation, analysis: Analysis) -> str:
    """The image's repository without tag, digest or source scheme: stable across builds.

    Used in fingerprints, SARIF categories and comment markers: a new tag or digest of the same
    image must update the same alerts and comment, never create new ones (trivy#2357).
    """
    identity = analysis.identity
    # A tag naming a local file (oci-dir:/tmp/…) is the weakest name: prefer the repository the
    # archive itself records (docker-archive RepoTags) over a path that changes from job to job.
    tag = evaluation.tag if evaluation.tag and not evaluation.tag.startswith(LOCAL_PREFIXES) else ""
    candidates = [tag, *identity.repo_tags, *identity.repo_digests, evaluation.tag, identity.reference]
    for candidate in candidates:
        if candidate and candidate != "-":
            return strip_reference(candidate)
    return "image"


_SCHEME_PREFIXES = (*(scheme.prefix for scheme in SCHEMES), "oci:")
"""Every scheme, and syft's `oci:` a reference may still carry."""


@functools.lru_cache(maxsize=256)
def strip_reference(reference: str) -> str:
    """`registry:host:5000/team/app:1.2@sha256:…` → `host:5000/team/app`; archives keep their path."""
    text = reference.strip()
    for scheme in _SCHEME_PREFIXES:
        if text.startswith(scheme):
            text = text[len(scheme) :]
            break
    text = text.split("@", 1)[0]
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text = text[:colon]
    return text or "image"


def image_slug(evaluation: Evaluation, analysis: Analysis) -> str:
    """`image_key` reduced to `[A-Za-z0-9._-]`, for file paths, SARIF categories and test names."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", image_key(evaluation, analysis)).strip("-.")
    return slug or "image"


def image_path_uri(evaluation: Evaluation, analysis: Analysis, path: str) -> str:
    """A stable repository-relative URI standing for a path inside the image (no tag, no digest)."""
    inner = posixpath.normpath("/" + (path or "")).lstrip("/")
    uri = f"image/{image_slug(evaluation, analysis)}"
    if inner and inner != ".":
        uri += "/" + inner
    return quote(uri, safe="/._-~")


def dockerfile_uri(analysis: Analysis) -> str | None:
    """The Dockerfile as a repository-relative path, when the user gave the real one.

    A guessed Dockerfile (rebuilt from history) is no file in the repository: None then. An absolute
    path is kept relative to its last components that look like a checkout (we cannot know the
    repository root in a pure function), so it stays stable across runners.
    """
    dockerfile = analysis.dockerfile
    if dockerfile.mode != "actual" or not dockerfile.path:
        return None
    path = dockerfile.path.replace("\\", "/")
    if path.startswith("/"):
        path = posixpath.basename(path)
    path = posixpath.normpath(path)
    if path.startswith("../"):
        path = posixpath.basename(path)
    return path


# --- findings ------------------------------------------------------------------------------------


def finding_fingerprint(evaluation: Evaluation, analysis: Analysis, finding: Finding) -> str:
    """A stable hex id of one finding: image repository + gate + trigger + trigger id + rule id.

    No tag, digest, line number or message goes in, so the same problem in the next build of the
    image keeps its identity (and its dismissal) in GitHub and GitLab.
    """
    parts = (
        image_key(evaluation, analysis),
        finding.gate,
        finding.trigger,
        finding.trigger_id,
        finding.rule_id,
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def is_secret(finding: Finding) -> bool:
    return finding.gate.lower() in SECRET_GATES


def severity_of(finding: Finding) -> str:
    """The vulnerability severity (lower case), or `unknown` for non-vulnerability findings."""
    if finding.vulnerability is None:
        return "unknown"
    severity = finding.vulnerability.severity.lower()
    return severity if severity in SEVERITY_ORDER else "unknown"


def security_score(finding: Finding) -> float | None:
    """CVSS base score when known, else a score for the severity; None for non-vulnerabilities."""
    vulnerability = finding.vulnerability
    if vulnerability is None:
        return None
    if vulnerability.cvss_score is not None and 0.0 < vulnerability.cvss_score <= 10.0:
        return float(vulnerability.cvss_score)
    return SEVERITY_SCORE[severity_of(finding)]


def sort_key(finding: Finding) -> tuple[int, int, float, int, str, str, str]:
    """Worst first: effective action, then not-allowlisted, then score, then a stable tiebreak."""
    score = security_score(finding)
    return (
        ACTION_RANK.get(finding.effective_action.upper(), 3),
        1 if finding.allowlisted else 0,
        -(score if score is not None else 0.0),
        SEVERITY_ORDER.index(severity_of(finding)),
        finding.gate,
        finding.trigger_id,
        finding.rule_id,
    )


def worst_first(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=sort_key)


def rule_of(finding: Finding, rule_id: str, fired: int = 0) -> RuleOutcome:
    """The rule a finding came from, as far as the finding tells: for a finding of a rule the evaluation
    did not list (a backend that reports findings but not the rules it checked)."""
    return RuleOutcome(rule_id=rule_id, gate=finding.gate, trigger=finding.trigger, action=finding.action,
                       controls=finding.controls, fired=fired, recommendation=finding.recommendation)


def expired_for(evaluation: Evaluation, finding: Finding) -> ExpiredException | None:
    """The expired exception that would have covered this finding, if any."""
    for expired in evaluation.expired_exceptions:
        if expired.gate.lower() == finding.gate.lower() and _trigger_matches(
            expired.trigger_id, finding.trigger_id
        ):
            return expired
    return None


def _trigger_matches(pattern: str, trigger_id: str) -> bool:
    if pattern == trigger_id:
        return True
    if "*" in pattern:
        regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
        return re.match(regex, trigger_id) is not None
    return False


@dataclass(frozen=True)
class Counts:
    """How many findings ended in each effective action."""

    stop: int
    """Findings whose effective action is STOP."""
    warn: int
    """Findings whose effective action is WARN."""
    allowlisted: int
    """Findings an exception in force turned into GO."""
    expired: int
    """Exceptions that expired (their findings count as STOP/WARN again)."""
    total: int
    """All fired findings."""


def counts(evaluation: Evaluation) -> Counts:
    findings = evaluation.findings
    return Counts(
        stop=sum(1 for f in findings if f.effective_action.upper() == "STOP"),
        warn=sum(1 for f in findings if f.effective_action.upper() == "WARN"),
        allowlisted=sum(1 for f in findings if f.allowlisted),
        expired=len(evaluation.expired_exceptions),
        total=len(findings),
    )


# --- redaction -----------------------------------------------------------------------------------

def redact(text: str) -> str:
    """Mask anything in a free text that looks like a credential (defence in depth for messages);
    the one definition is `ci_gate.redaction`, shared with the analyzer."""
    return redact_message(text)


def secret_for(analysis: Analysis, finding: Finding) -> SecretFinding | None:
    """The analysed secret a secret finding is about (matched by path, then line)."""
    candidates = [s for s in analysis.secrets if s.path == finding.path] if finding.path else []
    if not candidates:
        candidates = [s for s in analysis.secrets if s.path and s.path in finding.trigger_id]
    if len(candidates) > 1:
        # Several secrets in one file: the trigger message names the rule (Anchore's `regexp=NAME=REGEX`).
        named = [s for s in candidates if (s.regex and s.regex in finding.message) or s.rule in finding.message]
        candidates = named or candidates
    for secret in candidates:
        if finding.dockerfile_line is None or secret.line is None:
            return secret
    return candidates[0] if candidates else None


def secret_summary(analysis: Analysis, finding: Finding) -> str:
    """The only way a secret finding is ever described: rule, path, line, redacted preview."""
    secret = secret_for(analysis, finding)
    if secret is None:
        where = finding.path or "(unknown path)"
        return f"secret ({finding.trigger}) found at {where}"
    where = secret.path + (f":{secret.line}" if secret.line else "")
    text = f"secret {secret.rule} found at {where}"
    if secret.deleted:
        text += " (deleted by a later layer, still shipped in the image)"
    if secret.preview:
        text += f": {redact(secret.preview)}"
    return text


_SECRET_FOUND = "Secret content search analyzer found regexp match in container: file={} regexp={}"
_SECRET_NOT_FOUND = re.compile(
    r"Secret content search analyzer did not find regexp match in container: filename_regex=.* "
    r"content_regex_name=.*"
)
_PASSWD_ENTRY = re.compile(r"(?P<user>[^\s:'=]+):(?P<password>[^:\s']*):(?P<ids>\d+:\d+:)")
_NO_PASSWORD = frozenset({"x", "*", "!", "!!", "!*", "*LK*", "*NP*", "", "****"})


def _is_engine_secret_message(analysis: Analysis, finding: Finding) -> bool:
    """True when a secret_scans message is exactly anchore-engine's: a path and a rule's NAME=REGEX."""
    if _SECRET_NOT_FOUND.fullmatch(finding.message):
        return True
    return any(
        finding.message == _SECRET_FOUND.format(s.path if s.path.startswith("/") else "/" + s.path, s.regex or s.rule)
        for s in analysis.secrets
    )


def _mask_password_hashes(text: str) -> str:
    """A passwd entry is no secret, but a password hash in its second field is: only that goes."""

    def mask(match: re.Match[str]) -> str:
        if match.group("password") in _NO_PASSWORD:
            return match.group(0)
        return f"{match.group('user')}:****:{match.group('ids')}"

    return _PASSWD_ENTRY.sub(mask, text)


def finding_message(analysis: Analysis, finding: Finding) -> str:
    """The message as anchore-engine prints it, wherever it holds no secret; else made safe.

    secret_scans: the engine's message names a path and a rule's NAME=REGEX, never the secret, so it
    is shown byte for byte when it is exactly that (anything else gets the rule/path/preview summary).
    passwd_file: the entry stays (`pentry=`), a password hash in it is masked. Other gates: the
    generic redaction, which would mangle those two (`/etc/passwd: pentry=...`, `SECRET_KEY=(?i)...`)."""
    gate = finding.gate.lower()
    if gate == "secret_scans":
        return finding.message if _is_engine_secret_message(analysis, finding) else secret_summary(analysis, finding)
    if gate == "passwd_file":
        return _mask_password_hashes(finding.message)
    return redact(finding.message)


def finding_text(analysis: Analysis, finding: Finding) -> str:
    """The finding's message as reports show it: a found secret as rule/path/line/preview, else the message."""
    if is_secret(finding) and secret_for(analysis, finding) is not None:
        return secret_summary(analysis, finding)
    # e.g. secret_scans with match_type notfound: the engine's "did not find" message, not a secret.
    return finding_message(analysis, finding)


def finding_title(finding: Finding) -> str:
    """A short label: `vulnerabilities/package: CVE-… in openssl 3.0.11` or `gate/trigger: trigger id`."""
    vulnerability = finding.vulnerability
    if vulnerability is not None:
        package = " ".join(p for p in (vulnerability.package_name, vulnerability.package_version) if p)
        return f"{vulnerability.id} in {package}" if package else vulnerability.id
    if is_secret(finding):
        return f"{finding.gate}/{finding.trigger}: {finding.path or 'secret'}"
    label = trigger_label(finding)
    return f"{finding.gate}/{finding.trigger}" + (f": {label}" if label else "")


_HASH_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}")


def trigger_label(finding: Finding) -> str:
    """The trigger id when it says something to a human (not Anchore's hash ids), else the path."""
    if finding.trigger_id and not _HASH_ID.fullmatch(finding.trigger_id):
        return redact(finding.trigger_id)
    return finding.path


def truncate(text: str, limit: int, marker: str = " … (truncated)") -> str:
    """At most `limit` characters, saying so when something was cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(marker), 0)] + marker
