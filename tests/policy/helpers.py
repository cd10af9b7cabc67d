"""Builders for policy tests: analyses made directly (the unit level of the engine) and one-rule policies."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from ci_gate.model import (
    Analysis,
    Dockerfile,
    DockerfileInstruction,
    Evaluation,
    Finding,
    ImageConfig,
    ImageIdentity,
    Layer,
)
from ci_gate.policy.documents import check_text
from ci_gate.policy.evaluation import EvaluationInput, evaluate
from ci_gate.policy.model import Policy

NOW = datetime(2026, 6, 1, 12, 0, 0, tzinfo=timezone.utc)


def identity(**changes: Any) -> ImageIdentity:
    values: dict[str, Any] = {
        "reference": "oci-dir:/images/app",
        "scheme": "oci-dir",
        "manifest_digest": "sha256:" + "a" * 64,
        "config_digest": "sha256:" + "b" * 64,
        "platform": "linux/amd64",
        "layers": (
            Layer(
                0,
                "sha256:" + "1" * 64,
                "sha256:" + "2" * 64,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                1000,
                base=True,
            ),
            Layer(
                1,
                "sha256:" + "3" * 64,
                "sha256:" + "4" * 64,
                "application/vnd.oci.image.layer.v1.tar+gzip",
                500,
                base=False,
            ),
        ),
        "total_size": 1500,
    }
    values.update(changes)
    return ImageIdentity(**values)


def analysis(**changes: Any) -> Analysis:
    """A small, clean analysis; pass fields to change (config=ImageConfig(...), files=(...), ...)."""
    values: dict[str, Any] = {"identity": identity(), "config": ImageConfig(user="app")}
    values.update(changes)
    return Analysis(**values)


def dockerfile(*lines: str, mode: str = "actual", base_image: str = "") -> Dockerfile:
    """`dockerfile("FROM debian:12", "USER app")` → an actual Dockerfile, one instruction per line."""
    instructions = []
    for number, line in enumerate(lines, start=1):
        keyword, _, value = line.partition(" ")
        instructions.append(DockerfileInstruction(keyword.upper(), value.strip(), number))
    return Dockerfile(mode=mode, instructions=tuple(instructions), base_image=base_image)


def policy_document(rules: Iterable[Mapping[str, Any]], **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "test-policy",
        "name": "test",
        "version": "2",
        "rule_sets": [{"id": "rs", "name": "rules", "version": "2", "rules": list(rules)}],
        "allowlists": [],
        "mappings": [
            {
                "id": "m",
                "name": "all",
                "registry": "*",
                "repository": "*",
                "image": {"type": "tag", "value": "*"},
                "rule_set_ids": ["rs"],
                "allowlist_ids": [],
            }
        ],
    }
    document.update(extra)
    return document


def rule(
    gate: str,
    trigger: str,
    params: Mapping[str, str] | None = None,
    action: str = "STOP",
    rule_id: str = "r1",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "gate": gate,
        "trigger": trigger,
        "action": action,
        "params": [{"name": k, "value": v} for k, v in (params or {}).items()],
        **extra,
    }


def load(document: Mapping[str, Any], strict: bool = False) -> Policy:
    policy, problems = check_text(json.dumps(document), "test.json", strict=strict)
    errors = [p for p in problems if p.severity == "error"]
    assert policy is not None and not errors, [p.render("test.json") for p in problems]
    return policy


def run(
    document: Mapping[str, Any], image: Analysis, tag: str | None = "docker.io/team/app:1.0", now: datetime = NOW
) -> Evaluation:
    return evaluate(load(document), image, EvaluationInput(tag=tag, now=now))


def fire(gate: str, trigger: str, params: Mapping[str, str] | None, image: Analysis) -> list[Finding]:
    """The findings of one rule on one image."""
    return list(run(policy_document([rule(gate, trigger, params)]), image).findings)


def messages(gate: str, trigger: str, params: Mapping[str, str] | None, image: Analysis) -> list[str]:
    return [f.message for f in fire(gate, trigger, params, image)]
