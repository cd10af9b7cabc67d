"""healthcheck (ci-gate extension): the image config must define a HEALTHCHECK.

DISA CIDG 2.6 / CIS 4.6. Reads the config (works without a Dockerfile); `HEALTHCHECK NONE` counts
as missing.
"""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import extension_gate, extension_trigger
from ci_gate.policy.gates.interface import Fired, TriggerInput


def _missing(call: TriggerInput) -> Iterator[Fired]:
    healthcheck = call.context.analysis.config.healthcheck
    test = list(healthcheck.get("Test") or []) if healthcheck else []
    if not healthcheck or not test:
        yield Fired(message="Image has no HEALTHCHECK")
    elif test[0].upper() == "NONE":
        yield Fired(message="Image disables its HEALTHCHECK (HEALTHCHECK NONE)")


GATE = extension_gate(
    "healthcheck",
    "ci-gate extension: the container health check declared in the image config.",
    extension_trigger("missing", "Triggers if the image config has no HEALTHCHECK, or HEALTHCHECK NONE.", _missing),
)
