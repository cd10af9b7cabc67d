"""ssh_daemon (ci-gate extension): no SSH server in the image (DISA CIDG 2.1)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import extension_gate, extension_trigger, packages_by_name
from ci_gate.policy.gates.files import full_path, records_at
from ci_gate.policy.gates.interface import Fired, TriggerInput

SSH_PACKAGES = ("openssh-server", "openssh-server-pam", "dropbear", "dropbear-bin", "tinysshd", "tinyssh")
SSH_BINARIES = (
    "/usr/sbin/sshd",
    "/usr/sbin/dropbear",
    "/usr/bin/dropbear",
    "/usr/sbin/tinysshd",
    "/usr/bin/tinysshd",
)


def _present(call: TriggerInput) -> Iterator[Fired]:
    analysis = call.context.analysis
    packages = packages_by_name(call.context)
    for name in SSH_PACKAGES:
        for package in packages.get(name, []):
            layer = package.locations[0].layer_index if package.locations else None
            yield Fired(
                message=f"SSH server package {package.name} {package.version} is installed", layer_index=layer
            )
    for record in records_at(call.context, SSH_BINARIES):
        path = full_path(record.path)
        if record.kind in ("file", "hardlink", "symlink"):
            yield Fired(
                message=f"SSH server binary {path} is present", path=path, layer_index=record.layer_index
            )
    for spec in analysis.config.exposed_ports:
        if spec.split("/", 1)[0] == "22":
            yield Fired(message=f"Image exposes the SSH port {spec}")


GATE = extension_gate(
    "ssh_daemon",
    "ci-gate extension: an SSH server installed or exposed in the image.",
    extension_trigger(
        "present",
        "Triggers for an SSH server package (openssh-server, dropbear, tinysshd), an sshd binary, or port 22 "
        "exposed.",
        _present,
    ),
)
