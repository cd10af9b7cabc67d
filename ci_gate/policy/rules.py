"""Validating rule sets and rules against the gate declarations: unknown gate, trigger or
parameter names (with the nearest valid one), parameter types and values, end-of-life gates."""

from __future__ import annotations

from typing import Any

from ci_gate.model import ACTIONS
from ci_gate.policy.fields import FieldReader, kind_of, nearest, scalar_text
from ci_gate.policy.gates import registry
from ci_gate.policy.gates.interface import TriggerSpec
from ci_gate.policy.model import (
    ARTIFACT_TYPES,
    PARAMETER_KEYS,
    RULE_KEYS,
    RULE_SET_KEYS,
    SBOM_GATES,
    Rule,
    RuleSet,
)


class RuleReader(FieldReader):
    """Rule sets and their rules, each checked against its gate's declared triggers and parameters."""

    def rule_set(self, value: Any, path: tuple[Any, ...], original: str) -> RuleSet | None:
        data = self.fields(value, path, "a rule set", RULE_SET_KEYS)
        if data is None:
            return None
        rule_set_id, version = self.id_and_version(data, path, "a rule set", "rule set", original)
        artifact = data.get("artifact_type", "image")
        if artifact not in ARTIFACT_TYPES:
            self.error(
                (*path, "artifact_type"),
                f"artifact_type must be {', '.join(ARTIFACT_TYPES[:-1])} or {ARTIFACT_TYPES[-1]}, got {artifact!r}",
            )
            artifact = "image"
        rules = [
            self.rule(v, (*path, "rules", i))
            for i, v in enumerate(self.items(data, "rules", path, f"rule set '{rule_set_id}'"))
        ]
        self.unique([(r.id, (*path, "rules", i)) for i, r in enumerate(rules) if r], "rule")
        if artifact == "sbom":
            for index, rule in enumerate(rules):
                if rule is not None and rule.gate not in SBOM_GATES:
                    self.warn(
                        (*path, "rules", index, "gate"),
                        f"rule '{rule.id}' of sbom rule set '{rule_set_id}': gate '{rule.gate}' reads image "
                        "content an SBOM does not carry (sbom rule sets check "
                        f"{', '.join(SBOM_GATES)})",
                    )
        return RuleSet(
            id=rule_set_id,
            name=self.text(data, "name", path, "a rule set", default=rule_set_id),
            version=version,
            rules=tuple(r for r in rules if r),
            description=self.text(data, "description", path, "", required=False),
            artifact_type=str(artifact),
        )

    def rule(self, value: Any, path: tuple[Any, ...]) -> Rule | None:
        data = self.fields(value, path, "a rule", RULE_KEYS)
        if data is None:
            return None
        rule_id = self.text(data, "id", path, "a rule")
        what = f"rule '{rule_id}'"
        gate_name = self.text(data, "gate", path, what).lower()
        trigger_name = self.text(data, "trigger", path, what).lower()
        action = self.text(data, "action", path, what).upper()
        if action and action not in ACTIONS:
            self.error((*path, "action"), f"{what}: action must be STOP, WARN or GO, got {data['action']!r}")
        raw: dict[str, str] = {}
        positions: dict[str, tuple[Any, ...]] = {}
        for index, param in enumerate(self.items(data, "params", path, what)):
            param_path = (*path, "params", index)
            entry = self.fields(param, param_path, f"a parameter of {what}", PARAMETER_KEYS)
            if entry is None:
                continue
            name = self.text(entry, "name", param_path, f"a parameter of {what}")
            if "value" not in entry:
                self.error(param_path, f"{what}: parameter '{name}' has no value")
                continue
            param_value = entry["value"]
            if not isinstance(param_value, str):
                self.error(
                    (*param_path, "value"),
                    f"{what}: parameter '{name}' must be a string (Anchore "
                    f'parameter values are strings: write "{scalar_text(param_value)}"), got {kind_of(param_value)}',
                )
                continue
            if name in raw:
                self.error(param_path, f"{what}: parameter '{name}' is given twice")
            raw[name] = param_value
            positions[name] = param_path
        controls = self.strings(data, "controls", path, what, required=False)
        params = self.check_rule(rule_id, gate_name, trigger_name, raw, positions, path) if gate_name else None
        if params is None:
            return None
        return Rule(
            id=rule_id,
            gate=gate_name,
            trigger=trigger_name,
            action=action,
            params=tuple(params.items()),
            description=self.text(data, "description", path, "", required=False),
            recommendation=self.text(data, "recommendation", path, "", required=False),
            controls=controls,
            line=self.at(path)[0],
        )

    def check_rule(
        self,
        rule_id: str,
        gate_name: str,
        trigger_name: str,
        raw: dict[str, str],
        positions: dict[str, tuple[Any, ...]],
        path: tuple[Any, ...],
    ) -> dict[str, str] | None:
        what = f"rule '{rule_id}'"
        if gate_name in registry.END_OF_LIFE:
            replacement = registry.END_OF_LIFE[gate_name]
            message = f"{what}: gate '{gate_name}' is end-of-life" + (f"; use '{replacement}'" if replacement else "")
            if self.strict:
                self.error((*path, "gate"), message)
            else:
                self.warn((*path, "gate"), message + "; the rule is skipped")
            return dict(raw)
        gate = registry.gate(gate_name)
        if gate is None:
            names = sorted(registry.gates())
            self.error(
                (*path, "gate"),
                f"{what}: unknown gate '{gate_name}'{nearest(gate_name, names)}; gates: {', '.join(names)}",
            )
            return None
        trigger = gate.trigger(trigger_name)
        if trigger is None:
            names = [t.name for t in gate.triggers]
            all_names = names + [a for t in gate.triggers for a in t.aliases]
            self.error(
                (*path, "trigger"),
                f"{what}: gate '{gate_name}' has no trigger '{trigger_name}'"
                f"{nearest(trigger_name, all_names)}; triggers: {', '.join(names)}",
            )
            return None
        return self.check_params(what, gate.name, trigger, raw, positions, path)

    def check_params(
        self,
        what: str,
        gate_name: str,
        trigger: TriggerSpec,
        raw: dict[str, str],
        positions: dict[str, tuple[Any, ...]],
        path: tuple[Any, ...],
    ) -> dict[str, str] | None:
        ok = True
        canonical: dict[str, str] = {}
        for name, value in raw.items():
            spec = trigger.parameter(name)
            if spec is None:
                names = [p.name for p in trigger.parameters]
                self.error(
                    positions[name],
                    f"{what}: {gate_name}/{trigger.name} has no parameter '{name}'"
                    f"{nearest(name.lower(), names)}; parameters: {', '.join(names) or 'none'}",
                )
                ok = False
                continue
            problem = spec.check(value)
            if problem:
                self.error((*positions[name], "value"), f"{what}: parameter '{spec.name}' {problem}")
                ok = False
                continue
            regex_problem = spec.regex_problem(value)
            if regex_problem:
                self.warn(
                    (*positions[name], "value"),
                    f"{what}: parameter '{spec.name}' {regex_problem}; the rule reports an evaluation "
                    "error instead of checking anything",
                )
            canonical[spec.name] = value
        for spec in trigger.parameters:
            if spec.required and spec.name not in canonical and not any(trigger.parameter(n) is spec for n in raw):
                self.error(
                    path,
                    f"{what}: {gate_name}/{trigger.name} needs the parameter '{spec.name}' ({spec.description})",
                )
                ok = False
        if ok and trigger.cross_check:
            for problem in trigger.cross_check(canonical):
                self.error(path, f"{what}: {problem}")
                ok = False
        if ok and trigger.cross_warnings:
            for problem in trigger.cross_warnings(canonical):
                self.warn(path, f"{what}: {problem}")
        if ok and trigger.never_fires:
            self.warn(path, f"{what}: {gate_name}/{trigger.name} never fires here: {trigger.never_fires}")
        if ok and trigger.needs_feed:
            self.warn(
                path,
                f"{what}: {gate_name}/{trigger.name} needs Anchore's packages feed, which ci-gate "
                "does not have; it never fires here",
            )
        return canonical if ok else None
