"""The real anchore-cli 0.9.3 against `ci-gate serve` and a real registry: every command of issue 13's
"Done when", by tag and by digest, with a clean and a leaky image added in either order.

The leaky image (AWS credentials planted in /etc/app.conf) must fail the default policy whatever the
order; before serve answered /v1/swagger.json, anchore-cli sent the tag in a GET body that was
ignored, and reported the first image added instead.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.anchore_cli import AnchoreCli, anchore_cli_path, build_app_image, field
from tests.support.oci import OciImage, push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess

CLEAN_DOCKERFILE = "FROM debian:12\nCOPY app.conf /etc/app.conf\nUSER 1000\n"


@pytest.fixture(scope="module")
def app_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OciImage]:
    root = tmp_path_factory.mktemp("cli-images")
    return {"clean": build_app_image(root / "clean", leaky=False), "leaky": build_app_image(root / "leaky", leaky=True)}


@pytest.fixture
def cli(tmp_path: Path, demo_vuln_db: Path) -> Iterator[AnchoreCli]:
    """anchore-cli and a fresh server (empty data dir) for each test."""
    path = anchore_cli_path()
    with ServeProcess(tmp_path / "data", vuln_db=demo_vuln_db) as server:
        (tmp_path / "home").mkdir()
        yield AnchoreCli(path, server, tmp_path / "home")


def _push_pair(registry: RegistryServer, images: dict[str, OciImage]) -> dict[str, str]:
    repo = f"cli/app-{uuid.uuid4().hex[:8]}"
    return {name: push(image, registry.host, f"{repo}:{name}") for name, image in images.items()}


@pytest.mark.parametrize("order", [("clean", "leaky"), ("leaky", "clean")])
def test_images_by_tag_and_digest_in_either_order(cli: AnchoreCli, registry: RegistryServer,
                                                  app_images: dict[str, OciImage], order: tuple[str, str]) -> None:
    tags = _push_pair(registry, app_images)
    digests = {name: image.manifest_digest for name, image in app_images.items()}
    image_ids = {name: image.config_digest.removeprefix("sha256:") for name, image in app_images.items()}

    assert "Service analyzer (ci-gate-serve, None): up" in cli.ok("system", "status")
    waited = cli.run("system", "wait", "--timeout", "60", "--interval", "0.2")
    assert waited.returncode == 0 and "Feed sync: Success." in waited.stderr, waited.stderr
    whoami = cli.ok("account", "whoami")
    assert field(whoami, "Username") == ["admin"] and field(whoami, "AccountName") == ["admin"]

    dockerfile_path = cli.home / "Dockerfile"
    dockerfile_path.write_text(CLEAN_DOCKERFILE)
    for name in order:
        extra = ("--dockerfile", str(dockerfile_path)) if name == "clean" else ()
        added = cli.ok("image", "add", tags[name], "--annotation", f"order={order.index(name)}", *extra)
        assert field(added, "Image Digest") == [digests[name]], added
    for name in order:
        waited_image = cli.ok("image", "wait", tags[name], "--interval", "0.2", "--timeout", "120")
        assert field(waited_image, "Image Digest") == [digests[name]]
        assert field(waited_image, "Analysis Status") == ["analyzed"]
    assert field(cli.ok("image", "wait", digests["leaky"], "--interval", "0.2"), "Analysis Status") == ["analyzed"]

    for name in ("clean", "leaky"):
        other = "leaky" if name == "clean" else "clean"
        for reference in (tags[name], digests[name], image_ids[name]):
            got = cli.ok("image", "get", reference)
            assert field(got, "Image Digest") == [digests[name]], (reference, got)
            assert field(got, "Image ID") == [image_ids[name]]
            assert digests[other] not in got
        assert field(cli.ok("image", "get", tags[name]), "Full Tag") == [tags[name]]
        records = cli.json("image", "get", tags[name])
        assert [r["imageDigest"] for r in records] == [digests[name]]
        assert records[0]["annotations"] == {"order": str(order.index(name))}

        for reference in (tags[name], digests[name]):
            content = cli.ok("image", "content", reference, "os")
            assert re.search(r"^openssl\s+3\.0\.11-1~deb12u2", content, flags=re.MULTILINE), content
            vulns = cli.json("image", "vuln", reference, "all")
            assert vulns["imageDigest"] == digests[name]
            assert [(v["vuln"], v["package"]) for v in vulns["vulnerabilities"]] == [("GHSA-test-demo-0001",
                                                                                      "demo-1.0")]
            files = cli.json("image", "content", reference, "files")
            assert files["imageDigest"] == digests[name]
            app_conf = [f for f in files["content"] if f["filename"] == "/etc/app.conf"]
            assert len(app_conf) == 1 and (app_conf[0]["size"] > 30) == (name == "leaky")

        # evaluate check by tag and by digest: the leaky image fails, the clean one passes, whatever the order
        expected_status, expected_exit = ("fail", 1) if name == "leaky" else ("pass", 0)
        for arguments in (("evaluate", "check", tags[name], "--detail"),
                          ("evaluate", "check", digests[name], "--tag", tags[name], "--detail")):
            checked = cli.run(*arguments)
            assert checked.returncode == expected_exit, (arguments, checked.stdout, checked.stderr)
            assert field(checked.stdout, "Image Digest") == [digests[name]]
            assert field(checked.stdout, "Status") == [expected_status]
            assert field(checked.stdout, "Policy ID") == ["ci-gate-default"]
            assert field(checked.stdout, "Image ID") == [image_ids[name]]
            assert ("content_regex_checks" in checked.stdout) == (name == "leaky"), checked.stdout

        # metadata by tag and by digest, decoded as anchore-cli prints them
        assert cli.ok("image", "metadata", tags[name]).split() == ["manifest:", "available", "docker_history:",
                                                                   "available", "dockerfile:", "available"]
        for reference in (tags[name], digests[name]):
            manifest = cli.json("image", "metadata", reference, "manifest")
            assert manifest["imageDigest"] == digests[name] and manifest["metadata_type"] == "manifest"
            decoded = json.loads(base64.b64decode(manifest["metadata"]))
            assert decoded["config"]["digest"] == app_images[name].config_digest
            history = json.loads(base64.b64decode(cli.json("image", "metadata", reference, "docker_history")
                                                  ["metadata"]))
            assert [h["Id"] for h in history] == list(app_images[name].layer_digests)
            dockerfile = cli.ok("image", "metadata", reference, "dockerfile")
            expected = CLEAN_DOCKERFILE if name == "clean" else \
                "FROM scratch\nADD file:layer0 in /\nADD file:layer1 in /\nADD file:layer2 in /\n"
            assert f"Metadata: {expected}\n" in dockerfile, dockerfile
        assert field(cli.ok("image", "get", digests[name]), "Dockerfile Mode") == [
            "Actual" if name == "clean" else "Guessed"]

    # a tag that matches nothing never answers with another image
    missing = tags["clean"].rsplit(":", 1)[0] + ":does-not-exist"
    commands: list[tuple[str, ...]] = [("image", "get", missing), ("evaluate", "check", missing),
                                       ("image", "vuln", missing, "all"),
                                       ("image", "wait", missing, "--timeout", "1", "--interval", "0.2")]
    for command in commands:
        result = cli.run(*command)
        assert result.returncode != 0, (command, result.stdout)
        assert not any(digest in result.stdout for digest in digests.values()), result.stdout
        assert "Status: pass" not in result.stdout

    listed = cli.ok("image", "list")
    assert all(tags[n] in listed and digests[n] in listed for n in digests)

    subscriptions = cli.json("subscription", "list")
    by_key = {(s["subscription_key"], s["subscription_type"]): s["active"] for s in subscriptions}
    for name in digests:
        assert by_key[(tags[name], "analysis_update")] is True
        assert by_key[(tags[name], "tag_update")] is True  # anchore-cli asks for autosubscribe by default
        assert by_key[(tags[name], "policy_eval")] is False and by_key[(tags[name], "vuln_update")] is False
    events = cli.json("event", "list")["results"]
    completed = {e["event"]["resource"]["id"] for e in events if e["event"]["type"] == "user.image.analysis.completed"}
    assert completed == set(tags.values())
    assert "user.image.analysis.completed" in cli.ok("event", "list")

    # image del TAG deletes that tag's image, and only it; as in anchore-engine, the newest image of a tag
    # with an active subscription (analysis_update always is) needs --force, which switches them off
    refused = cli.run("image", "del", tags["leaky"])
    assert refused.returncode == 1, refused.stdout
    assert "cannot delete image that is the latest of its tags, and has active subscription" in refused.stdout
    assert field(cli.ok("image", "get", digests["leaky"]), "Image Digest") == [digests["leaky"]]
    assert cli.ok("image", "del", tags["leaky"], "--force").strip() == "Success"
    assert not any(s["active"] for s in cli.json("subscription", "list") if s["subscription_key"] == tags["leaky"])
    assert cli.run("image", "get", digests["leaky"]).returncode != 0
    assert field(cli.ok("image", "get", tags["clean"]), "Image Digest") == [digests["clean"]]
    assert cli.run("image", "get", tags["leaky"]).returncode != 0


def test_a_tag_that_moves_to_a_leaky_image_is_reported_as_the_leaky_one(
        cli: AnchoreCli, registry: RegistryServer, app_images: dict[str, OciImage]) -> None:
    repo = f"cli/moving-{uuid.uuid4().hex[:8]}"
    tag = push(app_images["clean"], registry.host, f"{repo}:latest")
    cli.ok("image", "add", tag)
    cli.ok("image", "wait", tag, "--interval", "0.2")
    first = cli.run("evaluate", "check", tag)
    assert first.returncode == 0 and field(first.stdout, "Image Digest") == [app_images["clean"].manifest_digest]

    push(app_images["leaky"], registry.host, f"{repo}:latest")  # the tag now names the leaky image
    added = cli.ok("image", "add", tag)
    assert field(added, "Image Digest") == [app_images["leaky"].manifest_digest]
    cli.ok("image", "wait", tag, "--interval", "0.2")
    second = cli.run("evaluate", "check", tag)
    assert second.returncode == 1, second.stdout
    assert field(second.stdout, "Image Digest") == [app_images["leaky"].manifest_digest]
    assert field(second.stdout, "Status") == ["fail"]
    history = cli.json("image", "get", tag, "--show-history")
    assert [r["imageDigest"] for r in history] == [app_images["leaky"].manifest_digest,
                                                   app_images["clean"].manifest_digest]
    events = cli.json("event", "list", "--event_type", "user.image.tag.update")["results"]
    assert [e["event"]["details"]["curr_eval"] for e in events] == [[app_images["leaky"].manifest_digest]]
    policy_events = cli.json("event", "list", "--event_type", "user.checks.*")["results"]
    assert [(e["event"]["details"]["last_eval"]["status"], e["event"]["details"]["curr_eval"]["status"])
            for e in policy_events] == [("pass", "fail")]
    # the clean image is no longer the newest of the tag: deleting it by digest needs no --force
    assert cli.ok("image", "del", app_images["clean"].manifest_digest).strip() == "Success"
    assert [r["imageDigest"] for r in cli.json("image", "get", tag, "--show-history")] == [
        app_images["leaky"].manifest_digest]
    event_id = policy_events[0]["generated_uuid"]
    assert "type: user.checks.tag.policy_evaluation.update" in cli.ok("event", "get", event_id)
    assert cli.run("event", "delete", event_id).returncode == 0  # anchore-cli prints nothing for one event
    assert cli.run("event", "get", event_id).returncode != 0

    assert cli.ok("subscription", "activate", "policy_eval", tag).strip() == "Success"
    active = {s["subscription_type"]: s for s in cli.json("subscription", "list") if s["subscription_key"] == tag}
    assert active["policy_eval"]["active"] is True and active["vuln_update"]["active"] is False
    assert cli.ok("subscription", "deactivate", "tag_update", tag).strip() == "Success"
    assert "tag_update" in cli.ok("subscription", "get", active["tag_update"]["subscription_id"])
    assert cli.ok("subscription", "del", active["vuln_update"]["subscription_id"]).strip() == "Success"
    left = {s["subscription_type"]: s["active"] for s in cli.json("subscription", "list")
            if s["subscription_key"] == tag}
    assert left == {"analysis_update": True, "policy_eval": True, "tag_update": False}


PERMISSIVE = {
    "id": "permissive-bundle", "version": "1_0", "name": "permissive", "comment": "lets everything through",
    "whitelisted_images": [], "blacklisted_images": [],
    "mappings": [{"id": "m1", "name": "all", "registry": "*", "repository": "*",
                  "image": {"type": "tag", "value": "*"}, "policy_id": "p1", "whitelist_ids": []}],
    "whitelists": [],
    "policies": [{"id": "p1", "version": "1_0", "name": "warn only", "rules": [
        {"id": "r1", "action": "WARN", "gate": "dockerfile", "trigger": "instruction",
         "params": [{"name": "instruction", "value": "HEALTHCHECK"}, {"name": "check", "value": "not_exists"}]}]}],
}


def test_policy_commands(cli: AnchoreCli, registry: RegistryServer, app_images: dict[str, OciImage],
                         tmp_path: Path) -> None:
    tag = push(app_images["leaky"], registry.host, f"cli/policy-{uuid.uuid4().hex[:8]}:leaky")
    cli.ok("image", "add", tag)
    cli.ok("image", "wait", tag, "--interval", "0.2")
    assert cli.run("evaluate", "check", tag).returncode == 1

    listed = cli.ok("policy", "list")
    assert re.search(r"^ci-gate-default\s+True", listed, flags=re.MULTILINE), listed

    # the built-in packs read back as v1 bundles under v1
    bundle = json.loads(cli.ok("policy", "get", "ci-gate-default", "--detail"))
    assert bundle["version"] == "1_0" and "rule_sets" not in bundle
    assert {p["version"] for p in bundle["policies"]} == {"1_0"} and bundle["mappings"][0]["policy_ids"]
    bundle_file = tmp_path / "default-v1.json"
    bundle_file.write_text(json.dumps({**bundle, "id": "default-as-v1"}))
    assert field(cli.ok("policy", "add", str(bundle_file)), "Policy ID") == ["default-as-v1"]

    policy_file = tmp_path / "permissive.json"
    policy_file.write_text(json.dumps(PERMISSIVE))
    added = cli.ok("policy", "add", str(policy_file))
    assert field(added, "Policy ID") == ["permissive-bundle"] and field(added, "Active") == ["False"]
    assert cli.ok("policy", "activate", "permissive-bundle").strip() == "Success: permissive-bundle activated"
    assert re.search(r"^permissive-bundle\s+True", cli.ok("policy", "list"), flags=re.MULTILINE)
    now_passes = cli.run("evaluate", "check", tag)
    assert now_passes.returncode == 0 and field(now_passes.stdout, "Policy ID") == ["permissive-bundle"]
    assert cli.run("evaluate", "check", tag, "--policy", "ci-gate-default").returncode == 1

    # re-adding an existing id replaces its document (anchore-engine): now it stops on secrets
    strict = json.loads(json.dumps(PERMISSIVE))
    strict["policies"][0]["rules"].append({"id": "r2", "action": "STOP", "gate": "secret_scans",
                                           "trigger": "content_regex_checks", "params": []})
    policy_file.write_text(json.dumps(strict))
    assert field(cli.ok("policy", "add", str(policy_file)), "Policy ID") == ["permissive-bundle"]
    replaced = cli.run("evaluate", "check", tag)
    assert replaced.returncode == 1 and field(replaced.stdout, "Policy ID") == ["permissive-bundle"]
    assert json.loads(cli.ok("policy", "get", "permissive-bundle", "--detail"))["policies"][0]["rules"][1]["id"] == "r2"

    deleted_active = cli.run("policy", "del", "permissive-bundle")
    assert deleted_active.returncode != 0 and "cannot delete an active policy" in deleted_active.stdout
    cli.ok("policy", "activate", "ci-gate-default")
    assert cli.ok("policy", "del", "permissive-bundle").strip() == "Success"
    assert "permissive-bundle" not in cli.ok("policy", "list")

    digest = app_images["leaky"].manifest_digest
    for reference in (tag, digest):
        assert cli.ok("image", "vuln", reference).split() == ["os:", "available", "non-os:", "available", "all:",
                                                               "available"]
        types = cli.ok("image", "content", reference)
        assert {"os: available", "files: available", "python: available"} <= set(types.splitlines())
        table = cli.ok("image", "vuln", reference, "non-os")
        assert re.search(r"^GHSA-test-demo-0001\s+demo-1\.0\s+Medium", table, flags=re.MULTILINE), table

    described = cli.ok("policy", "describe")
    assert re.search(r"\|\s+secret_scans\s+\|", described) and re.search(r"\|\s+vulnerabilities\s+\|", described)
    triggers = cli.ok("policy", "describe", "--gate", "dockerfile")
    assert "exposed_ports" in triggers and "instruction" in triggers
    parameters = cli.ok("policy", "describe", "--gate", "dockerfile", "--trigger", "exposed_ports")
    assert re.search(r"\|\s+ports\s+\|", parameters), parameters

    assert cli.ok("image", "del", digest, "--force").strip() == "Success"  # by digest
    assert cli.run("image", "get", tag).returncode != 0 and cli.run("image", "get", digest).returncode != 0


def test_check_history_returns_the_stored_evaluation_of_each_final_action(
        cli: AnchoreCli, registry: RegistryServer, app_images: dict[str, OciImage], tmp_path: Path) -> None:
    """`check?history=true` (`evaluate check --show-history`) returns the stored evaluations of the image's
    tag under the policy, newest first, one per final action (anchore-engine's stored eval id); without it,
    only the fresh evaluation."""
    tag = push(app_images["leaky"], registry.host, f"cli/history-{uuid.uuid4().hex[:8]}:leaky")
    cli.ok("image", "add", tag)
    cli.ok("image", "wait", tag, "--interval", "0.2")
    policy_file = tmp_path / "permissive.json"
    policy_file.write_text(json.dumps(PERMISSIVE))
    cli.ok("policy", "add", str(policy_file))
    cli.ok("policy", "activate", "permissive-bundle")
    assert cli.run("evaluate", "check", tag).returncode == 0  # warn: the image has no HEALTHCHECK
    assert cli.run("evaluate", "check", tag, "--policy", "ci-gate-default").returncode == 1  # another policy's
    strict = json.loads(json.dumps(PERMISSIVE))
    strict["policies"][0]["rules"].append({"id": "r2", "action": "STOP", "gate": "secret_scans",
                                           "trigger": "content_regex_checks", "params": []})
    policy_file.write_text(json.dumps(strict))
    cli.ok("policy", "add", str(policy_file))  # the same id, now stopping on the planted key

    latest = cli.run("evaluate", "check", tag)
    assert latest.returncode == 1 and field(latest.stdout, "Status") == ["fail"]
    history = cli.run("evaluate", "check", tag, "--show-history")
    assert history.returncode == 1, history.stdout  # the newest decides
    assert field(history.stdout, "Status") == ["fail", "pass"]
    assert field(history.stdout, "Policy ID") == ["permissive-bundle"] * 2

    digest = cli.json("image", "get", tag)[0]["imageDigest"]
    v2 = cli.server.get(f"/v2/images/{digest}/check", params={"tag": tag, "history": "true"}).json()
    assert [e["final_action"] for e in v2["evaluations"]] == ["stop", "warn"]
    assert [f["gate"] for f in v2["evaluations"][1]["details"]["findings"]] == ["dockerfile"]
    assert len(cli.server.get(f"/v2/images/{digest}/check", params={"tag": tag}).json()["evaluations"]) == 1
    v1 = cli.server.get(f"/v1/images/{digest}/check", params={"tag": tag, "history": "true", "detail": "false"})
    [[(shown_digest, by_tag)]] = [list(entry.items()) for entry in v1.json()]
    assert shown_digest == digest and [e["status"] for e in by_tag[tag]] == ["fail", "pass"]

    stored_warn = v2["evaluations"][1]["evaluation_time"]
    policy_file.write_text(json.dumps(PERMISSIVE))
    cli.ok("policy", "add", str(policy_file))  # back to warn
    time.sleep(1.1)  # a warn kept from now on would carry another time
    interactive = cli.server.get(f"/v2/images/{digest}/check", params={"tag": tag, "interactive": "true"}).json()
    assert [e["final_action"] for e in interactive["evaluations"]] == ["warn"]  # evaluated, not kept (the engine)
    assert interactive["evaluations"][0]["evaluation_time"] != stored_warn
    policy_file.write_text(json.dumps(strict))
    cli.ok("policy", "add", str(policy_file))
    kept = cli.server.get(f"/v2/images/{digest}/check", params={"tag": tag, "history": "true"}).json()
    assert [(e["final_action"], e["evaluation_time"]) for e in kept["evaluations"]][1] == ("warn", stored_warn)

    policy_file.write_text(json.dumps(PERMISSIVE))
    cli.ok("policy", "add", str(policy_file))  # warn again: the stored warn is replaced, not added
    again = cli.run("evaluate", "check", tag, "--show-history")
    assert again.returncode == 0 and field(again.stdout, "Status") == ["pass", "fail"], again.stdout


def test_registry_credentials_are_used_for_pulls_and_never_shown(
        cli: AnchoreCli, auth_registry: RegistryServer, app_images: dict[str, OciImage]) -> None:
    assert auth_registry.creds is not None
    username, password = auth_registry.creds
    tag = push(app_images["clean"], auth_registry.host, f"cli/private-{uuid.uuid4().hex[:8]}:v1",
               creds=auth_registry.creds)
    refused = cli.run("image", "add", tag)
    assert refused.returncode != 0 and "requires credentials" in refused.stdout, refused.stdout

    wrong = cli.run("registry", "add", auth_registry.host, username, "not-the-password")
    assert wrong.returncode != 0 and "cannot ping supplied registry" in wrong.stdout
    assert "not-the-password" not in wrong.stdout
    added = cli.ok("registry", "add", auth_registry.host, username, password)
    assert field(added, "Registry") == [auth_registry.host] and field(added, "User") == [username]
    assert field(added, "Verify TLS") == ["True"]
    listed = cli.ok("registry", "list")
    assert auth_registry.host in listed and username in listed
    for output in (added, listed, cli.ok("--json", "registry", "list"), cli.ok("--json", "registry", "get",
                                                                              auth_registry.host)):
        assert password not in output
    stored = [path for path in cli.server.data_dir.rglob("*") if path.is_file()]  # the database, its WAL, ...
    assert stored and not any(password.encode() in path.read_bytes() for path in stored)

    assert field(cli.ok("image", "add", tag), "Image Digest") == [app_images["clean"].manifest_digest]
    analysed = cli.ok("image", "wait", tag, "--interval", "0.2")
    assert field(analysed, "Analysis Status") == ["analyzed"], cli.server.log()

    updated = cli.ok("registry", "update", auth_registry.host, username, password, "--registry-name", "private")
    assert field(updated, "Name") == ["private"]
    assert cli.ok("registry", "del", auth_registry.host).strip() == "Success"
    assert cli.json("registry", "list") == []
    forced = cli.run("image", "add", tag, "--force")
    assert forced.returncode != 0 and "requires credentials" in forced.stdout


def _loopback_alias() -> str:
    """A name for 127.0.0.1 that ci-gate does not treat as loopback (so it needs TLS unless marked insecure)."""
    import socket

    from ci_gate.sources.registry import is_loopback

    for name in ("ci-gate-registry.test", socket.gethostname(), "localhost.localdomain"):
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(name, None, socket.AF_INET)}
        except OSError:
            continue
        if addresses and all(a.startswith("127.") for a in addresses) and not is_loopback(name):
            return name
    raise AssertionError("no host name resolves to 127.0.0.1 here (the test needs one, e.g. the machine's "
                         "hostname in /etc/hosts)")


def test_registry_insecure_allows_plain_http(tmp_path: Path, demo_vuln_db: Path, registry: RegistryServer,
                                            app_images: dict[str, OciImage]) -> None:
    alias = _loopback_alias()
    host = f"{alias}:{registry.host.rsplit(':', 1)[1]}"
    repo = f"cli/insecure-{uuid.uuid4().hex[:8]}"
    push(app_images["clean"], registry.host, f"{repo}:v1")
    tag = f"{host}/{repo}:v1"
    (tmp_path / "home").mkdir()
    with ServeProcess(tmp_path / "closed", vuln_db=demo_vuln_db) as closed:  # the alias is not allowed
        refused_entry = AnchoreCli(anchore_cli_path(), closed, tmp_path / "home").run(
            "registry", "add", host, "anyone", "anything", "--insecure")
        assert refused_entry.returncode != 0 and "--allow-registry" in refused_entry.stdout, refused_entry.stdout
    with ServeProcess(tmp_path / "data", vuln_db=demo_vuln_db, allow_registries=("127.0.0.1", alias)) as server:
        cli = AnchoreCli(anchore_cli_path(), server, tmp_path / "home")
        refused = cli.run("image", "add", tag)
        assert refused.returncode != 0 and "cannot fetch image digest" in refused.stdout, refused.stdout

        strict = cli.run("registry", "add", host, "anyone", "anything")  # validation speaks TLS: refused
        assert strict.returncode != 0 and "cannot ping supplied registry" in strict.stdout
        added = cli.ok("registry", "add", host, "anyone", "anything", "--insecure")
        assert field(added, "Verify TLS") == ["False"]
        assert field(cli.ok("image", "add", tag), "Image Digest") == [app_images["clean"].manifest_digest]
        assert field(cli.ok("image", "wait", tag, "--interval", "0.2"), "Analysis Status") == ["analyzed"]
        manifest = cli.json("image", "metadata", tag, "manifest")  # fetched from the registry through the entry
        decoded = json.loads(base64.b64decode(manifest["metadata"]))
        assert decoded["config"]["digest"] == app_images["clean"].config_digest

        secured = cli.run("registry", "update", host, "anyone", "anything", "--skip-validate")
        assert secured.returncode == 0, secured.stdout
        assert cli.run("image", "add", tag, "--force").returncode != 0  # TLS again: the pull is refused


def test_tag_sent_in_a_get_body_is_honoured(cli: AnchoreCli, registry: RegistryServer,
                                            app_images: dict[str, OciImage]) -> None:
    """anchore-cli told the API is older than 0.1.6 sends the tag in the body of GET /images."""
    tags = _push_pair(registry, app_images)
    for name in ("clean", "leaky"):
        cli.ok("image", "add", tags[name])
        cli.ok("image", "wait", tags[name], "--interval", "0.2")
    for name in ("leaky", "clean"):
        got = cli.ok("--api-version", "0.1.5", "image", "get", tags[name])
        assert field(got, "Image Digest") == [app_images[name].manifest_digest], got
    checked = cli.run("--api-version", "0.1.5", "evaluate", "check", tags["leaky"])
    assert checked.returncode == 1 and field(checked.stdout, "Image Digest") == [app_images["leaky"].manifest_digest]
    missing = cli.run("--api-version", "0.1.5", "image", "get", tags["clean"].rsplit(":", 1)[0] + ":nope")
    assert missing.returncode != 0 and "sha256:" not in missing.stdout


def test_vuln_update_events_after_a_store_import(tmp_path: Path, demo_vuln_db: Path, registry: RegistryServer,
                                                app_images: dict[str, OciImage]) -> None:
    """`subscription activate vuln_update TAG`; a `db import` that adds a matching advisory records the
    engine's `user.checks.tag.vulnerabilities.update` event with the difference, for that tag only."""
    import shutil
    import time

    from ci_gate.vulns.importers.osv import import_paths
    from tests.support.serve import OPENSSL_ADVISORY

    vuln_db = tmp_path / "vulns.sqlite"
    shutil.copyfile(demo_vuln_db, vuln_db)
    tags = _push_pair(registry, app_images)
    (tmp_path / "home").mkdir()
    with ServeProcess(tmp_path / "data", vuln_db=vuln_db,
                      environment={"CI_GATE_SERVE_VULN_POLL_SECONDS": "0.2"}) as server:
        cli = AnchoreCli(anchore_cli_path(), server, tmp_path / "home")
        for name in ("clean", "leaky"):
            cli.ok("image", "add", tags[name])
            cli.ok("image", "wait", tags[name], "--interval", "0.2")
        assert cli.ok("subscription", "activate", "vuln_update", tags["clean"]).strip() == "Success"
        # The watcher records the subscribed tag's baseline, no event for it; the import must come after it,
        # or the advisory would be part of the baseline.
        server.wait_until(lambda: server.vuln_watch_images() == 1, "the baseline of the subscribed tag")
        event_type = "user.checks.tag.vulnerabilities.update"
        assert cli.json("event", "list", "--event_type", event_type)["results"] == []

        tree = tmp_path / "osv" / "Debian"
        tree.mkdir(parents=True)
        (tree / "DSA-9999-1.json").write_text(json.dumps(OPENSSL_ADVISORY))
        import_paths([tree.parent], vuln_db)  # what `ci-gate db import` does
        events: list[dict[str, Any]] = server.wait_until(
            lambda: cli.json("event", "list", "--event_type", event_type)["results"], "the vuln_update event")
        assert len(events) == 1, server.log()
        event = events[0]["event"]
        assert event["resource"] == {"user_id": "admin", "type": "image_tag", "id": tags["clean"]}
        details = event["details"]
        assert details["imageDigest"] == app_images["clean"].manifest_digest
        changes = details["diff_vulnerability_result"]
        assert [(v["CVE_ID"], v["Package_Name"], v["Severity"]) for v in changes["added"]] == [
            ("DSA-9999-1", "openssl", "Critical")]
        assert changes["removed"] == [] and changes["updated"] == []
        time.sleep(0.6)  # later polls with the same store add nothing
        assert len(cli.json("event", "list", "--event_type", event_type)["results"]) == 1
