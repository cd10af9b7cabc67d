"""Documents: v1 bundles and v2 policies agree; bad policies give one clear error and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ci_gate.model import FileRecord, ImageConfig
from ci_gate.policy.documents import check_text, load_policy
from tests.policy.helpers import NOW, analysis, dockerfile, run

V1_BUNDLE = {
    "id": "bundle-1",
    "version": "1_0",
    "name": "Legacy",
    "comment": "converted on load",
    "whitelisted_images": [],
    "blacklisted_images": [],
    "mappings": [
        {
            "id": "m1",
            "name": "default",
            "registry": "*",
            "repository": "*",
            "image": {"type": "tag", "value": "*"},
            "policy_id": "p1",
            "whitelist_ids": ["w1"],
        }
    ],
    "whitelists": [
        {
            "id": "w1",
            "version": "1_0",
            "name": "Global",
            "items": [{"id": "wl1", "gate": "files", "trigger_id": "*", "expires_on": "2030-01-01T00:00:00Z"}],
        }
    ],
    "policies": [
        {
            "id": "p1",
            "version": "1_0",
            "name": "DefaultPolicy",
            "rules": [
                {
                    "id": "r1",
                    "action": "STOP",
                    "gate": "dockerfile",
                    "trigger": "exposed_ports",
                    "params": [{"name": "ports", "value": "22"}, {"name": "type", "value": "blacklist"}],
                },
                {
                    "id": "r2",
                    "action": "warn",
                    "gate": "dockerfile",
                    "trigger": "instruction",
                    "params": [
                        {"name": "instruction", "value": "HEALTHCHECK"},
                        {"name": "check", "value": "not_exists"},
                    ],
                },
                {"id": "r3", "action": "STOP", "gate": "files", "trigger": "suid_or_guid_set", "params": []},
                {
                    "id": "r4",
                    "action": "STOP",
                    "gate": "passwd_file",
                    "trigger": "blacklist_usernames",
                    "params": [{"name": "user_names", "value": "games"}],
                },
            ],
        }
    ],
}

V2_POLICY = {
    "id": "bundle-1",
    "version": "2",
    "name": "Legacy",
    "description": "converted on load",
    "allowlisted_images": [],
    "denylisted_images": [],
    "mappings": [
        {
            "id": "m1",
            "name": "default",
            "registry": "*",
            "repository": "*",
            "image": {"type": "tag", "value": "*"},
            "rule_set_ids": ["p1"],
            "allowlist_ids": ["w1"],
        }
    ],
    "allowlists": [
        {
            "id": "w1",
            "version": "2",
            "name": "Global",
            "items": [{"id": "wl1", "gate": "files", "trigger_id": "*", "expires_on": "2030-01-01T00:00:00Z"}],
        }
    ],
    "rule_sets": [
        {
            "id": "p1",
            "version": "2",
            "name": "DefaultPolicy",
            "rules": [
                {
                    "id": "r1",
                    "action": "STOP",
                    "gate": "dockerfile",
                    "trigger": "exposed_ports",
                    "params": [{"name": "ports", "value": "22"}, {"name": "type", "value": "blacklist"}],
                },
                {
                    "id": "r2",
                    "action": "WARN",
                    "gate": "dockerfile",
                    "trigger": "instruction",
                    "params": [
                        {"name": "instruction", "value": "HEALTHCHECK"},
                        {"name": "check", "value": "not_exists"},
                    ],
                },
                {"id": "r3", "action": "STOP", "gate": "files", "trigger": "suid_or_guid_set", "params": []},
                {
                    "id": "r4",
                    "action": "STOP",
                    "gate": "passwd_file",
                    "trigger": "blacklist_usernames",
                    "params": [{"name": "user_names", "value": "games"}],
                },
            ],
        }
    ],
}

IMAGE = analysis(
    config=ImageConfig(user="app"),
    dockerfile=dockerfile("FROM debian:12", "EXPOSE 22 8080"),
    files=(FileRecord("/usr/bin/passwd", "file", 0o4755),),
    retrieved_files={"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ngames:x:5:60:games:/usr/games:/bin/false\n"},
)


def _key(evaluation: object) -> list[tuple[str, str, str, str, str, bool]]:
    return [
        (f.gate, f.trigger, f.trigger_id, f.action, f.rule_id, f.allowlisted is not None) for f in evaluation.findings
    ]  # type: ignore[attr-defined]


def test_v1_bundle_and_v2_policy_give_the_same_result(tmp_path: Path) -> None:
    v1 = run(V1_BUNDLE, IMAGE)
    v2 = run(V2_POLICY, IMAGE)
    assert _key(v1) == _key(v2)
    assert (v1.final_action, v1.matched_mapping) == (v2.final_action, v2.matched_mapping) == ("STOP", "default")
    assert len(v1.findings) == 4 and sum(1 for f in v1.findings if f.allowlisted) == 1
    # And from YAML on disk, through load_policy, the same again.
    path = tmp_path / "bundle.yaml"
    import yaml

    path.write_text(yaml.safe_dump(V1_BUNDLE))
    policy = load_policy(str(path))
    assert policy.original_format == "v1"
    assert [r.id for r in policy.rule_sets[0].rules] == ["r1", "r2", "r3", "r4"]


def test_v1_mapping_with_policy_ids_list() -> None:
    bundle = json.loads(json.dumps(V1_BUNDLE))
    bundle["mappings"][0].pop("policy_id")
    bundle["mappings"][0]["policy_ids"] = ["p1"]
    assert _key(run(bundle, IMAGE)) == _key(run(V2_POLICY, IMAGE))


def test_packs_load() -> None:
    for name in ("dod", "cis", "default"):
        policy = load_policy(f"builtin:{name}", strict=True)
        assert policy.rule_sets and policy.mappings


def _problems(document: object, name: str = "p.json") -> list[str]:
    text = document if isinstance(document, str) else json.dumps(document, indent=1)
    policy, problems = check_text(text, name)
    assert policy is None
    return [p.render(name) for p in problems if p.severity == "error"]


def test_error_positions_in_yaml() -> None:
    text = (Path(__file__).parent / "data" / "bad_names.yaml").read_text()
    problems = _problems(text, "bad_names.yaml")
    assert problems == [
        "bad_names.yaml:11:15: error: rule 'r1': unknown gate 'dockerfle' (did you mean 'dockerfile'?); gates: "
        + ", ".join(sorted(__import__("ci_gate.policy.gates.registry", fromlist=["gates"]).gates())),
        "bad_names.yaml:16:18: error: rule 'r2': gate 'files' has no trigger 'suid_or_gid_set' (did you mean "
        "'suid_or_guid_set'?); triggers: content_regex_match, name_match, attribute_match, suid_or_guid_set",
        "bad_names.yaml:24:13: error: rule 'r3': dockerfile/exposed_ports has no parameter 'port' (did you mean "
        "'ports'?); parameters: ports, type, actual_dockerfile_only",
        "bad_names.yaml:19:9: error: rule 'r3': dockerfile/exposed_ports needs the parameter 'ports' (List of port "
        "numbers.)",
    ]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["rule_sets"][0]["rules"][0]["params"][0].update(value="22,x"),
            "parameter 'ports' must be a comma-separated list of non-negative integers",
        ),
        (
            lambda d: d["rule_sets"][0]["rules"][0]["params"][1].update(value="Blacklist"),
            "parameter 'type' must be one of denylist, allowlist, blacklist, whitelist; got 'Blacklist'",
        ),
        (lambda d: d["rule_sets"][0]["rules"][1].update(action="BLOCK"), "action must be STOP, WARN or GO"),
        (
            lambda d: d["rule_sets"][0]["rules"][0]["params"][0].update(value=22),
            'must be a string (Anchore parameter values are strings: write "22")',
        ),
        (lambda d: d["rule_sets"][0]["rules"].append(dict(d["rule_sets"][0]["rules"][0])), "duplicate rule id 'r1'"),
        (lambda d: d["rule_sets"].append(dict(d["rule_sets"][0])), "duplicate rule set id 'p1'"),
        (
            lambda d: d["mappings"][0].update(rule_set_ids=["p2"]),
            "mapping 'default' names rule set 'p2', which the policy does not define; defined: p1",
        ),
        (
            lambda d: d["mappings"][0].update(rule_set_ids=["p11"]),
            "names rule set 'p11', which the policy does not define (did you mean 'p1'?)",
        ),
        (
            lambda d: d["mappings"][0].update(allowlist_ids=["w2"]),
            "mapping 'default' names allowlist 'w2', which the policy does not define",
        ),
        (
            lambda d: d["allowlists"][0]["items"][0].update(expires_on="2030-01-01"),
            "expires_on '2030-01-01' is not an RFC 3339 date-time",
        ),
        (lambda d: d.update(version="3"), "unsupported version '3'"),
        (
            lambda d: d["rule_sets"][0]["rules"][0].update(parms=[]),
            "unknown field 'parms' in a rule (did you mean 'params'?)",
        ),
        (lambda d: d["rule_sets"][0]["rules"][1]["params"].pop(0), "needs the parameter 'instruction'"),
        (
            lambda d: d["rule_sets"][0]["rules"][0]["params"].append({"name": "ports", "value": "23"}),
            "parameter 'ports' is given twice",
        ),
    ],
)
def test_bad_policies(mutate: object, expected: str) -> None:
    document = json.loads(json.dumps(V2_POLICY))
    mutate(document)  # type: ignore[operator]
    problems = _problems(document)
    assert any(expected in p for p in problems), problems


def test_invalid_yaml_and_json_have_positions() -> None:
    assert _problems("id: x\nrule_sets: [\n", "p.yaml")[0].startswith("p.yaml:3:1: error: invalid YAML")
    assert _problems('{"id": "x",\n "name": }', "p.json") == ["p.json:2:10: error: invalid JSON: Expecting value"]
    assert _problems("id: a\nid: b\n", "p.yaml")[0] == "p.yaml:2:1: error: duplicate key 'id'"


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ci_gate.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(V1_BUNDLE))
    result = _cli("policy", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert "valid (legacy v1 bundle, converted): 1 rule set(s), 4 rule(s)" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text((Path(__file__).parent / "data" / "bad_names.yaml").read_text())
    result = _cli("policy", "validate", str(bad))
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:11:15: error: rule 'r1': unknown gate 'dockerfle' (did you mean 'dockerfile'?)")
    assert lines[-1] == f"{bad}: invalid (4 errors)"

    broken = tmp_path / "broken.yaml"
    broken.write_text("rule_sets: [\n")
    result = _cli("policy", "validate", str(broken))
    assert result.returncode == 2 and "invalid YAML" in result.stderr

    result = _cli("policy", "validate", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("ci-gate: error: policy file") and "does not exist" in result.stderr

    eol = tmp_path / "eol.json"
    document = json.loads(json.dumps(V2_POLICY))
    document["rule_sets"][0]["rules"][0]["gate"] = "dockerfilecheck"
    eol.write_text(json.dumps(document))
    result = _cli("policy", "validate", str(eol))
    assert result.returncode == 2 and "gate 'dockerfilecheck' is end-of-life; use 'dockerfile'" in result.stderr


def test_gate_cli_with_a_bad_policy_is_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    document = json.loads(json.dumps(V2_POLICY))
    document["mappings"][0]["rule_set_ids"] = ["nope"]
    bad.write_text(json.dumps(document))
    result = _cli("gate", "dir:" + str(tmp_path), "--policy", str(bad))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "mapping 'default' names rule set 'nope', which the policy does not define" in result.stderr
    result = _cli("gate", "dir:" + str(tmp_path), "--policy", str(bad), "--on-error", "pass")
    assert result.returncode == 0
    assert "could NOT decide" in result.stderr


def test_show_and_gates_cli() -> None:
    shown = _cli("policy", "show", "builtin:dod")
    assert shown.returncode == 0
    assert "dod-2.2-non-root-user" in shown.stdout and "CCI-002235" in shown.stdout
    _, problems = check_text(shown.stdout, "shown.yaml")
    assert not [p for p in problems if p.severity == "error"]
    unknown = _cli("policy", "show", "builtin:dodd")
    assert unknown.returncode == 2 and "did you mean 'dod'" in unknown.stderr
    listed = _cli("policy", "gates")
    assert listed.returncode == 0
    assert "passwd_file/denylist_usernames (also: blacklist_usernames)" in listed.stdout
    assert "user_names (CommaDelimitedStringList; required; aliases: usernameblacklist)" in listed.stdout
    assert "image_user [ci-gate extension]" in listed.stdout


def test_now_is_used_for_allowlist_expiry_in_v1_bundles() -> None:
    bundle = json.loads(json.dumps(V1_BUNDLE))
    bundle["whitelists"][0]["items"][0]["expires_on"] = "2026-06-01T12:00:00Z"
    evaluation = run(bundle, IMAGE, now=NOW)
    assert not any(f.allowlisted for f in evaluation.findings)
    assert evaluation.expired_exceptions[0].item_id == "wl1"


@pytest.mark.parametrize("command", [["gate"], ["policy"], ["policy", "validate"], ["policy", "test"],
                                     ["policy", "gates"], ["policy", "show"]])
def test_help_renders(command: list[str]) -> None:
    result = _cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_v1_image_lists_are_converted() -> None:
    bundle = json.loads(json.dumps(V1_BUNDLE))
    bundle["whitelisted_images"] = [{"name": "trusted", "registry": "*", "repository": "team/*",
                                     "image": {"type": "tag", "value": "*"}}]
    assert (run(bundle, IMAGE).final_action, run(bundle, IMAGE).final_action_reason) == ("GO", "allowlisted")
    bundle["blacklisted_images"] = [{"name": "old", "registry": "docker.io", "repository": "team/app",
                                     "image": {"type": "tag", "value": "1.*"}}]
    evaluation = run(bundle, IMAGE)
    assert (evaluation.final_action, evaluation.final_action_reason, evaluation.matched_image_rule) == (
        "STOP", "denylisted", "old")
