"""The advice table: one general sentence per trigger of every gate, kept as data in advice.yaml.

SARIF rule help, `policy gates` and every report fall back to it when a rule has no
`recommendation` of its own and ci-gate knows nothing more concrete (ci_gate.reports.advice); a
test checks that no trigger lacks one.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

FIXING_GUIDE = "docs/fixing-findings.md"
"""The developer's guide every comment links to (a path in the ci-gate repository)."""
FIXING_GUIDE_URL = "https://github.com/ci-gate/ci-gate/blob/main/docs/fixing-findings.md"

NON_ROOT_USER = "10001:10001"
"""The user the advice suggests: a high uid no distribution assigns, as Iron Bank and Chainguard use."""


_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's SafeLoader: the table is read on every run that prints advice, ten times faster than in Python."""


def _load_table() -> dict[tuple[str, str], str]:
    """advice.yaml, beside this module: gate → trigger → advice."""
    text = resources.files("ci_gate.reports").joinpath("advice.yaml").read_text("utf-8")
    table = yaml.load(text, Loader=_SafeLoader)  # a safe loader (libyaml SafeLoader when built)
    return {(gate, trigger): advice.replace("{non_root_user}", NON_ROOT_USER)
            for gate, triggers in table.items() for trigger, advice in triggers.items()}


RULE_ADVICE: dict[tuple[str, str], str] = _load_table()
"""The general advice for every trigger of every gate, by (gate, trigger)."""

_GENERIC = "Change the image (or its Dockerfile) so the rule no longer fires, or record a justified exception."


def rule_advice(gate: str, trigger: str, own: str = "") -> str:
    """The rule's own recommendation, else the general advice for its gate and trigger."""
    return own.strip() or RULE_ADVICE.get((gate.lower(), trigger.lower()), _GENERIC)
