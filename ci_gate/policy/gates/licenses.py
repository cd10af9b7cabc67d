"""licenses: packages distributed under denied licenses."""

from __future__ import annotations

from collections.abc import Iterator

from ci_gate.policy.gates.interface import (
    EvaluationContext,
    Fired,
    GateSpec,
    ParameterSpec,
    TriggerFunction,
    TriggerInput,
    TriggerSpec,
)


def _licenses(context: EvaluationContext) -> list[tuple[str, str]]:
    """(rendered `name(license)`, license) pairs in package order; a license string is split on whitespace.

    Built once per evaluation: a policy with many license rules reuses it.
    """

    def build() -> list[tuple[str, str]]:
        return [
            (f"{p.name}({token})", token)
            for p in context.analysis.packages
            for text in p.licenses
            for token in text.split()
        ]

    return context.memo("licenses.pairs", build)


def _distinct(context: EvaluationContext) -> frozenset[str]:
    return context.memo("licenses.distinct", lambda: frozenset(token for _, token in _licenses(context)))


def _exact(call: TriggerInput) -> Iterator[Fired]:
    denied = set(call.params["licenses"]) & _distinct(call.context)
    if not denied:
        return
    found = [rendered for rendered, license in _licenses(call.context) if license in denied]
    yield Fired(message="LICFULLMATCH Packages are installed that have blacklisted licenses: " + ", ".join(found))


def _partial(call: TriggerInput) -> Iterator[Fired]:
    parts = call.params["licenses"]
    # How many listed parts each distinct license contains: anchore-engine appends a package once per part.
    times = {license: n for license in _distinct(call.context) if (n := sum(part in license for part in parts))}
    if not times:
        return
    pairs = _licenses(call.context)
    if all(n == 1 for n in times.values()):
        found = [rendered for rendered, license in pairs if license in times]
    else:
        found = [rendered for rendered, license in pairs if license in times for _ in range(times[license])]
    yield Fired(message="LICSUBMATCH Packages are installed that have blacklisted licenses: " + ", ".join(found))


def _denylist(match: str, kind: str, evaluate: TriggerFunction, parameter_description: str, example: str
              ) -> TriggerSpec:
    """A denylist of licenses, matched `kind` (exact or substring) by `evaluate`; anchore-engine's v1 name
    (`blacklist_…`) is accepted too."""
    return TriggerSpec(
        name=f"denylist_{match}_match",
        aliases=(f"blacklist_{match}_match",),
        description="Triggers if the evaluated image has a package installed with software distributed under the "
        f"specified ({kind} match) license(s).",
        evaluate=evaluate,
        parameters=(
            ParameterSpec("licenses", "CommaDelimitedStringList", parameter_description, required=True,
                          example=example),
        ),
    )


GATE = GateSpec(
    name="licenses",
    description="License checks against found software licenses in the container image",
    triggers=(
        _denylist("exact", "exact", _exact, "List of license names to deny exactly.", "GPLv2+,GPL-3+,BSD-2-clause"),
        _denylist("partial", "substring", _partial, "List of strings to do substring match for the denylist.",
                  "LGPL,BSD"),
    ),
)
