"""How to fix a finding: the advice every report and the terminal give, written for the person who must
change the image.

- `recommendation(finding, analysis)`: the rule's own `recommendation` when the policy gives one, else
  the built-in advice for its gate and trigger, made concrete with what the finding knows (the port,
  the path, the layer and the build step that added it, the fixed version, whether the package came
  with the base image and which base that is).
- `RULE_ADVICE`: one general sentence per trigger of every gate (SARIF rule help, `policy gates`);
  a test checks that no trigger lacks one.
- `dockerfile_fix(finding, analysis)`: the Dockerfile line a finding maps to and a suggested
  replacement; `exact` ones can be applied as they are (a pull-request suggestion, SARIF `fixes`).
- `issues(...)`: findings that share one cause (port 22 exposed fires `exposed_ports`,
  `privileged_ports` and `ssh_daemon`) merged into one issue naming every rule it satisfies.
- `unchecked_rules(evaluation, analysis)`: rules that could not check anything (no vulnerability
  data, no base image, no Dockerfile), with the reason: never reported as a pass.

Every text here is built from redacted parts: a secret's value never reaches advice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ci_gate.model import ACTIONS, Analysis, DockerfileInstruction, Evaluation, Finding, RuleOutcome
from ci_gate.reports.common import finding_text, is_secret, redact, secret_for, worst_first

FIXING_GUIDE = "docs/fixing-findings.md"
"""The developer's guide every comment links to (a path in the ci-gate repository)."""
FIXING_GUIDE_URL = "https://github.com/ci-gate/ci-gate/blob/main/docs/fixing-findings.md"

NON_ROOT_USER = "10001:10001"
"""The user the advice suggests: a high uid no distribution assigns, as Iron Bank and Chainguard use."""

RULE_ADVICE: dict[tuple[str, str], str] = {
    ("always", "always"): "This rule fires for every image it maps to (a deliberate block): ask the policy owner "
    "whether the image may be allowed, then remove the rule or change the mapping.",
    ("dockerfile", "instruction"): "Change the Dockerfile instruction the rule names so it meets the rule's "
    "condition (add the missing instruction, or rewrite or remove the one that matched).",
    ("dockerfile", "effective_user"): f"Add `USER {NON_ROOT_USER}` after the last RUN of the Dockerfile (create the "
    "user first if the service needs a named one).",
    ("dockerfile", "exposed_ports"): "Remove the port from the EXPOSE line of the Dockerfile; the service must not "
    "listen on it.",
    ("dockerfile", "no_dockerfile_provided"): "Give ci-gate the Dockerfile the image was built from: "
    "`--dockerfile PATH`.",
    ("files", "content_regex_match"): "Remove or rewrite the matching content in the file, in the build step "
    "that adds it.",
    ("files", "name_match"): "Keep the file out of the image: add it to .dockerignore or delete it in the same "
    "RUN that creates it.",
    ("files", "attribute_match"): "Make the file's mode or checksum match what the rule expects, in the build step "
    "that adds it.",
    ("files", "suid_or_guid_set"): "Remove the setuid/setgid bit: `RUN chmod a-s PATH` in the Dockerfile (or "
    "`find / -xdev -perm /6000 -type f -exec chmod a-s {} +`), or remove the file.",
    ("licenses", "denylist_exact_match"): "Remove the package distributed under the denied license, or replace it "
    "with one under an allowed license.",
    ("licenses", "denylist_partial_match"): "Remove the package distributed under the denied license, or replace "
    "it with one under an allowed license.",
    ("malware", "scans"): "Remove the file the malware scanner matched, find how it got into the build (a "
    "dependency, a download), and rebuild from clean sources.",
    ("malware", "scan_not_run"): "ci-gate runs no malware scanner: evaluate with `--backend anchore` where one "
    "runs, or drop the rule.",
    ("stig", "rule_failed"): "Apply the rule's fix text from the SCAP content (shown with the finding, and in the "
    ".ckl written by `ci-gate stig --ckl`) in the Dockerfile, rebuild, and run `ci-gate stig` again; a rule that "
    "cannot apply to a container is allowlisted with its reason for the assessor.",
    ("stig", "not_evaluated"): "Run `ci-gate stig IMAGE` in the pipeline before the gate (it records the result "
    "for the image digest), or give the profile that matches the image's distribution with `--profile`.",
    ("metadata", "attribute"): "Change the image metadata the rule checks (size, architecture, OS, layer count…) "
    "so it meets the rule's condition.",
    ("npms", "newer_version_in_feed"): "Upgrade the npm package to its latest version (npm install NAME@latest).",
    ("npms", "unknown_in_feeds"): "Replace the npm package with one from the official npm registry.",
    ("npms", "version_not_in_feeds"): "Install a published version of the npm package from the official registry.",
    ("npms", "denylisted_name_version"): "Remove the denied npm package from package.json and rebuild.",
    ("npms", "feed_data_unavailable"): "This rule needs Anchore's npm feed: evaluate with `--backend anchore` or "
    "drop the rule.",
    ("packages", "required_package"): "Install the required package (at the required version) in the Dockerfile.",
    ("packages", "verify"): "Reinstall the package instead of editing or deleting its files, so the files match "
    "the package database.",
    ("packages", "denylist"): "Remove the package: do not install it, or `apt-get purge` / `apk del` it in the RUN "
    "that installs it; use a multi-stage build to keep build tools out of the runtime image.",
    ("passwd_file", "content_not_available"): "The image has no /etc/passwd: add one with the service's user "
    "(uid 10001) so the user can be checked.",
    ("passwd_file", "denylist_usernames"): "Remove the user from the image (`RUN userdel NAME`) or do not create it.",
    ("passwd_file", "denylist_userids"): "Remove the user with that uid, or give the account another uid.",
    ("passwd_file", "denylist_groupids"): "Remove the account with that gid, or give it another group.",
    ("passwd_file", "denylist_shells"): "Give the account a non-login shell: `RUN usermod -s /usr/sbin/nologin NAME`.",
    ("passwd_file", "denylist_full_entry"): "Remove or change the /etc/passwd entry the rule denies.",
    ("retrieved_files", "content_not_available"): "Add the file the rule expects to the image, or drop the rule.",
    ("retrieved_files", "content_regex"): "Change the file's content so it meets the rule's condition.",
    ("ruby_gems", "newer_version_found_in_feed"): "Upgrade the gem to its latest version (bundle update NAME).",
    ("ruby_gems", "not_found_in_feed"): "Replace the gem with one published on rubygems.org.",
    ("ruby_gems", "version_not_found_in_feed"): "Install a published version of the gem.",
    ("ruby_gems", "denylist"): "Remove the denied gem from the Gemfile and rebuild.",
    ("ruby_gems", "feed_data_unavailable"): "This rule needs Anchore's gem feed: evaluate with `--backend anchore` "
    "or drop the rule.",
    ("secret_scans", "content_regex_checks"): "Remove the credential in the layer that added it (deleting it in a "
    "later layer leaves it in the image), then rotate it: anyone who can pull the image has it. Pass secrets at "
    "run time, or at build time with `RUN --mount=type=secret`.",
    ("vulnerabilities", "package"): "Upgrade the package to the fixed version, or rebuild on a base image that has "
    "it; with no fix yet, remove the package or record a justified exception.",
    ("vulnerabilities", "stale_feed_data"): "Refresh the vulnerability data before gating: `ci-gate db update` "
    "(or `ci-gate db import` newer OSV exports).",
    ("vulnerabilities", "vulnerability_data_unavailable"): "Give ci-gate vulnerability data for the image's "
    "distribution: `--vuln-db PATH` (made by `ci-gate db import` or `ci-gate db update`).",
    ("vulnerabilities", "denylist"): "Upgrade the affected package to a version without the denied vulnerability.",
    ("distro", "deny"): "Rebuild on a supported release of the distribution (a newer base image).",
    ("ancestry", "allowed_base_image_digest"): "Build FROM an approved base image pinned by one of the allowed "
    "digests (`FROM name:tag@sha256:…`).",
    ("ancestry", "allowed_base_image_tag"): "Build FROM an approved base image (one matching the allowed tags, "
    "e.g. registry1.dso.mil/ironbank/…).",
    ("ancestry", "denylist_ancestor_image_digest"): "Move off the denied base image: build FROM another base.",
    ("ancestry", "denylist_ancestor_image_tag"): "Move off the denied base image: build FROM another base.",
    ("ancestry", "no_ancestors_analyzed"): "Tell ci-gate the base image: `--base-image REF` or `--dockerfile PATH`.",
    ("tag_drift", "packages_added"): "Check that the new package belongs in this release (a Dockerfile or lockfile "
    "change you meant); if not, remove it and rebuild.",
    ("tag_drift", "packages_removed"): "Check that the removed package is no longer needed by the application.",
    ("tag_drift", "packages_modified"): "Review the version change (release notes, vulnerabilities) before "
    "releasing under this tag, or pin the previous version.",
    ("tag_drift", "base_image_changed"): "Review the new base image (its digest and packages) before releasing; "
    "pin FROM by digest to change it only on purpose.",
    ("image_user", "runs_as_root"): f"Add `USER {NON_ROOT_USER}` after the last RUN of the Dockerfile (create the "
    "user first if the service needs a named one).",
    ("network_ports", "privileged_ports"): "Make the service listen on an unprivileged port (1024 or above, e.g. "
    "8080 instead of 80), EXPOSE that, and map it at deploy time.",
    ("healthcheck", "missing"): "Add `HEALTHCHECK CMD [\"/app/healthcheck\"]` before CMD (it exits 0 when healthy).",
    ("image_labels", "required"): "Add the missing labels to the Dockerfile: `LABEL NAME=\"value\"`.",
    ("ssh_daemon", "present"): "Do not ship an SSH server: remove the package (or do not install it) and do not "
    "EXPOSE 22; use `docker exec` / `kubectl exec` to get a shell.",
    ("build_instructions", "add_remote_url"): "Download the file in a pre-build step, verify its checksum, and "
    "COPY it into the image instead of ADD URL.",
    ("build_instructions", "pipe_to_shell"): "Download the script, verify its checksum or signature, then run it; "
    "never pipe curl or wget into a shell.",
    ("build_instructions", "remote_fetch"): "Fetch dependencies before the build (with checksums) and COPY them "
    "in, so the build runs offline.",
    ("build_instructions", "update_alone"): "Update and install in one RUN: `RUN apt-get update && apt-get install "
    "-y --no-install-recommends PKG && rm -rf /var/lib/apt/lists/*`.",
    ("build_instructions", "sudo"): "Drop sudo: RUN steps already run as the current USER; switch USER around the "
    "steps that need root.",
    ("build_instructions", "add_instead_of_copy"): "Use COPY instead of ADD for local files.",
    ("embedded_secrets", "env"): "Remove the secret from ENV (it is stored in the image config), rotate it, and "
    "pass it at run time from a secret store instead.",
    ("embedded_secrets", "history"): "Remove the secret from the RUN/ARG line (build history keeps it), rotate it, "
    "and use `RUN --mount=type=secret` at build time.",
    ("embedded_secrets", "label"): "Remove the secret from the LABEL, rotate it; labels are readable by anyone who "
    "can pull the image.",
    ("embedded_secrets", "deleted_file"): "Remove the file in the layer that added it, not in a later one (the "
    "deleted file still ships in the image), then rotate the credential.",
    ("volumes", "sensitive_path"): "Remove the VOLUME on the system path; mount what the service needs at deploy "
    "time, never system directories or the container runtime socket.",
    ("accounts", "duplicate_uids"): "Give every account its own uid.",
    ("accounts", "empty_password"): "Lock the account: `RUN passwd -l NAME` (or remove it).",
}
"""The general advice for every trigger of every gate, by (gate, trigger)."""

_GENERIC = "Change the image (or its Dockerfile) so the rule no longer fires, or record a justified exception."


def rule_advice(gate: str, trigger: str, own: str = "") -> str:
    """The rule's own recommendation, else the general advice for its gate and trigger."""
    return own.strip() or RULE_ADVICE.get((gate.lower(), trigger.lower()), _GENERIC)


# --- the base image --------------------------------------------------------------------------------


def base_image_name(analysis: Analysis) -> str:
    """The base image the Dockerfile builds FROM (without a digest), `` when none or `scratch`."""
    reference = analysis.dockerfile.base_image.strip()
    if not reference or reference.lower() == "scratch":
        return ""
    return reference


def from_scratch(analysis: Analysis) -> bool:
    return analysis.dockerfile.base_image.strip().lower() == "scratch"


def came_with_base(analysis: Analysis, finding: Finding) -> bool:
    """True when the evidence is in a layer of a real base image (never for `FROM scratch`)."""
    return finding.origin == "base" and not from_scratch(analysis)


def _layer_step(analysis: Analysis, layer_index: int | None) -> str:
    """`layer 1, COPY rootfs/ /` (the build step that made the layer, when known)."""
    if layer_index is None:
        return ""
    text = f"layer {layer_index}"
    layers = analysis.identity.layers
    if 0 <= layer_index < len(layers) and layers[layer_index].created_by:
        step = _clean_step(layers[layer_index].created_by)
        if step:
            text += f", `{step}`"
    return text


def _clean_step(created_by: str) -> str:
    """`/bin/sh -c #(nop) COPY dir:… in /` → `COPY dir:… in /`, cut short, redacted."""
    step = re.sub(r"^/bin/sh -c (#\(nop\)\s*)?", "", created_by.strip())
    step = step.replace(" # buildkit", "").strip()
    step = " ".join(step.split())
    if len(step) > 60:
        step = step[:57] + "…"
    return redact(step).replace("`", "'")


# --- advice for one finding -------------------------------------------------------------------------

_PORT = re.compile(r"\bport \(?(\d+)")
_LABEL = re.compile(r"label (\S+) is missing")
_PACKAGE_DENIED = re.compile(r"Package is (?:blacklisted|denylisted): (\S+)")
_SSH_PACKAGE = re.compile(r"SSH server package (\S+) (\S+)")
_USER = re.compile(r"^User (\S+) ")

_INSTALL = {
    "deb": "apt-get update && apt-get install -y --only-upgrade {name}",
    "apk": "apk add --no-cache --upgrade {name}",
    "rpm": "dnf upgrade -y {name}",
    "python": "pip install '{name}>={fixed}'",
    "npm": "npm install {name}@{fixed}",
    "gem": "bundle update {name}",
    "go-module": "go get {name}@v{fixed}",
    "java-archive": "bump {name} to {fixed} in the build file",
}


def port_of(finding: Finding) -> int | None:
    """The port a port finding is about (exposed_ports, privileged_ports, the SSH port)."""
    if finding.gate == "dockerfile" and finding.trigger == "exposed_ports" and finding.trigger_id.isdigit():
        return int(finding.trigger_id)
    if (finding.gate, finding.trigger) in (
        ("dockerfile", "exposed_ports"),
        ("network_ports", "privileged_ports"),
        ("ssh_daemon", "present"),
    ):
        match = _PORT.search(finding.message)
        if match:
            return int(match.group(1))
    return None


def recommendation(finding: Finding, analysis: Analysis) -> str:
    """What to change so this finding goes away: the rule's own text, else concrete built-in advice."""
    if finding.recommendation.strip():
        return redact(finding.recommendation.strip())
    key = (finding.gate, finding.trigger)
    if finding.trigger_id == "evaluation_error":  # the rule itself is broken, not the image
        return (f"Fix policy rule {finding.rule_id or key[0] + '/' + key[1]}: it could not be evaluated (see the "
                "message); until then it fails closed.")
    if finding.vulnerability is not None:
        return _vulnerability_advice(finding, analysis)
    if is_secret(finding) or key == ("embedded_secrets", "deleted_file"):
        return _secret_advice(finding, analysis)
    port = port_of(finding)
    if port is not None:
        return _port_advice(port, finding)
    if key in (("dockerfile", "effective_user"), ("image_user", "runs_as_root")):
        return _user_advice(finding, analysis)
    if key == ("ssh_daemon", "present"):
        package = _SSH_PACKAGE.search(finding.message)
        name = package.group(1) if package else "openssh-server"
        return (
            f"Remove {name} (do not install it, or `apt-get purge -y {name}` where it is installed)"
            f"{_base_note(finding, analysis)}; use `docker exec` / `kubectl exec` instead of SSH."
        )
    if key == ("packages", "denylist"):
        denied = _PACKAGE_DENIED.search(finding.message)
        name = denied.group(1) if denied else (finding.trigger_id or "the package")
        return (
            f"Do not install {name} (or `apt-get purge -y {name}` / `apk del {name}` in the RUN that installs it)"
            f"{_base_note(finding, analysis)}."
        )
    if key == ("files", "suid_or_guid_set") and finding.path:
        return f"`RUN chmod a-s {finding.path}`{_where_added(finding, analysis)}, or do not ship it."
    if key == ("image_labels", "required"):
        label = _LABEL.search(finding.message)
        if label:
            return f"Add `LABEL {label.group(1)}=\"…\"` to the Dockerfile."
    if key == ("volumes", "sensitive_path") and finding.path:
        return (
            f"Remove `VOLUME {finding.path}` from the Dockerfile; mount what the service needs at deploy time, "
            "never system directories or the runtime socket."
        )
    if key == ("accounts", "empty_password"):
        user = _USER.search(finding.message)
        name = user.group(1) if user else "NAME"
        return f"Lock the account: `RUN passwd -l {name}` (or remove it)."
    if key == ("dockerfile", "instruction"):
        return _instruction_advice(finding)
    return rule_advice(finding.gate, finding.trigger)


def _base_note(finding: Finding, analysis: Analysis) -> str:
    if not came_with_base(analysis, finding):
        return ""
    base = base_image_name(analysis)
    return f"; it came with the base image {base}: choose a slimmer base" if base else (
        "; it came with the base image's layers: choose a slimmer base"
    )


def _where_added(finding: Finding, analysis: Analysis) -> str:
    step = _layer_step(analysis, finding.layer_index)
    return f" (added in {step})" if step else ""


def _vulnerability_advice(finding: Finding, analysis: Analysis) -> str:
    vulnerability = finding.vulnerability
    assert vulnerability is not None
    name = vulnerability.package_name or "the package"
    fixed = vulnerability.fixed_versions[0] if vulnerability.fixed_versions else ""
    base = base_image_name(analysis)
    if fixed:
        text = f"Upgrade {name} to {fixed}"
        command = _INSTALL.get(vulnerability.package_type, "")
        if came_with_base(analysis, finding):
            if base:
                text += f". It came with the base image {base}: update the base image (pull a newer {base}"
                text += " and rebuild)"
            else:
                text += ". It came with the base image's layers: rebuild on an updated base image"
            if command:
                text += f", or upgrade it in your Dockerfile: `RUN {command.format(name=name, fixed=fixed)}`"
        elif command:
            text += f" (`RUN {command.format(name=name, fixed=fixed)}`)"
        else:
            text += ", or rebuild on a base that has it"
        return text + "."
    text = f"No fixed version of {name} is known yet: remove {name} if the image does not need it"
    if came_with_base(analysis, finding) and base:
        text += f" (it came with the base image {base}: a slimmer base may not have it)"
    return text + ", or record a justified exception (reason, approver, expiry) and watch for a fix."


def _secret_advice(finding: Finding, analysis: Analysis) -> str:
    key = (finding.gate, finding.trigger)
    secret = secret_for(analysis, finding) if is_secret(finding) else None
    if key in (("embedded_secrets", "env"), ("embedded_secrets", "history"), ("embedded_secrets", "label")):
        return RULE_ADVICE[key]
    path = (secret.path if secret else "") or finding.path
    layer = finding.layer_index if finding.layer_index is not None else (secret.layer_index if secret else None)
    step = _layer_step(analysis, layer)
    where = f"{path} " if path else "the credential "
    text = f"Remove {where}in the layer that added it" + (f" ({step})" if step else "")
    return text + ", not later (it stays in the image), then rotate it."


def _port_advice(port: int, finding: Finding) -> str:
    line = f" (Dockerfile line {finding.dockerfile_line})" if finding.dockerfile_line else ""
    if port == 22:
        return f"Remove 22 from EXPOSE{line}; use `docker exec` / `kubectl exec` instead of SSH."
    if port < 1024 and finding.trigger == "privileged_ports":
        unprivileged = 8000 + port if port < 100 else 8443
        return (
            f"Listen on {unprivileged} instead of {port} and EXPOSE {unprivileged}{line}; map {port} to it at "
            "deploy time."
        )
    return f"Remove port {port} from EXPOSE{line}; the service must not listen on it."


def _user_advice(finding: Finding, analysis: Analysis) -> str:
    users = [u for u in analysis.users if u.uid is not None and u.uid >= 1000 and u.name != "nobody"]
    if users:
        return f"Add `USER {users[0].name}` (uid {users[0].uid}) after the last RUN of the Dockerfile."
    return f"Add `USER {NON_ROOT_USER}` after the last RUN of the Dockerfile (no /etc/passwd entry needed)."


_DIRECTIVE = re.compile(r"Dockerfile directive '([A-Z]+)'")


def _instruction_advice(finding: Finding) -> str:
    match = _DIRECTIVE.search(finding.message)
    directive = match.group(1) if match else ""
    if directive == "HEALTHCHECK" and "not found" in finding.message:
        return RULE_ADVICE[("healthcheck", "missing")]
    if directive == "FROM":
        return (
            "Pin the base image by digest: `FROM name:tag@sha256:…` (`docker buildx imagetools inspect name:tag` "
            "prints the digest)."
        )
    if directive == "ADD":
        return "Use COPY instead of ADD (for a URL: download it in a pre-build step with a checksum, then COPY)."
    if directive == "ENV":
        return "Remove the value from ENV; pass it at run time from a secret store, and rotate it if it is a secret."
    if directive:
        if "not found" in finding.message:
            return f"Add the {directive} instruction the rule requires to the Dockerfile."
        return f"Rewrite or remove the {directive} instruction the rule matched."
    return RULE_ADVICE[("dockerfile", "instruction")]


# --- a Dockerfile line and its replacement ---------------------------------------------------------


@dataclass(frozen=True)
class DockerfileFix:
    """A suggested change of the Dockerfile the user gave (`--dockerfile`)."""

    path: str
    """The Dockerfile as given (repository-relative when possible)."""
    start_line: int
    end_line: int
    original: str
    """The instruction as ci-gate read it (continuations joined), redacted; empty when it may hold a secret."""
    replacement: str
    """The suggested text for those lines; empty means delete them."""
    exact: bool
    """True when `replacement` can be applied as is (a pull-request suggestion, a SARIF fix)."""


def _instruction_at(analysis: Analysis, line: int | None) -> DockerfileInstruction | None:
    if line is None:
        return None
    for instruction in analysis.dockerfile.instructions:
        if instruction.line == line:
            return instruction
    return None


def _text_of(instruction: DockerfileInstruction) -> str:
    return f"{instruction.instruction} {instruction.value}".strip()


def _end(instruction: DockerfileInstruction) -> int:
    return max(instruction.end_line, instruction.line)


def _last_command(analysis: Analysis) -> DockerfileInstruction | None:
    """The final CMD or ENTRYPOINT: where USER and HEALTHCHECK go in front of."""
    candidates = [i for i in analysis.dockerfile.instructions if i.instruction in ("CMD", "ENTRYPOINT")]
    return candidates[-1] if candidates else None


def dockerfile_fix(finding: Finding, analysis: Analysis, dockerfile_path: str | None) -> DockerfileFix | None:
    """The Dockerfile change that fixes `finding`, when the finding maps to a line of the real Dockerfile."""
    if not dockerfile_path or analysis.dockerfile.mode != "actual":
        return None
    key = (finding.gate, finding.trigger)
    port = port_of(finding)
    if port is not None:
        expose = _instruction_at(analysis, finding.dockerfile_line) or next(
            (i for i in analysis.dockerfile.instructions if i.instruction == "EXPOSE" and _exposes(i, port)), None
        )
        if expose is None or expose.instruction != "EXPOSE":
            return None
        kept = [p for p in expose.value.split() if _port_number(p) != port]
        if port != 22 and port < 1024 and finding.trigger == "privileged_ports":
            kept.append(f"{8000 + port if port < 100 else 8443}")
            return DockerfileFix(dockerfile_path, expose.line, _end(expose), redact(_text_of(expose)),
                                 "EXPOSE " + " ".join(kept), exact=False)
        return DockerfileFix(dockerfile_path, expose.line, _end(expose), redact(_text_of(expose)),
                             "EXPOSE " + " ".join(kept) if kept else "", exact=True)
    if key in (("dockerfile", "effective_user"), ("image_user", "runs_as_root")):
        user = _instruction_at(analysis, finding.dockerfile_line)
        if user is not None and user.instruction == "USER":
            return DockerfileFix(dockerfile_path, user.line, _end(user), redact(_text_of(user)),
                                 f"USER {NON_ROOT_USER}", exact=True)
        return _insert_before_command(analysis, dockerfile_path, f"USER {NON_ROOT_USER}")
    if key == ("healthcheck", "missing") or (
        key == ("dockerfile", "instruction") and "'HEALTHCHECK' not found" in finding.message
    ):
        return _insert_before_command(analysis, dockerfile_path, 'HEALTHCHECK CMD ["/app/healthcheck"]', exact=False)
    instruction = _instruction_at(analysis, finding.dockerfile_line)
    if instruction is None:
        return None
    if key == ("build_instructions", "add_instead_of_copy") and instruction.instruction == "ADD":
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), redact(_text_of(instruction)),
                             f"COPY {instruction.value}", exact=True)
    if key == ("volumes", "sensitive_path") and instruction.instruction == "VOLUME":
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), redact(_text_of(instruction)),
                             "", exact=True)
    if is_secret(finding) or finding.gate == "embedded_secrets" or instruction.instruction in ("ENV", "ARG"):
        # The line itself may hold the secret: never quote it, suggest removing it.
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), "", "", exact=False)
    if key == ("dockerfile", "instruction") and instruction.instruction == "FROM":
        if instruction.value.strip().lower().startswith("scratch"):
            return None
        name = instruction.value.split()[0]
        return DockerfileFix(dockerfile_path, instruction.line, _end(instruction), redact(_text_of(instruction)),
                             f"FROM {name}@sha256:<digest of {name}>", exact=False)
    return None


def dockerfile_fixes(findings: Sequence[Finding], analysis: Analysis, dockerfile_path: str | None,
                     exact_only: bool = False) -> list[tuple[DockerfileFix, tuple[Finding, ...]]]:
    """The Dockerfile changes for several findings, one per line: changes of the same line are combined
    (port 22 removed and port 80 moved to 8080 make one new EXPOSE line; USER and HEALTHCHECK are both
    inserted before CMD), so each suggestion can be applied without undoing another. `exact_only` keeps
    only the changes that can be applied as they are (pull-request suggestions)."""
    by_line: dict[int, list[tuple[DockerfileFix, Finding]]] = {}
    for finding in findings:
        fix = dockerfile_fix(finding, analysis, dockerfile_path)
        if fix is not None and (fix.exact or not exact_only):
            by_line.setdefault(fix.start_line, []).append((fix, finding))
    combined = []
    for line in sorted(by_line):
        entries = by_line[line]
        fixes = [fix for fix, _ in entries]
        members = tuple(dict.fromkeys(finding for _, finding in entries))
        if len({fix.replacement for fix in fixes}) == 1:
            combined.append((fixes[0], members))
            continue
        instruction = _instruction_at(analysis, line)
        if instruction is not None and instruction.instruction == "EXPOSE":
            combined.append((_combined_expose(instruction, members, dockerfile_path or "", exact_only), members))
            continue
        inserted: list[str] = []
        for fix in fixes:
            for text in fix.replacement.splitlines()[:-1] if fix.original else []:
                if text not in inserted:
                    inserted.append(text)
        first = fixes[0]
        if first.original and all(f.replacement.endswith(first.original) for f in fixes):
            combined.append((DockerfileFix(first.path, first.start_line, first.end_line, first.original,
                                           "\n".join([*inserted, first.original]),
                                           exact=all(f.exact for f in fixes)), members))
        else:
            combined.extend((fix, (finding,)) for fix, finding in entries)
    return combined


def _combined_expose(expose: DockerfileInstruction, findings: Sequence[Finding], path: str, exact_only: bool = False
                     ) -> DockerfileFix:
    ports = expose.value.split()
    exact = True
    for finding in findings:
        port = port_of(finding)
        if port is None:
            continue
        if port != 22 and port < 1024 and finding.trigger == "privileged_ports":
            if exact_only:
                continue
            replacement = f"{8000 + port if port < 100 else 8443}"
            ports = [replacement if _port_number(p) == port else p for p in ports]
            exact = False
        else:
            ports = [p for p in ports if _port_number(p) != port]
    text = "EXPOSE " + " ".join(dict.fromkeys(ports)) if ports else ""
    return DockerfileFix(path, expose.line, _end(expose), redact(_text_of(expose)), text, exact=exact)


def _exposes(instruction: DockerfileInstruction, port: int) -> bool:
    return any(_port_number(p) == port for p in instruction.value.split())


def _port_number(spec: str) -> int | None:
    head = spec.split("/", 1)[0]
    return int(head) if head.isdigit() else None


def _insert_before_command(analysis: Analysis, path: str, text: str, exact: bool = True) -> DockerfileFix | None:
    command = _last_command(analysis)
    if command is None:
        return None
    original = redact(_text_of(command))
    return DockerfileFix(path, command.line, _end(command), original, f"{text}\n{original}",
                         exact=exact and _end(command) == command.line)


def display_origin(finding: Finding, analysis: Analysis) -> str:
    """base or app for people: an image built FROM scratch has no base image, whatever its first layer."""
    if finding.origin == "base" and from_scratch(analysis):
        return "app"
    return finding.origin or ""


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
            package = _SSH_PACKAGE.search(member.message) or _PACKAGE_DENIED.search(member.message)
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


# --- findings that share a cause ---------------------------------------------------------------------

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
        denied = _PACKAGE_DENIED.search(finding.message)
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
        label = _LABEL.search(finding.message)
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
        match = _SSH_PACKAGE.search(finding.message) or _PACKAGE_DENIED.search(finding.message)
        if match:
            packages.append(match.group(1))
    parts = []
    if packages or any(f.path for f in issue.findings if port_of(f) != 22):
        name = packages[0] if packages else "the SSH server"
        parts.append(f"remove {name} (or `apt-get purge -y {name}`)")
    if any(port_of(f) == 22 for f in issue.findings):
        line = next((f.dockerfile_line for f in issue.findings if port_of(f) == 22 and f.dockerfile_line), None)
        parts.append("22 from EXPOSE" + (f" (Dockerfile line {line})" if line else ""))
    base = _base_note(issue.first, analysis) if packages else ""
    text = " and ".join(parts) if parts else "remove the SSH server"
    return f"{text[:1].upper()}{text[1:]}{base}; use `docker exec` / `kubectl exec` instead of SSH."


def category_counts(items: Sequence[Issue]) -> str:
    """`2 secrets, 1 port`: issues counted by category, most first."""
    tally: dict[str, int] = {}
    for issue in items:
        tally[issue.category] = tally.get(issue.category, 0) + 1
    ordered = sorted(tally.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{count} {category_name(category, count)}" for category, count in ordered)


# --- what could not be checked -----------------------------------------------------------------------

_RULE_WARNING = re.compile(r"^rule '([^']+)'")


def unchecked_rules(evaluation: Evaluation, analysis: Analysis) -> dict[str, str]:
    """rule id → why the rule could not check anything (it did not fire, but that proves nothing)."""
    reasons: dict[str, str] = {}
    for warning in evaluation.warnings:
        match = _RULE_WARNING.match(warning)
        if match and ("not evaluated" in warning or "skipped" in warning):
            reasons[match.group(1)] = warning[match.end():].lstrip(": ").strip()
    no_vulnerability_data = next(
        (w for w in evaluation.warnings if w.startswith("vulnerabilities were not checked")), ""
    )
    data_unavailable = any(
        f.gate == "vulnerabilities" and f.trigger == "vulnerability_data_unavailable" for f in evaluation.findings
    )
    for rule in evaluation.rules:
        if rule.rule_id in reasons or rule.fired:
            continue
        reason = _unchecked_reason(rule, analysis, no_vulnerability_data, data_unavailable)
        if reason:
            reasons[rule.rule_id] = reason
    return reasons


def _unchecked_reason(rule: RuleOutcome, analysis: Analysis, no_data: str, data_unavailable: bool) -> str:
    key = (rule.gate, rule.trigger)
    if key in (("vulnerabilities", "package"), ("vulnerabilities", "denylist")):
        if no_data:
            return "no vulnerability data: " + no_data.split(": ", 1)[-1]
        if data_unavailable:
            return "no vulnerability data for the image's distribution (give --vuln-db)"
    if rule.gate == "ancestry" and rule.trigger != "no_ancestors_analyzed":
        if from_scratch(analysis):
            return "FROM scratch: no base image whose source could be checked"
        if not analysis.dockerfile.base_image.strip() and not any(layer.base for layer in analysis.identity.layers):
            return "the base image is unknown (give --dockerfile or --base-image)"
    if rule.gate == "dockerfile" and rule.trigger != "no_dockerfile_provided":
        actual_only = rule.params.get("actual_dockerfile_only", "false").strip().lower() == "true"
        if analysis.dockerfile.mode == "unknown" or (actual_only and analysis.dockerfile.mode != "actual"):
            return "no Dockerfile was given (--dockerfile), so its instructions could not be checked"
    no_passwd = "/etc/passwd" not in analysis.retrieved_files and not analysis.users
    if rule.gate == "passwd_file" and rule.trigger != "content_not_available" and no_passwd:
        return "the image has no /etc/passwd to check"
    if rule.gate in ("npms", "ruby_gems") and "feed" in rule.trigger:
        return "needs Anchore's package feeds, which ci-gate does not have"
    if key == ("malware", "scans"):
        return "no malware scanner ran (ci-gate has none; Anchore Enterprise runs one)"
    if key == ("stig", "rule_failed") and not _stig_recorded(analysis, rule.params.get("profile", "")):
        return "no STIG evaluation recorded (run `ci-gate stig` before the gate)"
    return ""


def _stig_recorded(analysis: Analysis, profile: str) -> bool:
    from ci_gate.stig.evaluate import evaluations_for_digest

    digest = analysis.identity.manifest_digest or analysis.identity.config_digest or ""
    return bool(digest) and bool(evaluations_for_digest(digest, str(profile or "")))
