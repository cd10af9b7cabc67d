"""always: fires unconditionally (testing mappings and allowlists, denying images)."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates.interface import Fired, GateSpec, TriggerInput, TriggerSpec


def _always(call: TriggerInput) -> Iterator[Fired]:
    yield Fired(message="Unconditional trigger match", instance_id="always")


GATE = GateSpec(
    name="always",
    description="Triggers that fire unconditionally if present in policy, useful for things like testing "
    "and blacklisting.",
    triggers=(
        TriggerSpec(
            name="always",
            description="Fires if present in a policy being evaluated. Useful for things like blacklisting "
            "images or testing mappings and whitelists by using this trigger in combination with policy "
            "mapping rules.",
            evaluate=_always,
        ),
    ),
)
