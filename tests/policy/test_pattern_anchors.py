"""Every pattern kind in mappings, allowlisted/denylisted images and allowlist items is anchored.

Guards the fail-open mutation that drops the `$` (or `^`) of anchore-engine's `regexify`: a mapping
for `team/app` would then also pick `team/app-debug`, an allowlisted image `team/app` would let
`team/app-debug` through, and an allowlist item would waive findings it was never written for. Each
kind gets a match (so the test is not vacuous) and near misses on both ends.
"""

from __future__ import annotations

from typing import Any

import pytest

from ci_gate.model import ImageConfig
from ci_gate.policy.evaluation import trigger_id
from tests.policy.helpers import analysis, identity, policy_document, rule, run

DIGEST = "sha256:" + "a" * 64
IMAGE_ID = "sha256:" + "b" * 64
ROOT = analysis(config=ImageConfig(user="root"), identity=identity(manifest_digest=DIGEST, config_digest=IMAGE_ID))
ROOT_ID = trigger_id("image_user", "runs_as_root", "Image runs as root: the image config User is 'root'")

# (field, pattern, a tag it matches, tags it must not match)
SELECTIONS: list[tuple[str, str, str, list[str]]] = [
    ("repository", "team/app", "docker.io/team/app:1",
     ["docker.io/team/app-debug:1", "docker.io/myteam/app:1", "docker.io/team/app/sub:1"]),
    ("repository", "team/*", "docker.io/team/app:1", ["docker.io/myteam/app:1", "docker.io/x/team/app:1"]),
    ("repository", "*/app", "docker.io/team/app:1", ["docker.io/team/app-debug:1", "docker.io/team/apps:1"]),
    ("repository", "team/*-svc", "docker.io/team/pay-svc:1", ["docker.io/team/pay-svc-debug:1"]),
    ("repository", "regexp:team/app$", "docker.io/team/app:1", ["docker.io/team/app-debug:1"]),
    ("repository", "regexp:app", "docker.io/app:1", ["docker.io/team/app:1"]),  # re.match: anchored at the start
    ("registry", "registry.example.com", "registry.example.com/team/app:1",
     ["registry.example.com.evil.io/team/app:1", "myregistry.example.com/team/app:1",
      "registry.example.com:5000/team/app:1"]),
    ("registry", "*.example.com", "registry.example.com/team/app:1", ["registry.example.com.evil.io/team/app:1"]),
    ("tag", "1.0", "docker.io/team/app:1.0", ["docker.io/team/app:1.0-debug", "docker.io/team/app:11.0"]),
    ("tag", "*-release", "docker.io/team/app:2-release", ["docker.io/team/app:2-release-debug"]),
    ("tag", "v*", "docker.io/team/app:v2", ["docker.io/team/app:dev-v2"]),
]


def _selection(field: str, pattern: str) -> dict[str, Any]:
    selection: dict[str, Any] = {"registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"}}
    if field == "tag":
        selection["image"] = {"type": "tag", "value": pattern}
    else:
        selection[field] = pattern
    return selection


def _mapped(selection: dict[str, Any], tag: str) -> str | None:
    """Which mapping the image gets with `selection` first and a catch-all second."""
    document = policy_document([rule("image_user", "runs_as_root", action="WARN")])
    catch_all = document["mappings"][0]
    document["mappings"] = [{**catch_all, **selection, "id": "selected", "name": "selected"}, catch_all]
    return run(document, ROOT, tag=tag).matched_mapping


def _image_list_action(kind: str, selection: dict[str, Any], tag: str) -> tuple[str, str]:
    entry = {"id": "listed", "name": "listed", **selection}
    document = policy_document([rule("image_user", "runs_as_root", action="WARN")], **{kind: [entry]})
    evaluation = run(document, ROOT, tag=tag)
    return evaluation.final_action, evaluation.final_action_reason


@pytest.mark.parametrize(("field", "pattern", "match", "misses"), SELECTIONS,
                         ids=[f"{f}={p}" for f, p, _, _ in SELECTIONS])
def test_a_mapping_pattern_is_anchored(field: str, pattern: str, match: str, misses: list[str]) -> None:
    selection = _selection(field, pattern)
    assert _mapped(selection, match) == "selected"
    for tag in misses:
        assert _mapped(selection, tag) == "all", tag


@pytest.mark.parametrize(("field", "pattern", "match", "misses"), SELECTIONS,
                         ids=[f"{f}={p}" for f, p, _, _ in SELECTIONS])
def test_an_allowlisted_image_pattern_is_anchored(field: str, pattern: str, match: str, misses: list[str]) -> None:
    selection = _selection(field, pattern)
    assert _image_list_action("allowlisted_images", selection, match) == ("GO", "allowlisted")
    for tag in misses:
        assert _image_list_action("allowlisted_images", selection, tag) == ("WARN", "policy_evaluation"), tag


@pytest.mark.parametrize(("field", "pattern", "match", "misses"), SELECTIONS[:3],
                         ids=[f"{f}={p}" for f, p, _, _ in SELECTIONS[:3]])
def test_a_denylisted_image_pattern_is_anchored(field: str, pattern: str, match: str, misses: list[str]) -> None:
    selection = _selection(field, pattern)
    assert _image_list_action("denylisted_images", selection, match) == ("STOP", "denylisted")
    for tag in misses:
        assert _image_list_action("denylisted_images", selection, tag)[1] != "denylisted", tag


@pytest.mark.parametrize(("image_type", "value", "matches"), [
    ("digest", DIGEST, True),
    ("digest", DIGEST[:-1], False),            # no prefix match
    ("digest", DIGEST[:20] + "*", False),      # no wildcards for digests
    ("digest", "sha256:" + "a" * 64 + "0", False),
    ("id", IMAGE_ID, True),
    ("id", IMAGE_ID.removeprefix("sha256:"), True),
    ("id", IMAGE_ID[:-1], False),
    ("id", IMAGE_ID.removeprefix("sha256:")[:12], False),  # a short id is not the id
])
def test_digest_and_id_selections_are_exact(image_type: str, value: str, matches: bool) -> None:
    selection = {"registry": "*", "repository": "*", "image": {"type": image_type, "value": value}}
    assert (_mapped(selection, "docker.io/team/app:1") == "selected") is matches
    allowed = _image_list_action("allowlisted_images", selection, "docker.io/team/app:1")
    assert (allowed == ("GO", "allowlisted")) is matches


@pytest.mark.parametrize(("item_trigger_id", "waived"), [
    (ROOT_ID, True),
    (ROOT_ID[:-1], False),                     # an exact item is exact
    (ROOT_ID + "0", False),
    (ROOT_ID[:8] + "*", True),
    (ROOT_ID[1:8] + "*", False),               # wildcard: anchored at the start
    ("*" + ROOT_ID[-8:], True),
    ("*" + ROOT_ID[-8:-1], False),             # and at the end
    ("*" + ROOT_ID[10:20] + "*", True),
    ("regexp:" + ROOT_ID[:10], True),          # a raw regex is matched from the start, as anchore-engine does
    ("regexp:" + ROOT_ID[1:10], False),
])
def test_an_allowlist_item_trigger_id_is_anchored(item_trigger_id: str, waived: bool) -> None:
    document = policy_document([rule("image_user", "runs_as_root", action="STOP")])
    document["allowlists"] = [{"id": "al", "name": "al", "version": "2", "items": [
        {"id": "item", "gate": "image_user", "trigger_id": item_trigger_id}]}]
    document["mappings"][0]["allowlist_ids"] = ["al"]
    evaluation = run(document, ROOT)
    (finding,) = evaluation.findings
    assert (finding.allowlisted is not None) is waived
    assert evaluation.final_action == ("GO" if waived else "STOP")
