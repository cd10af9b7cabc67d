"""volumes (ci-gate extension): VOLUME declarations on sensitive host paths (DISA CIDG 3.1/3.4, Dockle)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import extension_gate, extension_trigger
from ci_gate.policy.gates.interface import Fired, ParameterSpec, TriggerInput

SENSITIVE = "/,/etc,/usr,/proc,/sys,/dev,/boot,/lib,/var/run/docker.sock,/run/docker.sock,/var/run,/run"


def _sensitive(call: TriggerInput) -> Iterator[Fired]:
    paths = set(call.params.get("paths", SENSITIVE.split(",")))
    for volume in call.context.analysis.config.volumes:
        normalized = "/" + volume.strip().strip("/") if volume.strip() != "/" else "/"
        if normalized in paths:
            yield Fired(message=f"Image declares a VOLUME on the sensitive path {volume}", path=normalized)


GATE = extension_gate(
    "volumes",
    "ci-gate extension: VOLUME declarations in the image config.",
    extension_trigger(
        "sensitive_path",
        "Triggers for a VOLUME on a sensitive path (system directories, the runtime socket).",
        _sensitive,
        ParameterSpec("paths", "CommaDelimitedStringList", "Sensitive paths.", example=SENSITIVE, default=SENSITIVE),
    ),
)
