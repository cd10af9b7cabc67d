"""metadata: image size, architecture, OS, distro and layer count."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

from ci_gate.model import Analysis
from ci_gate.policy.gates.interface import Fired, GateSpec, ParameterSpec, TriggerInput, TriggerSpec

_BYTES = re.compile(r"^([0-9]+)([kmgt]b)?$")
_UNITS = {"kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}


def _size(text: str) -> int:
    match = _BYTES.match(text)
    if not match:
        raise ValueError(text)
    return int(match.group(1)) * _UNITS.get(match.group(2) or "", 1)


def _platform_part(analysis: Analysis, index: int) -> str | None:
    parts = analysis.identity.platform.split("/")
    return parts[index] if len(parts) > index and parts[index] else None


ATTRIBUTES: dict[str, Callable[[Analysis], Any]] = {
    "size": lambda a: a.identity.total_size,
    "architecture": lambda a: _platform_part(a, 1),
    "os_type": lambda a: _platform_part(a, 0),
    "distro": lambda a: a.distro.id if a.distro else None,
    "distro_version": lambda a: a.distro.version_id if a.distro else None,
    "like_distro": lambda a: (",".join(a.distro.id_like) or a.distro.id) if a.distro else None,
    "layer_count": lambda a: len(a.identity.layers),
}

_OPERATIONS: dict[str, tuple[bool, Callable[[Any, Any], bool]]] = {
    "=": (True, lambda x, y: x == y),
    "!=": (True, lambda x, y: x != y),
    ">": (True, lambda x, y: x > y),
    "<": (True, lambda x, y: x < y),
    ">=": (True, lambda x, y: x >= y),
    "<=": (True, lambda x, y: x <= y),
    "exists": (False, lambda x, y: bool(x)),
    "not_exists": (False, lambda x, y: not bool(x)),
    "like": (True, lambda x, y: bool(re.match(y, x))),
    "not_like": (True, lambda x, y: not bool(re.match(y, x))),
    "in": (True, lambda x, y: x in [z.strip() for z in y.split(",")]),
    "not_in": (True, lambda x, y: x not in [z.strip() for z in y.split(",")]),
}


def _attribute(call: TriggerInput) -> Iterator[Fired]:
    attribute = call.params["attribute"]
    check = call.params["check"]
    value = call.params.get("value")
    needs_value, operation = _OPERATIONS[check]
    if needs_value and not value:
        return
    image_value = ATTRIBUTES[attribute](call.context.analysis)
    compare_to: Any = value
    if isinstance(image_value, (int, float, str)) and value is not None:
        compare_to = _size(value) if attribute == "size" else type(image_value)(value)
    try:
        fired = operation(image_value, compare_to)
    except TypeError:
        # anchore-engine raises here (e.g. `>` on a missing distro); an unknown value cannot match.
        return
    if fired:
        yield Fired(
            message=f"Attribute check for attribute: '{attribute}' check: '{check}' check_value: "
            f"'{str(compare_to) if compare_to is not None else ''}' matched image value: '{image_value}'"
        )


def _check_value(raw: dict[str, str] | Any) -> list[str]:
    value = raw.get("value")
    if value is None:
        return []
    attribute = raw.get("attribute")
    if attribute == "size" and not _BYTES.match(value):
        return [
            f"'value' for attribute size must be bytes with an optional kb/mb/gb/tb unit, e.g. 1gb; "
            f"got {value!r}"
        ]
    if attribute == "layer_count" and not value.strip().isdigit():
        return [f"'value' for attribute layer_count must be an integer; got {value!r}"]
    return []


GATE = GateSpec(
    name="metadata",
    description="Checks against image metadata, such as size, OS, distro, architecture, etc.",
    triggers=(
        TriggerSpec(
            name="attribute",
            description="Triggers if a named image metadata value matches the given condition.",
            evaluate=_attribute,
            parameters=(
                ParameterSpec(
                    "attribute",
                    "EnumString",
                    "Attribute name to be checked.",
                    required=True,
                    allowed_values=tuple(ATTRIBUTES),
                    example="size",
                ),
                ParameterSpec(
                    "check",
                    "EnumString",
                    "The operation to perform the evaluation.",
                    required=True,
                    allowed_values=tuple(_OPERATIONS),
                    example=">",
                ),
                ParameterSpec(
                    "value",
                    "string",
                    "Value used in comparison (size: bytes with an optional "
                    "kb/mb/gb/tb unit; layer_count: an integer).",
                    example="1073741824",
                ),
            ),
            cross_check=_check_value,
        ),
    ),
)
