"""licenses: packages distributed under denied licenses."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates.interface import (
    EvaluationContext,
    Fired,
    GateSpec,
    ParameterSpec,
    TriggerInput,
    TriggerSpec,
)


def _licenses(context: EvaluationContext) -> list[tuple[str, str]]:
    """(package name, license) pairs; like anchore-engine, a license string is split on whitespace."""

    def build() -> list[tuple[str, str]]:
        return [
            (p.name, token)
            for p in context.analysis.packages
            for text in p.licenses
            for token in text.split()
        ]

    return context.memo("licenses.pairs", build)


def _exact(call: TriggerInput) -> Iterator[Fired]:
    denied = set(call.params["licenses"])
    found = [f"{name}({license})" for name, license in _licenses(call.context) if license in denied]
    if found:
        yield Fired(
            message="LICFULLMATCH Packages are installed that have blacklisted licenses: " + ", ".join(found)
        )


def _partial(call: TriggerInput) -> Iterator[Fired]:
    parts = call.params["licenses"]
    found = [
        f"{name}({license})" for name, license in _licenses(call.context) for part in parts if part in license
    ]
    if found:
        yield Fired(
            message="LICSUBMATCH Packages are installed that have blacklisted licenses: " + ", ".join(found)
        )


GATE = GateSpec(
    name="licenses",
    description="License checks against found software licenses in the container image",
    triggers=(
        TriggerSpec(
            name="denylist_exact_match",
            aliases=("blacklist_exact_match",),
            description="Triggers if the evaluated image has a package installed with software distributed "
            "under the specified (exact match) license(s).",
            evaluate=_exact,
            parameters=(
                ParameterSpec(
                    "licenses",
                    "CommaDelimitedStringList",
                    "List of license names to deny exactly.",
                    required=True,
                    example="GPLv2+,GPL-3+,BSD-2-clause",
                ),
            ),
        ),
        TriggerSpec(
            name="denylist_partial_match",
            aliases=("blacklist_partial_match",),
            description="Triggers if the evaluated image has a package installed with software distributed "
            "under the specified (substring match) license(s).",
            evaluate=_partial,
            parameters=(
                ParameterSpec(
                    "licenses",
                    "CommaDelimitedStringList",
                    "List of strings to do substring match for the denylist.",
                    required=True,
                    example="LGPL,BSD",
                ),
            ),
        ),
    ),
)
