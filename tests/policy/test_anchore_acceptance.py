"""What anchore-engine accepts is accepted: comments, unknown fields, repeated allowlist item ids,
regexes that do not compile (the rule errs at evaluation, nothing else), artifact types and sbom
mappings; and messages shown as the engine prints them, with only a secret part replaced."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ci_gate.errors import PolicyError
from ci_gate.policy.documents import check_text
from ci_gate.policy.model import POLICY_KEYS
from ci_gate.reports.evaluation_json import render_evaluation_json
from tests.policy.helpers import analysis, dockerfile, identity, policy_document, rule, run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def problems(document: dict[str, Any]) -> tuple[list[str], list[str]]:
    policy, found = check_text(json.dumps(document, indent=1), "p.json")
    errors = [p.message for p in found if p.severity == "error"]
    assert (policy is None) == bool(errors)
    return errors, [p.message for p in found if p.severity == "warning"]


def with_allowlist(rules: list[dict[str, Any]], items: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    document = policy_document(rules, **extra)
    document["allowlists"] = [{"id": "w", "name": "w", "version": "2", "items": items}]
    document["mappings"][0]["allowlist_ids"] = ["w"]
    return document


def test_comment_is_accepted_on_every_object() -> None:
    document = with_allowlist([rule("always", "always", comment="on a rule")],
                              [{"id": "i", "gate": "always", "trigger_id": "x", "comment": "on an item"}])
    document["comment"] = "on the policy"
    document["rule_sets"][0]["comment"] = "on a rule set"
    document["allowlists"][0]["comment"] = "on an allowlist"
    document["mappings"][0]["comment"] = "on a mapping"
    document["denylisted_images"] = [{"id": "d", "name": "d", "registry": "x", "repository": "y",
                                      "image": {"type": "tag", "value": "z"}, "comment": "on a selection rule"}]
    assert problems(document) == ([], [])


def test_unknown_fields_top_level_warn_nested_v2_errs_v1_warns() -> None:
    document = policy_document([rule("always", "always")], exported_by="Enterprise 5.10")
    assert problems(document) == ([], [
        "unknown field 'exported_by' in the policy; allowed: " + ", ".join(POLICY_KEYS) + "; it is ignored"])
    typo = policy_document([rule("always", "always", parms=[])])
    assert "unknown field 'parms' in a rule (did you mean 'params'?)" in problems(typo)[0][0]
    bundle = {"id": "b", "version": "1_0", "created_at": 1, "mappings": [
        {"name": "m", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"},
         "policy_id": "p", "whitelist_ids": [], "owner": "team"}],
        "policies": [{"id": "p", "version": "1_0", "rules": [
            {"gate": "always", "trigger": "always", "action": "GO", "params": [], "severity": "low"}]}]}
    errors, warnings = problems(bundle)
    assert errors == [] and len(warnings) == 3
    assert all(w.startswith("unknown field '") and w.endswith("it is ignored") for w in warnings)


def test_repeated_allowlist_item_ids_all_apply_and_the_first_match_is_reported() -> None:
    document = with_allowlist([rule("always", "always")], [
        {"id": "same", "gate": "always", "trigger_id": "no-such-id"},
        {"id": "other", "gate": "files", "trigger_id": "always"},
        {"id": "same", "gate": "always", "trigger_id": "alw*"},
        {"id": "last", "gate": "always", "trigger_id": "always"},
    ])
    assert problems(document) == ([], [])
    [finding] = run(document, analysis()).findings
    assert finding.allowlisted is not None and finding.allowlisted.item_id == "same"


def test_a_regex_that_does_not_compile_fails_only_its_rule() -> None:
    broken = rule("files", "name_match", {"regex": "*\\.pem"}, action="WARN", rule_id="broken")
    document = with_allowlist([broken, rule("always", "always", action="GO", rule_id="ok")],
                              [{"id": "every-files-finding", "gate": "files", "trigger_id": "*"}])
    for strict in (False, True):  # `policy validate` (strict) warns too
        policy, found = check_text(json.dumps(document), "p.json", strict=strict)
        assert policy is not None and [p.severity for p in found] == ["warning"]
        assert "parameter 'regex' is not a valid regular expression" in found[0].message
    evaluation = run(document, analysis())
    by_rule = {f.rule_id: f for f in evaluation.findings}
    assert by_rule["ok"].trigger_id == "always"  # the other rules still run
    error = by_rule["broken"]
    assert (error.trigger_id, error.action, error.allowlisted) == ("evaluation_error", "WARN", None)
    assert error.message.startswith("Could not evaluate trigger files/name_match: bad regular expression")
    assert evaluation.final_action == "WARN"
    assert any("'broken' (files/name_match) could not be evaluated" in w for w in evaluation.warnings)


def test_instruction_checks_the_engine_lets_pass_are_warnings() -> None:
    no_value = rule("dockerfile", "instruction", {"instruction": "RUN", "check": "like"}, rule_id="no-value")
    bad_like = rule("dockerfile", "instruction", {"instruction": "RUN", "check": "like", "value": "apt-get ("},
                    rule_id="bad-like")
    errors, warnings = problems(policy_document([no_value, bad_like]))
    assert errors == []
    assert warnings == [
        "rule 'no-value': check 'like' needs a 'value' parameter; without it the rule never fires",
        "rule 'bad-like': 'value' is not a valid regular expression for check 'like'; the rule reports an "
        "evaluation error instead of checking anything",
    ]
    image = analysis(dockerfile=dockerfile("FROM debian:12", "RUN apt-get update"))
    findings = run(policy_document([no_value, bad_like]), image).findings
    assert [(f.rule_id, f.trigger_id) for f in findings] == [("bad-like", "evaluation_error")]


def test_artifact_types_and_sbom_mappings_are_checked() -> None:
    document = policy_document([rule("always", "always")])
    document["rule_sets"][0]["artifact_type"] = "container"
    assert "artifact_type must be image, sbom or source, got 'container'" in problems(document)[0]
    document["rule_sets"][0]["artifact_type"] = "sbom"
    document["rule_sets"][0]["rules"].append(rule("files", "suid_or_guid_set", rule_id="r2"))
    errors, warnings = problems(document)
    assert errors == []
    assert any("mapping 'all' names rule set 'rs', whose artifact_type is sbom" in w for w in warnings)
    assert any("gate 'files' reads image content an SBOM does not carry" in w for w in warnings)
    document["sbom_mappings"] = [{"id": "s", "name": "sboms", "rule_set_ids": ["missing"]}]
    assert any("mapping 'sboms' names rule set 'missing'" in e for e in problems(document)[0])
    document = policy_document([rule("always", "always")], source_mappings=[{"id": "src", "name": "repos"}])
    document["rule_sets"][0]["artifact_type"] = "source"
    document["mappings"][0]["rule_set_ids"] = []
    errors, warnings = problems(document)
    assert errors == []
    assert any(w.startswith("source_mappings select rule sets for source repositories") for w in warnings)
    assert any("has artifact_type source: ci-gate evaluates images and SBOMs" in w for w in warnings)


def _two_kinds() -> dict[str, Any]:
    document = policy_document([rule("always", "always", rule_id="image-rule")])
    document["rule_sets"].append({"id": "sbom-rs", "name": "sbom", "version": "2", "artifact_type": "sbom",
                                  "rules": [rule("always", "always", action="WARN", rule_id="sbom-rule")]})
    return document


def test_an_sbom_runs_sbom_rule_sets_and_an_image_runs_image_rule_sets() -> None:
    document = _two_kinds()
    sbom = analysis(identity=identity(reference="sbom:app.cdx.json", scheme="sbom"))
    assert [f.rule_id for f in run(document, sbom).findings] == ["sbom-rule"]  # every sbom rule set
    assert [f.rule_id for f in run(document, analysis()).findings] == ["image-rule"]
    document["sbom_mappings"] = [{"id": "s", "name": "only some SBOMs", "registry": "*", "repository": "team/*",
                                  "rule_set_ids": ["sbom-rs"], "allowlist_ids": []}]
    assert [f.rule_id for f in run(document, sbom, tag="docker.io/team/app:1").findings] == ["sbom-rule"]
    unmapped = run(document, sbom, tag="docker.io/other/app:1")
    assert unmapped.findings == () and unmapped.matched_mapping is None
    # An image mapping that names an sbom rule set skips it, saying so.
    document["mappings"][0]["rule_set_ids"] = ["rs", "sbom-rs"]
    image = run(document, analysis())
    assert [f.rule_id for f in image.findings] == ["image-rule"]
    assert any("rule set 'sbom-rs' (artifact_type sbom) was skipped" in w for w in image.warnings)


def test_a_policy_without_sbom_rule_sets_checks_an_sbom_with_its_image_mappings() -> None:
    sbom = analysis(identity=identity(reference="sbom:app.cdx.json", scheme="sbom"))
    evaluation = run(policy_document([rule("always", "always")]), sbom)
    assert [f.rule_id for f in evaluation.findings] == ["r1"] and evaluation.matched_mapping == "all"


PASSWD = ("root:x:0:0:root:/root:/bin/bash\n"
          "toor:$6$Zr4nd0m$0123456789abcdefghijklmnopqrstuvwxyzABCDEFG/:0:0::/root:/bin/sh\n"
          "locked:!:1001:1001::/home/locked:/usr/sbin/nologin\n")


def test_passwd_messages_keep_the_entry_and_mask_only_a_password_hash() -> None:
    image = analysis(retrieved_files={"/etc/passwd": PASSWD})
    evaluation = run(policy_document([rule("passwd_file", "blacklist_userids", {"user_ids": "0,1001"})]), image)
    shown = [f.message for f in evaluation.findings]
    assert shown == [
        "Blacklisted uid '0' found in image's /etc/passwd: pentry=root:x:0:0:root:/root:/bin/bash",
        "Blacklisted uid '0' found in image's /etc/passwd: pentry=toor:****:0:0::/root:/bin/sh",
        "Blacklisted uid '1001' found in image's /etc/passwd: "
        "pentry=locked:!:1001:1001::/home/locked:/usr/sbin/nologin",
    ]
    # The trigger id hashes anchore-engine's message, hash included: allowlists written for it match.
    engine_message = "Blacklisted uid '0' found in image's /etc/passwd: pentry=" + PASSWD.splitlines()[1]
    expected = hashlib.md5(("passwd_file" + "blacklist_userids" + engine_message).encode()).hexdigest()
    assert evaluation.findings[1].trigger_id == expected
    rendered = json.dumps(render_evaluation_json(evaluation, image))
    assert "$6$Zr4nd0m" not in rendered and "pentry=root:x:0:0:root:/root:/bin/bash" in rendered


def test_the_evaluation_json_carries_engine_secret_scans_messages() -> None:
    document = policy_document([rule("secret_scans", "content_regex_checks",
                                     {"content_regex_name": "PRIV_KEY", "match_type": "notfound"})])
    image = analysis()
    evaluation = run(document, image)
    [finding] = render_evaluation_json(evaluation, image)["evaluations"][0]["details"]["findings"]
    assert finding["message"] == ("Secret content search analyzer did not find regexp match in container: "
                                  "filename_regex=* content_regex_name=PRIV_KEY")


@pytest.mark.parametrize("key", POLICY_KEYS)
def test_docs_list_every_top_level_field(key: str) -> None:
    section = DOCS.read_text().split("## Documents", 1)[1].split("\n## ", 1)[0]
    assert re.search(rf"`{key}`", section), key


def test_regexp_patterns_that_do_not_compile() -> None:
    document = with_allowlist([rule("always", "always")], [{"id": "i", "gate": "always", "trigger_id": "regexp:(al"}])
    document["mappings"][0]["repository"] = "regexp:team/(app"
    errors, warnings = problems(document)
    assert errors == [] and len(warnings) == 2
    assert "allowlist item 'i': 'regexp:(al' is not a valid regular expression" in warnings[0]
    assert warnings[0].endswith("the item excepts nothing")
    # Which mapping applies cannot be decided: the evaluation stops (exit 2), it does not guess.
    with pytest.raises(PolicyError, match="'regexp:team/\\(app' is not a valid regular expression"):
        run(document, analysis())
    document["mappings"][0]["repository"] = "*"
    [finding] = run(document, analysis()).findings
    assert finding.allowlisted is None  # the broken item excepts nothing


def test_a_v1_bundle_policy_no_mapping_names_is_not_checked_as_the_engine_does_not() -> None:
    broken_policy = {"id": "old", "version": "1_0", "rules": [
        {"gate": "no_such_gate", "trigger": "x", "action": "STOP", "params": []},
        {"gate": "anchoresec", "trigger": "VULNHIGH", "action": "STOP", "params": []}]}
    broken_whitelist = {"id": "old-wl", "version": "1_0", "items": [
        {"id": "i", "gate": "always", "trigger_id": "x", "expires_on": "2020-10-15"}]}
    bundle = {"id": "b", "version": "1_0", "mappings": [
        {"name": "m", "registry": "*", "repository": "*", "image": {"type": "tag", "value": "*"},
         "policy_id": "used", "whitelist_ids": []}],
        "policies": [{"id": "used", "version": "1_0", "rules": [
            {"gate": "always", "trigger": "always", "action": "WARN", "params": []}]}, broken_policy],
        "whitelists": [broken_whitelist]}
    policy, found = check_text(json.dumps(bundle), "b.json", strict=True)
    assert policy is not None and [p.severity for p in found] == ["warning"] * 3
    assert all("which no mapping names: anchore-engine does not check it" in p.message for p in found)
    assert [f.rule_id for f in run(bundle, analysis()).findings] == ["used-rule-0"]
    bundle["mappings"][0]["policy_id"] = "old"  # once a mapping names it, its problems are errors again
    errors, _ = problems(bundle)
    assert any("unknown gate 'no_such_gate'" in e for e in errors)
