"""image_labels (ci-gate extension): labels the image config must carry (e.g. Iron Bank's OCI labels)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates._common import extension_gate, extension_trigger
from ci_gate.policy.gates.interface import Fired, ParameterSpec, TriggerInput


def _required(call: TriggerInput) -> Iterator[Fired]:
    labels = call.context.analysis.config.labels
    for name in call.params["labels"]:
        if not str(labels.get(name, "")).strip():
            yield Fired(message=f"Required label {name} is missing or empty")


GATE = extension_gate(
    "image_labels",
    "ci-gate extension: labels in the image config.",
    extension_trigger(
        "required",
        "Triggers for each listed label that is missing or empty.",
        _required,
        ParameterSpec(
            "labels",
            "CommaDelimitedStringList",
            "Label keys that must be present.",
            required=True,
            example="org.opencontainers.image.title,org.opencontainers.image.version",
        ),
    ),
)
