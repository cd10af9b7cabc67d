"""Every gate ci-gate knows, by name: the Anchore gates, the ci-gate extensions, the EOL names."""

from __future__ import annotations

from functools import cache

from ci_gate.policy.gates import (
    accounts,
    always,
    ancestry,
    build_instructions,
    distro,
    dockerfile,
    embedded_secrets,
    files,
    healthcheck,
    image_labels,
    image_user,
    licenses,
    malware,
    metadata,
    network_ports,
    npms,
    packages,
    passwd_file,
    retrieved_files,
    ruby_gems,
    secret_scans,
    ssh_daemon,
    stig,
    tag_drift,
    volumes,
    vulnerabilities,
)
from ci_gate.policy.gates.interface import GateSpec

_GATES = tuple(
    module.GATE
    for module in (
        # Anchore's gates, in the order of its documentation
        always,
        dockerfile,
        files,
        licenses,
        metadata,
        npms,
        packages,
        passwd_file,
        retrieved_files,
        ruby_gems,
        secret_scans,
        vulnerabilities,
        distro,
        ancestry,
        malware,
        tag_drift,
        # ci-gate's extensions (GateSpec.extension)
        image_user,
        network_ports,
        healthcheck,
        image_labels,
        ssh_daemon,
        build_instructions,
        embedded_secrets,
        volumes,
        accounts,
        stig,
    )
)
ANCHORE_GATES = tuple(spec.name for spec in _GATES if not spec.extension)
EXTENSION_GATES = tuple(spec.name for spec in _GATES if spec.extension)

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

@cache
def gates() -> dict[str, GateSpec]:
    """Gate name → spec, for every gate (ANCHORE_GATES, then EXTENSION_GATES)."""
    return {spec.name: spec for spec in _GATES}


def gate(name: str) -> GateSpec | None:
    return gates().get(name.lower())

