"""The gate reference, generated from the gate declarations (for `policy gates` and docs/policy.md)."""

from __future__ import annotations

from ci_gate.policy.gates import registry
from ci_gate.policy.gates.interface import GateSpec, ParameterSpec, TriggerSpec


def _parameter_line(parameter: ParameterSpec) -> str:
    details = [parameter.type]
    if parameter.required:
        details.append("required")
    if parameter.allowed_values:
        details.append("one of: " + " ".join(parameter.allowed_values))
    if parameter.default is not None:
        details.append(f"default {parameter.default}")
    if parameter.aliases:
        details.append("aliases: " + ", ".join(parameter.aliases))
    return f"{parameter.name} ({'; '.join(details)}): {parameter.description}"


def _trigger_title(gate: GateSpec, trigger: TriggerSpec) -> str:
    title = f"{gate.name}/{trigger.name}"
    if trigger.aliases:
        title += f" (also: {', '.join(trigger.aliases)})"
    if trigger.needs_feed:
        title += " [needs Anchore's packages feed: never fires in ci-gate]"
    if trigger.never_fires:
        title += f" [never fires in ci-gate: {trigger.never_fires}]"
    return title


def gates_text() -> str:
    """Plain text: every gate, trigger and parameter with its description."""
    lines = []
    for gate in sorted(registry.gates().values(), key=lambda g: (g.extension, g.name)):
        marker = " [ci-gate extension]" if gate.extension else ""
        lines.append(f"{gate.name}{marker}: {gate.description}")
        for trigger in gate.triggers:
            lines.append(f"  {_trigger_title(gate, trigger)}: {trigger.description}")
            for parameter in trigger.parameters:
                lines.append(f"    - {_parameter_line(parameter)}")
        lines.append("")
    eol = ", ".join(f"{old} (→ {new})" if new else old for old, new in registry.END_OF_LIFE.items())
    lines.append(f"End-of-life gate names (rejected by validate, skipped by evaluation): {eol}")
    return "\n".join(lines) + "\n"


def gates_markdown() -> str:
    """Markdown: the gate reference section of docs/policy.md."""
    out = ["## Gate reference", "", "Generated from the gate declarations (`ci-gate policy gates --markdown`).", ""]
    for gate in sorted(registry.gates().values(), key=lambda g: (g.extension, g.name)):
        marker = " *(ci-gate extension: not portable to Anchore)*" if gate.extension else ""
        out += [f"### `{gate.name}`{marker}", "", gate.description, ""]
        for trigger in gate.triggers:
            out += [f"- **`{trigger.name}`**" + (f" (also `{'`, `'.join(trigger.aliases)}`)" if trigger.aliases
                                                  else "") + (" — needs Anchore's packages feed; never fires here"
                                                              if trigger.needs_feed else "")
                    + (f" — never fires here: {trigger.never_fires}" if trigger.never_fires else "")
                    + f": {trigger.description}"]
            for parameter in trigger.parameters:
                out.append(f"  - `{_parameter_line(parameter).split(' (', 1)[0]}` "
                           f"({_parameter_line(parameter).split(' (', 1)[1]}")
        out.append("")
    return "\n".join(out)
