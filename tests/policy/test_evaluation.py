"""Mappings, allowlists, expiry, allowed/denied images and the final action, case by case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from ci_gate.model import ImageConfig
from ci_gate.policy.evaluation import parse_tag, trigger_id
from tests.policy.helpers import NOW, analysis, policy_document, rule, run

ROOT = analysis(config=ImageConfig(user="root"))
ROOT_MESSAGE = "Image runs as root: the image config User is 'root'"
ROOT_ID = trigger_id("image_user", "runs_as_root", ROOT_MESSAGE)


def _mapping(
    name: str,
    rule_sets: list[str],
    registry: str = "*",
    repository: str = "*",
    image_type: str = "tag",
    value: str = "*",
    allowlists: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "registry": registry,
        "repository": repository,
        "image": {"type": image_type, "value": value},
        "rule_set_ids": rule_sets,
        "allowlist_ids": allowlists or [],
    }


def _two_rule_sets(mappings: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    document = policy_document([], **extra)
    document["rule_sets"] = [
        {
            "id": "strict",
            "name": "strict",
            "version": "2",
            "rules": [rule("image_user", "runs_as_root", action="STOP")],
        },
        {
            "id": "lenient",
            "name": "lenient",
            "version": "2",
            "rules": [rule("image_user", "runs_as_root", action="WARN")],
        },
        {"id": "empty", "name": "empty", "version": "2", "rules": []},
    ]
    document["mappings"] = mappings
    return document


@pytest.mark.parametrize(
    ("tag", "mappings", "expected_mapping", "expected_action"),
    [
        ("docker.io/team/app:1.0", [_mapping("first", ["strict"]), _mapping("second", ["lenient"])], "first", "STOP"),
        (
            "docker.io/team/app:1.0-dev",
            [_mapping("dev", ["lenient"], value="*-dev"), _mapping("all", ["strict"])],
            "dev",
            "WARN",
        ),
        (
            "docker.io/team/app:1.0",
            [_mapping("dev", ["lenient"], value="*-dev"), _mapping("all", ["strict"])],
            "all",
            "STOP",
        ),
        (
            "registry.example.com:5000/team/app:2",
            [_mapping("ours", ["empty"], registry="registry.example.com:5000"), _mapping("all", ["strict"])],
            "ours",
            "GO",
        ),
        (
            "docker.io/team/app:2",
            [_mapping("regexp", ["lenient"], repository="regexp:team/(app|web)"), _mapping("all", ["strict"])],
            "regexp",
            "WARN",
        ),
        (
            "docker.io/team/other:2",
            [_mapping("regexp", ["lenient"], repository="regexp:team/(app|web)$"), _mapping("all", ["strict"])],
            "all",
            "STOP",
        ),
        (
            "nginx:latest",
            [_mapping("library", ["lenient"], repository="library/nginx"), _mapping("all", ["strict"])],
            "all",
            "STOP",
        ),  # no library/ insertion, as anchore-engine
        (
            "nginx",
            [_mapping("bare", ["lenient"], registry="docker.io", repository="nginx", value="latest")],
            "bare",
            "WARN",
        ),
        (
            "docker.io/team/app:1",
            [
                _mapping("digest", ["lenient"], image_type="digest", value="sha256:" + "a" * 64),
                _mapping("all", ["strict"]),
            ],
            "digest",
            "WARN",
        ),
        (
            "docker.io/team/app:1",
            [_mapping("id", ["lenient"], image_type="id", value="b" * 64), _mapping("all", ["strict"])],
            "id",
            "WARN",
        ),
        (
            "docker.io/team/app:1",
            [
                _mapping("digest", ["lenient"], image_type="digest", value="sha256:" + "f" * 64),
                _mapping("all", ["strict"]),
            ],
            "all",
            "STOP",
        ),
    ],
)
def test_mappings_first_match(
    tag: str, mappings: list[dict[str, Any]], expected_mapping: str, expected_action: str
) -> None:
    evaluation = run(_two_rule_sets(mappings), ROOT, tag=tag)
    assert evaluation.matched_mapping == expected_mapping
    assert evaluation.final_action == expected_action


def test_no_tag_only_matches_wildcards() -> None:
    evaluation = run(
        _two_rule_sets([_mapping("named", ["strict"], repository="team/app"), _mapping("all", ["lenient"])]),
        ROOT,
        tag=None,
    )
    assert evaluation.matched_mapping == "all"


def test_no_mapping_is_go_with_a_visible_warning() -> None:
    evaluation = run(_two_rule_sets([_mapping("other", ["strict"], registry="quay.io")]), ROOT)
    assert evaluation.final_action == "GO"
    assert evaluation.final_action_reason == "policy_evaluation"
    assert evaluation.matched_mapping is None
    assert evaluation.findings == ()
    assert any("no mapping" in w and "no rules were evaluated" in w for w in evaluation.warnings)


def test_multiple_rule_sets_worst_action_wins() -> None:
    evaluation = run(_two_rule_sets([_mapping("both", ["lenient", "strict"])]), ROOT)
    assert [f.action for f in evaluation.findings] == ["WARN", "STOP"]
    assert evaluation.final_action == "STOP"
    assert [r.rule_set_id for r in evaluation.rules] == ["lenient", "strict"]


def test_warn_only_is_warn() -> None:
    assert run(_two_rule_sets([_mapping("m", ["lenient"])]), ROOT).final_action == "WARN"


def _allowlisted(items: list[dict[str, Any]], image: Any = ROOT, now: Any = NOW, **extra: Any) -> Any:
    document = policy_document([rule("image_user", "runs_as_root")], **extra)
    document["allowlists"] = [{"id": "al", "name": "exceptions", "version": "2", "items": items}]
    document["mappings"][0]["allowlist_ids"] = ["al"]
    return run(document, image, now=now)


def _item(
    trigger: str, expires_on: str | None = None, item_id: str = "i1", gate: str = "image_user", **extra: Any
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "gate": gate, "trigger_id": trigger, **extra}
    if expires_on is not None:
        item["expires_on"] = expires_on
    return item


def test_allowlist_exact_trigger_id() -> None:
    evaluation = _allowlisted([_item(ROOT_ID, reason="base image needs root", approved_by="ISSO")])
    finding = evaluation.findings[0]
    assert finding.action == "STOP" and finding.effective_action == "GO"
    assert finding.allowlisted is not None
    assert (
        finding.allowlisted.allowlist_id,
        finding.allowlisted.item_id,
        finding.allowlisted.reason,
        finding.allowlisted.approved_by,
    ) == ("al", "i1", "base image needs root", "ISSO")
    assert evaluation.final_action == "GO"


@pytest.mark.parametrize(
    ("trigger", "gate", "matches"),
    [
        ("*", "image_user", True),
        (ROOT_ID[:10] + "*", "image_user", True),
        ("regexp:^[0-9a-f]{32}$", "image_user", True),
        ("regexp:^zz", "image_user", False),
        (ROOT_ID, "IMAGE_USER", True),  # gate names compare lower-cased
        (ROOT_ID, "files", False),
        (ROOT_ID.upper(), "image_user", False),
    ],
)
def test_allowlist_matching(trigger: str, gate: str, matches: bool) -> None:
    evaluation = _allowlisted([_item(trigger, gate=gate)])
    assert (evaluation.findings[0].allowlisted is not None) is matches
    assert evaluation.final_action == ("GO" if matches else "STOP")


def test_allowlist_first_item_in_order_wins() -> None:
    evaluation = _allowlisted([_item("*", item_id="wide"), _item(ROOT_ID, item_id="exact")])
    assert evaluation.findings[0].allowlisted is not None
    assert evaluation.findings[0].allowlisted.item_id == "wide"


@pytest.mark.parametrize(
    ("expires", "applies"),
    [
        (NOW + timedelta(seconds=1), True),
        (NOW, False),  # `now >= expires_on` means expired: the boundary is exclusive
        (NOW - timedelta(days=1), False),
    ],
)
def test_allowlist_expiry(expires: Any, applies: bool) -> None:
    stamp = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    evaluation = _allowlisted([_item(ROOT_ID, expires_on=stamp, reason="waiver 42")])
    assert (evaluation.findings[0].allowlisted is not None) is applies
    assert evaluation.final_action == ("GO" if applies else "STOP")
    if applies:
        assert evaluation.expired_exceptions == ()
    else:
        expired = evaluation.expired_exceptions[0]
        assert (expired.item_id, expired.trigger_id, expired.expires_on, expired.reason) == (
            "i1",
            ROOT_ID,
            stamp,
            "waiver 42",
        )
        assert any(w.startswith("EXPIRED exception") for w in evaluation.warnings)


def test_expiry_with_offset() -> None:
    # 13:00+02:00 is 11:00Z, an hour before NOW.
    evaluation = _allowlisted([_item(ROOT_ID, expires_on="2026-06-01T13:00:00+02:00")])
    assert evaluation.findings[0].allowlisted is None


def _images(allowed: list[dict[str, Any]], denied: list[dict[str, Any]], mappings: bool = True) -> Any:
    document = policy_document(
        [rule("image_user", "runs_as_root", action="WARN")], allowlisted_images=allowed, denylisted_images=denied
    )
    if not mappings:
        document["mappings"] = []
    return run(document, ROOT)


def _selection(name: str, repository: str = "team/app", value: str = "*") -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "registry": "*",
        "repository": repository,
        "image": {"type": "tag", "value": value},
    }


def test_denylisted_image_is_stop() -> None:
    evaluation = _images([], [_selection("no-app")])
    assert (evaluation.final_action, evaluation.final_action_reason, evaluation.matched_image_rule) == (
        "STOP",
        "denylisted",
        "no-app",
    )
    assert evaluation.policy_action == "WARN"


def test_allowlisted_image_is_go() -> None:
    evaluation = _images([_selection("trusted")], [])
    assert (evaluation.final_action, evaluation.final_action_reason) == ("GO", "allowlisted")
    assert evaluation.policy_action == "WARN"


def test_denylist_wins_over_allowlist() -> None:
    evaluation = _images([_selection("trusted")], [_selection("no-app")])
    assert (evaluation.final_action, evaluation.final_action_reason) == ("STOP", "denylisted")


def test_image_lists_apply_without_mappings() -> None:
    evaluation = _images([], [_selection("no-app")], mappings=False)
    assert evaluation.final_action == "STOP"


def test_image_lists_that_do_not_match() -> None:
    evaluation = _images([_selection("other", repository="team/other")], [_selection("dev", value="*-dev")])
    assert (evaluation.final_action, evaluation.final_action_reason) == ("WARN", "policy_evaluation")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nginx", ("docker.io", "nginx", "latest")),
        ("docker.io/library/nginx:1.25", ("docker.io", "library/nginx", "1.25")),
        ("localhost/app:dev", ("localhost", "app", "dev")),
        ("127.0.0.1:5000/team/app:1", ("127.0.0.1:5000", "team/app", "1")),
        ("registry:127.0.0.1:5000/team/app", ("127.0.0.1:5000", "team/app", "latest")),
        ("dockerhub/team/app:2", ("docker.io", "team/app", "2")),
        ("ghcr.io/o/app@sha256:" + "a" * 64, ("ghcr.io", "o/app", "latest")),
    ],
)
def test_tag_parsing(text: str, expected: tuple[str, str, str]) -> None:
    parsed = parse_tag(text)
    assert (parsed.registry, parsed.repository, parsed.tag) == expected


def test_rule_outcomes_list_every_rule_with_controls() -> None:
    document = policy_document(
        [
            rule("image_user", "runs_as_root", controls=["NIST AC-6(10)"]),
            rule("healthcheck", "missing", rule_id="r2", action="WARN"),
        ]
    )
    evaluation = run(document, analysis(config=ImageConfig(user="app", healthcheck={"Test": ["CMD", "true"]})))
    assert [(r.rule_id, r.fired, r.controls) for r in evaluation.rules] == [
        ("r1", 0, ("NIST AC-6(10)",)),
        ("r2", 0, ()),
    ]
    assert evaluation.final_action == "GO"


def test_eol_gate_is_skipped_with_a_warning_in_evaluation() -> None:
    import json

    from ci_gate.policy.documents import check_text
    from ci_gate.policy.evaluation import EvaluationInput, evaluate

    document = policy_document(
        [
            {"id": "old", "gate": "dockerfilecheck", "trigger": "exposedports", "action": "STOP", "params": []},
            rule("image_user", "runs_as_root", rule_id="r2"),
        ]
    )
    lenient, problems = check_text(json.dumps(document), "p.json", strict=False)
    assert lenient is not None
    evaluation = evaluate(lenient, ROOT, EvaluationInput(tag="a:1", now=NOW))
    assert [f.rule_id for f in evaluation.findings] == ["r2"]
    assert any("end-of-life" in w for w in evaluation.warnings)
    strict, problems = check_text(json.dumps(document), "p.json", strict=True)
    assert strict is None and any("end-of-life; use 'dockerfile'" in p.message for p in problems)
