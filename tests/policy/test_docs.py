"""docs/policy.md carries the gate reference generated from the declarations."""

from __future__ import annotations

from pathlib import Path

from ci_gate.policy.gates.registry import gates

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def test_every_gate_trigger_and_parameter_is_documented() -> None:
    text = DOCS.read_text()
    for gate in gates().values():
        assert f"### `{gate.name}`" in text, gate.name
        for trigger in gate.triggers:
            assert f"**`{trigger.name}`**" in text, f"{gate.name}/{trigger.name}"
            for parameter in trigger.parameters:
                assert f"`{parameter.name}`" in text, f"{gate.name}/{trigger.name}/{parameter.name}"


def test_divergences_are_listed() -> None:
    text = DOCS.read_text()
    for needle in ("USER 0", "USER 0:0", "USER root:root", "uid is 0", "DENIEDPORTS=0"):
        assert needle in text
