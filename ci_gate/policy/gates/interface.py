"""What a gate is: triggers and typed parameters declared as data, plus the context a trigger sees.

A gate module (one per gate, e.g. `ci_gate.policy.gates.dockerfile`) exposes one module-level
`GATE: GateSpec`. The spec is the single source of truth for:

* validation of policy documents (unknown names, wrong types, enum values, required parameters),
* `ci-gate policy gates` output and the generated gate reference in docs/policy.md,
* evaluation: each `TriggerSpec` carries the function that evaluates it.

How a trigger is evaluated
--------------------------
The evaluator (`ci_gate.policy.evaluation`) calls `trigger.evaluate(TriggerInput)` once per policy
rule. `TriggerInput.params` holds the rule's parameters, already validated and parsed to Python
values under their canonical names (aliases resolved); absent optional parameters are missing from
the mapping, so read them with `params.get(name, default)`. The function yields one `Fired` per
trigger instance. The evaluator turns each `Fired` into a `ci_gate.model.Finding`: it computes the
trigger id exactly as anchore-engine does (`md5(gate + trigger + message)` unless the trigger sets
`Fired.instance_id`), attaches rule id, action, controls and allowlist matches, and derives
`Finding.origin` (base/app) from `Fired.layer_index`.

Extra context: `EvaluationContext`
----------------------------------
Every trigger receives the same `EvaluationContext` for one evaluation:

* `analysis` — the `ci_gate.model.Analysis` of the image,
* `now` — the evaluation time (timezone-aware UTC); use it, never the clock, so tests are exact,
* `vulnerabilities` — an optional `VulnerabilityMatchProvider` (None when no vulnerability data
  was given); the vulnerabilities gate reads matches and feed status from it,
* `memo(key, factory)` — per-evaluation cache for data a gate derives once and many rules reuse
  (e.g. a name → packages index), the equivalent of anchore-engine's `prepare_context`.

Vulnerability data
------------------
`ci_gate.vulns.provider.make_provider` builds `EvaluationContext.vulnerabilities` (the local
backend and `ci-gate serve` call it); the vulnerabilities gate only reads it through
`VulnerabilityMatchProvider`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from ci_gate.errors import PolicyError
from ci_gate.model import Analysis, VulnerabilityDetail

__all__ = [
    "EVALUATION_ERROR_ID",
    "PARAMETER_TYPES",
    "EvaluationContext",
    "Fired",
    "GateSpec",
    "ParameterSpec",
    "PolicyError",
    "TriggerInput",
    "TriggerSpec",
    "VulnerabilityMatchProvider",
]

# --- parameter types (anchore-engine engine/policy/params.py) ---------------------------------

PARAMETER_TYPES = (
    "string",
    "EnumString",
    "CommaDelimitedStringList",
    "CommaDelimitedNumberList",
    "BooleanString",
    "IntegerString",
    "FloatString",
)
"""Every parameter value in a policy is a JSON string; the type says how it is read."""

EVALUATION_ERROR_ID = "evaluation_error"
"""The trigger id of a finding that says a rule could not be evaluated (anchore-engine's ErrorMatch id).

A trigger that cannot check what its rule asks (a regular expression that does not compile, data
the check needs and does not have) fires one `Fired` with this instance id; no allowlist item
covers it, so an unchecked rule keeps its action."""

_NUMBER_LIST = re.compile(r"^\s*(\s*(\d+)\s*,)*\s*(\d+){1}\s*$")
_INTEGER = re.compile(r"^\s*[\d]+\s*$")
_FLOAT = re.compile(r"^\s*-*(\d)*(\.\d*)?\s*$")


@dataclass(frozen=True)
class ParameterSpec:
    """One trigger parameter, declared as data."""

    name: str
    """Canonical (lower-case) name as written in a policy rule's params."""
    type: str
    """One of PARAMETER_TYPES."""
    description: str
    required: bool = False
    allowed_values: tuple[str, ...] = ()
    """For EnumString: the accepted values (exact, case-sensitive, as in anchore-engine)."""
    aliases: tuple[str, ...] = ()
    """Other accepted names (anchore-engine's legacy names, e.g. `usernameblacklist`)."""
    example: str = ""
    default: str | None = None
    """The value used when the rule omits it (documentation; triggers apply it via params.get)."""
    pattern: str = ""
    """An extra regular expression the raw value must match (e.g. metadata sizes)."""
    is_regex: bool = False
    """The value is a Python regular expression: validation compiles it."""

    def check(self, value: Any) -> str | None:
        """Why `value` is not acceptable for this parameter, or None when it is."""
        if not isinstance(value, str):
            return f"must be a string (policy parameter values are JSON strings), got {type(value).__name__}"
        if self.type == "EnumString" and value not in self.allowed_values:
            return f"must be one of {', '.join(self.allowed_values)}; got {value!r}"
        if self.type == "CommaDelimitedNumberList" and not _NUMBER_LIST.match(value):
            return f"must be a comma-separated list of non-negative integers, e.g. '80,443'; got {value!r}"
        if self.type == "BooleanString" and value.strip().lower() not in ("true", "false"):
            return f"must be 'true' or 'false'; got {value!r}"
        if self.type == "IntegerString" and not _INTEGER.match(value):
            return f"must be a non-negative integer; got {value!r}"
        if self.type == "FloatString" and (not _FLOAT.match(value) or not value.strip()):
            return f"must be a number, e.g. '7.5'; got {value!r}"
        if self.pattern and not re.match(self.pattern, value):
            return f"does not match {self.pattern}; got {value!r}"
        return None

    def regex_problem(self, value: str) -> str | None:
        """Why a regular-expression value does not compile, or None.

        Kept apart from `check`: anchore-engine accepts such a document (the parameter is a plain
        string to it) and only the rule fails when evaluated, so this is a warning, not an error."""
        if not self.is_regex:
            return None
        try:
            re.compile(value)
        except re.error as error:
            return f"is not a valid regular expression ({error}); got {value!r}"
        return None

    def parse(self, value: str) -> Any:
        """The Python value of an already-checked raw string."""
        if self.type == "CommaDelimitedStringList":
            return [item.strip() for item in value.split(",") if item.strip()]
        if self.type == "CommaDelimitedNumberList":
            return [int(item) for item in value.split(",") if item.strip()]
        if self.type == "BooleanString":
            return value.strip().lower() == "true"
        if self.type == "IntegerString":
            return int(value)
        if self.type == "FloatString":
            return float(value)
        return value


# --- the evaluation context ---------------------------------------------------------------------


@runtime_checkable
class VulnerabilityMatchProvider(Protocol):
    """Vulnerability data for one image, supplied by the vulnerability-matching stage.

    The vulnerabilities gate owns the concrete match type; the engine only passes the provider on.
    """

    def matches(self) -> Sequence[Any]:
        """The vulnerability matches for the analysed image."""
        ...

    def last_synced(self) -> datetime | None:
        """When the vulnerability data was last updated (None when unknown or never)."""
        ...

    def notes(self) -> list[str]:
        """Plain sentences for the reports: missing data, unchecked packages, VEX suppressions."""
        ...


@dataclass(frozen=True)
class EvaluationContext:
    """Everything a trigger may look at during one evaluation of one image."""

    analysis: Analysis
    now: datetime
    """Evaluation time, timezone-aware UTC."""
    vulnerabilities: VulnerabilityMatchProvider | None = None
    """Vulnerability matches and feed status; None when no vulnerability data was supplied."""
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Per-evaluation memo; use `memo`, not this dict directly."""

    def memo(self, key: str, factory: Callable[[], Any]) -> Any:
        """Compute `factory()` once per evaluation under `key` (prefix keys with the gate name)."""
        if key not in self.cache:
            self.cache[key] = factory()
        return self.cache[key]


@dataclass(frozen=True)
class TriggerInput:
    """What one rule hands its trigger."""

    params: Mapping[str, Any]
    """Parsed parameter values by canonical name; optional parameters the rule omits are absent."""
    raw_params: Mapping[str, str]
    """The parameter strings as written (canonical names), for messages that quote them."""
    rule_id: str
    """The policy rule's id (retrieved_files/content_regex builds its trigger id from it)."""
    context: EvaluationContext


@dataclass(frozen=True)
class Fired:
    """One trigger instance that fired."""

    message: str
    """The exact message; for Anchore triggers byte-for-byte anchore-engine's (it feeds the md5 id)."""
    shown_message: str | None = None
    """The message to show when `message` holds a secret: the engine's message with only the secret
    part replaced. The trigger id still hashes `message`, so allowlists keep matching."""
    instance_id: str | None = None
    """A trigger id that replaces the default md5 (e.g. `always`, `<rule id>+file://<path>`)."""
    path: str = ""
    """The file inside the image this instance is about, when there is one."""
    layer_index: int | None = None
    """The layer that put the evidence there; the evaluator derives base/app from it."""
    dockerfile_line: int | None = None
    """The Dockerfile line of the instruction this instance is about."""
    vulnerability: VulnerabilityDetail | None = None


TriggerFunction = Callable[[TriggerInput], Iterable[Fired]]


class _Declared(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def aliases(self) -> tuple[str, ...]: ...


_DeclaredT = TypeVar("_DeclaredT", bound=_Declared)


def _declared_as(declared: Iterable[_DeclaredT], name: str) -> _DeclaredT | None:
    """The first of `declared` whose name or one of whose aliases is `name` (case-insensitive)."""
    wanted = name.lower()
    return next((item for item in declared if item.name == wanted or wanted in item.aliases), None)


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of a gate, declared as data, with the function that evaluates it."""

    name: str
    """Canonical name: the Enterprise v2 spelling (e.g. `denylist_usernames`).

    anchore-engine's v1 spelling (`blacklist_usernames`) is an alias. The trigger id hashes the
    name as the rule spells it, so a rule written for anchore-engine yields anchore-engine's ids."""
    description: str
    evaluate: TriggerFunction = field(compare=False, repr=False)
    parameters: tuple[ParameterSpec, ...] = ()
    aliases: tuple[str, ...] = ()
    """Other accepted names, e.g. the v1 `blacklist_usernames` for `denylist_usernames`."""
    needs_feed: bool = False
    """True when anchore-engine needs a vulnerability/package feed for it; without one it never fires."""
    never_fires: str = ""
    """Why this trigger can never fire here (e.g. ci-gate runs no malware scanner); validation warns."""
    cross_check: Callable[[Mapping[str, str]], list[str]] | None = field(
        default=None, compare=False, repr=False
    )
    """Checks that involve several parameters (raw strings by canonical name); returns problems."""
    cross_warnings: Callable[[Mapping[str, str]], list[str]] | None = field(
        default=None, compare=False, repr=False
    )
    """Like `cross_check`, for what anchore-engine accepts but what cannot work (validation warns)."""
    unchecked: Callable[[Analysis, Mapping[str, str]], str] | None = field(default=None, compare=False, repr=False)
    """Why a rule of this trigger that did not fire checked nothing (given the analysis and the rule's
    parameters as written), "" when it did check: reports list such a rule as not checked, never as
    passed. For triggers whose evidence lives outside the analysis (stig's recorded evaluations)."""
    extension: bool = False
    """True for a ci-gate trigger that Anchore does not have."""

    def parameter(self, name: str) -> ParameterSpec | None:
        """The parameter declared under `name` or one of its aliases (case-insensitive)."""
        return _declared_as(self.parameters, name)


@dataclass(frozen=True)
class GateSpec:
    """One gate: a name, what it checks, and its triggers."""

    name: str
    description: str
    triggers: tuple[TriggerSpec, ...]
    extension: bool = False
    """True for ci-gate's own gates (not in Anchore): documents using them are not portable to Anchore."""

    def trigger(self, name: str) -> TriggerSpec | None:
        """The trigger declared under `name` or one of its aliases (case-insensitive)."""
        return _declared_as(self.triggers, name)
