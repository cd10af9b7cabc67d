"""Every gate ci-gate knows, by name: the Anchore gates, the ci-gate extensions, the EOL names."""

from __future__ import annotations

import importlib
from functools import cache

from ci_gate.policy.gates.interface import GateSpec

ANCHORE_GATES = (
    "always",
    "dockerfile",
    "files",
    "licenses",
    "metadata",
    "npms",
    "packages",
    "passwd_file",
    "retrieved_files",
    "ruby_gems",
    "secret_scans",
    "vulnerabilities",
    "distro",
    "ancestry",
    "malware",
    "tag_drift",
)
EXTENSION_GATES = (
    "image_user",
    "network_ports",
    "healthcheck",
    "image_labels",
    "ssh_daemon",
    "build_instructions",
    "embedded_secrets",
    "volumes",
    "accounts",
    "stig",
)

END_OF_LIFE = {
    "anchoresec": "vulnerabilities",
    "dockerfilecheck": "dockerfile",
    "filecheck": "files",
    "fileparse_passwd": "passwd_file",
    "gemcheck": "ruby_gems",
    "npmcheck": "npms",
    "metadatacheck": "metadata",
    "licblacklist": "licenses",
    "pkgblacklist": "packages",
    "pkgcheck": "packages",
    "secretcheck": "secret_scans",
    "pkgdiff": "",
    "suiddiff": "",
    "imagecheck": "",
}
"""anchore-engine's end-of-life gate names → their replacement ('' = none)."""

UNAVAILABLE = {
    "vulnerabilities": "the vulnerabilities gate is not part of this ci-gate build yet",
}
"""Known Anchore gates that cannot be evaluated here, with the reason."""


@cache
def gates() -> dict[str, GateSpec]:
    """Gate name → spec, for every gate module present."""
    found: dict[str, GateSpec] = {}
    for name in ANCHORE_GATES + EXTENSION_GATES:
        module_name = f"ci_gate.policy.gates.{name}"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                raise
            continue
        spec: GateSpec = module.GATE
        found[spec.name] = spec
    return found


def gate(name: str) -> GateSpec | None:
    return gates().get(name.lower())

