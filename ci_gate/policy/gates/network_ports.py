"""network_ports (ci-gate extension): privileged ports exposed by the image config.

DISA CIDG 2.5: only ports >= 1024 may be exposed (map 80 to 8080 at the platform). Reads the
config's ExposedPorts, so it works without any Dockerfile.
"""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import extension_gate, extension_trigger
from ci_gate.policy.gates.interface import Fired, ParameterSpec, TriggerInput


def _port_number(spec: str) -> int | None:
    number = spec.split("/", 1)[0].strip()
    if "-" in number:
        number = number.split("-", 1)[0]
    return int(number) if number.isdigit() else None


def _privileged(call: TriggerInput) -> Iterator[Fired]:
    below = call.params.get("below", 1024)
    allowed = {str(port) for port in call.params.get("allowed_ports", [])}
    for spec in call.context.analysis.config.exposed_ports:
        number = _port_number(spec)
        if number is None or str(number) in allowed:
            continue
        if number < below:
            yield Fired(message=f"Image exposes privileged port {spec} (below {below})")


GATE = extension_gate(
    "network_ports",
    "ci-gate extension: ports exposed by the image config.",
    extension_trigger(
        "privileged_ports",
        "Triggers for each exposed port below the `below` parameter (default 1024).",
        _privileged,
        ParameterSpec("below", "IntegerString", "Ports below this number are privileged.", example="1024",
                      default="1024"),
        ParameterSpec("allowed_ports", "CommaDelimitedNumberList",
                      "Privileged ports accepted anyway (a documented exception).", example="443"),
    ),
)
