"""How to fix a finding: the advice every report and the terminal give, written for the person who must
change the image.

- `recommendation(finding, analysis)`: the rule's own `recommendation` when the policy gives one, else
  the built-in advice for its gate and trigger, made concrete with what the finding knows (the port,
  the path, the layer and the build step that added it, the fixed version, whether the package came
  with the base image and which base that is). `ci_gate.reports.advice_table` holds the general
  advice, one sentence per trigger, as data.
- `ci_gate.reports.dockerfile_fixes`: the Dockerfile line a finding maps to and a suggested
  replacement; `ci_gate.reports.issues`: findings that share one cause merged into one issue;
  `ci_gate.reports.unchecked`: rules that could not check anything, with the reason.

Every text here is built from redacted parts: a secret's value never reaches advice.
"""

from __future__ import annotations

import re

from ci_gate.ecosystems import upgrade_command
from ci_gate.model import Analysis, Finding
from ci_gate.reports.advice_table import NON_ROOT_USER, RULE_ADVICE, rule_advice
from ci_gate.reports.common import is_secret, redact, secret_for

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
LABEL_MISSING = re.compile(r"label (\S+) is missing")
PACKAGE_DENIED = re.compile(r"Package is (?:blacklisted|denylisted): (\S+)")
SSH_PACKAGE = re.compile(r"SSH server package (\S+) (\S+)")
_USER = re.compile(r"^User (\S+) ")

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
    if key == ("stig", "rule_failed"):  # the fix text of the STIG content, when the evaluation is recorded
        from ci_gate.stig.report import recommendation as stig_fix

        fix = stig_fix(finding, analysis)
        if fix:
            return fix
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
        package = SSH_PACKAGE.search(finding.message)
        name = package.group(1) if package else "openssh-server"
        return (
            f"Remove {name} (do not install it, or `apt-get purge -y {name}` where it is installed)"
            f"{base_note(finding, analysis)}; use `docker exec` / `kubectl exec` instead of SSH."
        )
    if key == ("packages", "denylist"):
        denied = PACKAGE_DENIED.search(finding.message)
        name = denied.group(1) if denied else (finding.trigger_id or "the package")
        return (
            f"Do not install {name} (or `apt-get purge -y {name}` / `apk del {name}` in the RUN that installs it)"
            f"{base_note(finding, analysis)}."
        )
    if key == ("files", "suid_or_guid_set") and finding.path:
        return f"`RUN chmod a-s {finding.path}`{_where_added(finding, analysis)}, or do not ship it."
    if key == ("image_labels", "required"):
        label = LABEL_MISSING.search(finding.message)
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


def base_note(finding: Finding, analysis: Analysis) -> str:
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
        command = upgrade_command(vulnerability.package_type)
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


def display_origin(finding: Finding, analysis: Analysis) -> str:
    """base or app for people: an image built FROM scratch has no base image, whatever its first layer."""
    if finding.origin == "base" and from_scratch(analysis):
        return "app"
    return finding.origin or ""
