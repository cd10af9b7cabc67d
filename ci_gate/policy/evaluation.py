"""Evaluate a policy on an analysed image: mappings, rules, allowlists, allowed/denied images.

Semantics follow anchore-engine's
anchore_engine/services/policy_engine/engine/policy/bundles.py (docs/policy.md for users):

* the evaluated tag is parsed like `parse_dockerimage_string` (docker.io default registry, no
  `library/` insertion, `latest` default tag);
* registry, repository, tag and allowlist trigger ids match with `*` wildcards or `regexp:`;
* the first matching mapping wins; its rule sets run in order, its allowlists apply in order;
* an allowlist item applies until `now >= expires_on`; an expired item is reported as expired;
* a denylisted image is STOP (reason denylisted) whatever else matches; else an allowlisted image
  is GO (reason allowlisted); else the worst non-allowlisted rule action (reason policy_evaluation);
* no matching mapping: GO, with a warning that nothing was evaluated;
* an image runs only `image` rule sets; an SBOM (`sbom:` source) runs the `sbom` rule sets its
  first matching `sbom_mappings` entry names, or every `sbom` rule set when there are no sbom
  mappings (as Enterprise 6 does), or, in a policy with no `sbom` rule sets, the image mappings;
* a rule that cannot be evaluated (a regular expression that does not compile) reports one
  finding with trigger id `evaluation_error` (anchore-engine's id for a failed trigger) and the
  rule's action; no allowlist item covers it, so a broken check never passes silently.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from ci_gate.errors import PolicyError
from ci_gate.model import (
    AllowlistMatch,
    Analysis,
    Evaluation,
    ExpiredException,
    Finding,
    RuleOutcome,
    layer_origin,
    worst_action,
)
from ci_gate.policy.gates import registry
from ci_gate.policy.gates.interface import (
    EVALUATION_ERROR_ID,
    EvaluationContext,
    Fired,
    TriggerInput,
    VulnerabilityMatchProvider,
)
from ci_gate.policy.model import (
    Allowlist,
    AllowlistItem,
    ImageRef,
    MappingRule,
    Policy,
    Rule,
)
from ci_gate.sources.schemes import NAME_PREFIXES

# --- image references and wildcard matching --------------------------------------------------------


@dataclass(frozen=True)
class ImageTag:
    """A tag split as anchore-engine splits it."""

    registry: str
    repository: str
    tag: str
    digest: str = ""

    @property
    def full(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"


def parse_tag(reference: str | None) -> ImageTag:
    """`host:5000/team/app:1.2` → (host:5000, team/app, 1.2); None → `*/*:*` as anchore-engine does."""
    if not reference:
        return ImageTag("*", "*", "*")
    text = reference.strip()
    for scheme in NAME_PREFIXES:
        if text.startswith(scheme) and not text[len(scheme) :].startswith("//"):
            text = text[len(scheme) :]
    if text.startswith("dockerhub/"):
        text = "docker.io/" + text[len("dockerhub/") :]
    digest = ""
    if "@" in text:
        text, digest = text.split("@", 1)
    first, _, rest = text.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry_name, remainder = first, rest
    else:
        registry_name, remainder = "docker.io", text
    last_slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > last_slash:
        repository, tag = remainder[:colon], remainder[colon + 1 :]
    else:
        repository, tag = remainder, "latest"
    return ImageTag(registry_name, repository, tag, digest)


@lru_cache(maxsize=4096)
def wildcard(pattern: str) -> re.Pattern[str]:
    """anchore-engine's `regexify`: `*` matches anything, anchored; `regexp:` gives a raw regex."""
    if pattern.startswith("regexp:"):
        return re.compile(pattern[len("regexp:") :])
    return re.compile("^" + "(.*)".join(re.escape(piece) for piece in pattern.split("*")) + "$")


def _matches(pattern: str, value: str) -> bool:
    if pattern == value:
        return True
    try:
        return bool(wildcard(pattern).match(value))
    except re.error:
        if pattern.startswith("regexp:"):
            raise PolicyError(
                f"the pattern {pattern!r} is not a valid regular expression; fix it in the policy"
            ) from None
        raise


def rule_matches(
    registry_pattern: str, repository: str, image: ImageRef, tag: ImageTag, image_digest: str, image_id: str
) -> bool:
    """A mapping or image-selection rule against the evaluated image."""
    if not _matches(registry_pattern, tag.registry) or not _matches(repository, tag.repository):
        return False
    if image.type == "tag":
        return _matches(image.value, tag.tag)
    if image.type == "digest":
        return bool(image_digest) and image.value == image_digest
    if image.type == "id":
        bare = image_id.removeprefix("sha256:")
        return bool(bare) and image.value.removeprefix("sha256:") == bare
    return False


# --- evaluation ------------------------------------------------------------------------------------


def trigger_id(gate: str, trigger: str, message: str) -> str:
    """anchore-engine's default trigger id: md5 of gate name + trigger name + message."""
    return hashlib.md5((gate + trigger + message).encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class EvaluationInput:
    """What one evaluation needs besides the policy and the analysis."""

    tag: str | None = None
    """The tag the mappings see; None = `*/*:*` (only wildcard rules match)."""
    now: datetime | None = None
    """Evaluation time; default the current UTC time."""
    vulnerabilities: VulnerabilityMatchProvider | None = None


def image_digest_of(analysis: Analysis) -> str:
    return analysis.identity.manifest_digest or analysis.identity.config_digest or ""


def evaluate(policy: Policy, analysis: Analysis, options: EvaluationInput | None = None) -> Evaluation:
    """The policy decision for one image (pure: same inputs, same output)."""
    options = options or EvaluationInput()
    now = options.now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    tag = parse_tag(options.tag)
    digest = image_digest_of(analysis)
    image_id = analysis.identity.config_digest or ""
    warnings: list[str] = list(policy.warnings)

    denied = next(
        (
            r
            for r in policy.denylisted_images
            if rule_matches(r.registry, r.repository, r.image, tag, digest, image_id)
        ),
        None,
    )
    allowed = next(
        (
            r
            for r in policy.allowlisted_images
            if rule_matches(r.registry, r.repository, r.image, tag, digest, image_id)
        ),
        None,
    )
    artifact_type, mappings = mappings_for_artifact(policy, analysis)
    mapping = next(
        (m for m in mappings if rule_matches(m.registry, m.repository, m.image, tag, digest, image_id)),
        None,
    )

    findings: list[Finding] = []
    outcomes: list[RuleOutcome] = []
    expired: list[ExpiredException] = []
    if mapping is None:
        warnings.append(
            f"no mapping of policy '{policy.name}' matches {tag.full}: no rules were evaluated "
            "(add a mapping with registry '*', repository '*' and tag '*' to cover every image)"
        )
    else:
        context = EvaluationContext(analysis=analysis, now=now, vulnerabilities=options.vulnerabilities)
        for rule_set_id in mapping.rule_set_ids:
            rule_set = policy.rule_set(rule_set_id)
            if rule_set is None:  # documents.py rejects this; kept for hand-built policies
                raise PolicyError(
                    f"mapping '{mapping.name}' names rule set '{rule_set_id}', which the policy "
                    "does not define"
                )
            if rule_set.artifact_type != artifact_type:
                warnings.append(
                    f"rule set '{rule_set.id}' (artifact_type {rule_set.artifact_type}) was skipped: "
                    f"mapping '{mapping.name}' evaluates an {artifact_type}"
                )
                continue
            for rule in rule_set.rules:
                fired = _run_rule(rule, rule_set.id, policy, context, warnings)
                findings.extend(fired)
                outcomes.append(
                    RuleOutcome(
                        rule_id=rule.id,
                        gate=rule.gate,
                        trigger=rule.trigger,
                        action=rule.action,
                        policy_id=policy.id,
                        rule_set_id=rule_set.id,
                        controls=rule.controls,
                        params=dict(rule.params),
                        fired=len(fired),
                        description=rule.description,
                        recommendation=rule.recommendation,
                    )
                )
        allowlists = [a for a in (policy.allowlist(i) for i in mapping.allowlist_ids) if a is not None]
        findings, expired = apply_allowlists(findings, allowlists, now)
        for item in expired:
            warnings.append(
                f"EXPIRED exception: allowlist item '{item.item_id}' ({item.gate} {item.trigger_id}) "
                f"expired on {item.expires_on} and no longer applies"
            )

    policy_action = worst_action(f.effective_action for f in findings)
    if denied is not None:
        final, reason, image_rule = "STOP", "denylisted", denied.name or denied.id
    elif allowed is not None:
        final, reason, image_rule = "GO", "allowlisted", allowed.name or allowed.id
    else:
        final, reason, image_rule = policy_action, "policy_evaluation", None
    return Evaluation(
        image_digest=digest,
        tag=options.tag or "",
        policy_id=policy.id,
        policy_name=policy.name,
        final_action=final,
        final_action_reason=reason,
        findings=tuple(findings),
        rules=tuple(outcomes),
        matched_mapping=mapping.name if mapping else None,
        expired_exceptions=tuple(expired),
        warnings=tuple(warnings),
        evaluated_at=now.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        backend="local",
        policy_action=policy_action,
        matched_image_rule=image_rule,
    )


def _run_rule(
    rule: Rule, rule_set_id: str, policy: Policy, context: EvaluationContext, warnings: list[str]
) -> list[Finding]:
    if rule.gate in registry.END_OF_LIFE:
        warnings.append(f"rule '{rule.id}': gate '{rule.gate}' is end-of-life; the rule was skipped")
        return []
    gate = registry.gate(rule.gate)
    trigger = gate.trigger(rule.trigger) if gate else None
    if gate is None or trigger is None:
        raise PolicyError(f"rule '{rule.id}': gate '{rule.gate}' trigger '{rule.trigger}' is not available")
    if trigger.needs_feed:
        warnings.append(
            f"rule '{rule.id}': {rule.gate}/{rule.trigger} needs Anchore's packages feed; not evaluated"
        )
        return []
    raw = dict(rule.params)
    params = {}
    for name, value in raw.items():
        spec = trigger.parameter(name)
        if spec is not None:
            params[spec.name] = spec.parse(value)
    call = TriggerInput(params=params, raw_params=raw, rule_id=rule.id, context=context)
    analysis = context.analysis
    findings = []
    try:
        fired_list = list(trigger.evaluate(call))
    except re.error as error:
        # anchore-engine accepts the document and fails only this trigger; the failure is a
        # finding with the rule's action, so the rule's author decides what an unchecked rule means.
        problem = f"bad regular expression: {error}"
        warnings.append(f"rule '{rule.id}' ({rule.gate}/{rule.trigger}) could not be evaluated: {problem}")
        fired_list = [
            Fired(message=f"Could not evaluate trigger {rule.gate}/{rule.trigger}: {problem}",
                  instance_id=EVALUATION_ERROR_ID)
        ]
    for fired in fired_list:
        findings.append(
            Finding(
                gate=rule.gate,
                trigger=rule.trigger,
                trigger_id=fired.instance_id or trigger_id(rule.gate, rule.trigger, fired.message),
                action=rule.action,
                message=fired.message if fired.shown_message is None else fired.shown_message,
                rule_id=rule.id,
                policy_id=policy.id,
                rule_set_id=rule_set_id,
                controls=rule.controls,
                path=fired.path,
                layer_index=fired.layer_index,
                origin=layer_origin(analysis.identity.layers, fired.layer_index),
                dockerfile_line=fired.dockerfile_line,
                vulnerability=fired.vulnerability,
                recommendation=rule.recommendation,
            )
        )
    return findings


def _item_expired(item: AllowlistItem, now: datetime) -> bool:
    return item.expires_on is not None and now >= item.expires_on


def _item_matches(item: AllowlistItem, finding: Finding) -> bool:
    try:
        return item.gate == finding.gate and _matches(item.trigger_id, finding.trigger_id)
    except (PolicyError, re.error):
        return False  # an item whose regexp: does not compile excepts nothing (policy validate says so)


def apply_allowlists(
    findings: Sequence[Finding], allowlists: Sequence[Allowlist], now: datetime
) -> tuple[list[Finding], list[ExpiredException]]:
    """Mark findings an active allowlist item covers; list expired items (with what they would cover)."""
    active: list[tuple[Allowlist, AllowlistItem]] = []
    expired_items: list[tuple[Allowlist, AllowlistItem]] = []
    for allowlist in allowlists:
        for item in allowlist.items:
            (expired_items if _item_expired(item, now) else active).append((allowlist, item))
    order = {id(item): position for position, (_, item) in enumerate(active)}
    exact: dict[tuple[str, str], tuple[Allowlist, AllowlistItem]] = {}
    patterns: list[tuple[Allowlist, AllowlistItem]] = []
    for allowlist, item in active:
        if "*" in item.trigger_id or item.trigger_id.startswith("regexp:"):
            patterns.append((allowlist, item))
        else:
            exact.setdefault((item.gate, item.trigger_id), (allowlist, item))
    result = []
    for finding in findings:
        if finding.trigger_id == EVALUATION_ERROR_ID:
            result.append(finding)  # a rule that could not be checked is never excepted
            continue
        match = exact.get((finding.gate, finding.trigger_id))
        for candidate in patterns:
            # The first item in allowlist order wins, whether exact or wildcard.
            if match is not None and order[id(candidate[1])] > order[id(match[1])]:
                break
            if _item_matches(candidate[1], finding):
                match = candidate
                break
        if match is not None:
            finding = _with_allowlist(finding, *match)
        result.append(finding)
    expired = [
        ExpiredException(
            allowlist_id=allowlist.id,
            item_id=item.id,
            gate=item.gate,
            trigger_id=item.trigger_id,
            expires_on=item.expires_on_text,
            reason=item.reason,
            approved_by=item.approved_by,
        )
        for allowlist, item in expired_items
    ]
    return result, expired


def _with_allowlist(finding: Finding, allowlist: Allowlist, item: AllowlistItem) -> Finding:
    from dataclasses import replace

    return replace(
        finding,
        allowlisted=AllowlistMatch(
            allowlist_id=allowlist.id,
            allowlist_name=allowlist.name,
            item_id=item.id,
            reason=item.reason,
            approved_by=item.approved_by,
            expires_on=item.expires_on_text,
        ),
    )


def mappings_for_artifact(policy: Policy, analysis: Analysis) -> tuple[str, tuple[MappingRule, ...]]:
    """(artifact type, the mappings that select its rule sets) for an image or an SBOM."""
    if analysis.identity.scheme != "sbom":
        return "image", policy.mappings
    if policy.sbom_mappings:
        return "sbom", policy.sbom_mappings
    sbom_rule_sets = tuple(r.id for r in policy.rule_sets if r.artifact_type == "sbom")
    if sbom_rule_sets:
        # Enterprise 6 applies every sbom rule set when no sbom mapping selects among them.
        return "sbom", (
            MappingRule(
                id="sbom-rule-sets",
                name="every sbom rule set",
                registry="*",
                repository="*",
                image=ImageRef("tag", "*"),
                rule_set_ids=sbom_rule_sets,
            ),
        )
    # A policy written for images only: an SBOM is checked with the image mappings and rule sets.
    return "image", policy.mappings


def mapping_for(policy: Policy, tag: str | None, analysis: Analysis) -> MappingRule | None:
    """The mapping that applies to an image (first match), for commands that explain a decision."""
    parsed = parse_tag(tag)
    digest = image_digest_of(analysis)
    image_id = analysis.identity.config_digest or ""
    _, mappings = mappings_for_artifact(policy, analysis)
    return next(
        (m for m in mappings if rule_matches(m.registry, m.repository, m.image, parsed, digest, image_id)),
        None,
    )
