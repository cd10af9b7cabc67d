"""Notifications from the real `ci-gate serve`: endpoint configurations over the API, anchore-engine's
`webhooks` file and webhook test, a restart while a receiver is down, and a watched tag re-pushed in a
real registry (tag_update, then policy_eval when the verdict flips)."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.notify.receivers import Receiver, smtp_receiver, start_receiver
from tests.server.anchore_cli import build_app_image
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import ServeProcess

SECRET = "whsec-serve-test"
FAST = {"CI_GATE_NOTIFY_BACKOFF_SECONDS": "0.2", "CI_GATE_NOTIFY_POLL_SECONDS": "0.1",
        "CI_GATE_SERVE_FOLLOW_UP_SECONDS": "0.3", "CI_GATE_NOTIFY_TIMEOUT_SECONDS": "1"}
LOCAL_RECEIVERS = ["--allow-notify-host", "127.0.0.1"]
"""The receivers listen on 127.0.0.1: endpoints added over the API may reach them."""


def _all_delivered(serve: ServeProcess) -> list[dict[str, Any]] | None:
    """The server's deliveries when there are some and every one is recorded as delivered, else None."""
    deliveries: list[dict[str, Any]] = serve.get("/v2/notifications/deliveries").json()
    return deliveries if deliveries and all(d["state"] == "delivered" for d in deliveries) else None


def test_endpoint_configurations_and_the_engine_webhook_test(tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook", secret=SECRET)
    slack = start_receiver(receivers, "slack")
    config = tmp_path / "notifications.yaml"
    config.write_text(f"webhooks:\n  signing_secret: {SECRET}\n"
                      f"  general:\n    url: {hook.url}/general/<notification_type>/<userId>\n"
                      f"  tag_update:\n    url: {hook.url}/tags\n")
    with ServeProcess(tmp_path / "data", environment=FAST,
                      extra_args=["--notifications-config", str(config), *LOCAL_RECEIVERS]) as serve:
        tested = serve.post("/v2/system/webhooks/tag_update/test")
        assert tested.status_code == 200 and [r["delivered"] for r in tested.json()] == [True]
        assert serve.post("/v1/system/webhooks/vuln_update/test").status_code == 200
        assert [r.path for r in hook.received] == ["/tags", "/general/vuln_update/admin"]
        assert all(r.signature_ok for r in hook.received)
        assert hook.received[1].json()["data"]["notification_payload"]["subscription_type"] == "vuln_update"

        base = "/v2/notifications/endpoints/slack/configurations"
        created = serve.post(base, json={"name": "team", "url": slack.url + slack.slack_path, "secret": SECRET})
        assert created.status_code == 200, created.text
        shown = created.json()
        assert shown["url_set"] is True and shown["secret_set"] is True
        assert "hooksecret" not in created.text and SECRET not in created.text
        one = f"{base}/{shown['id']}"
        renamed = serve.put(one, json={"name": "renamed"})  # the URL and the secret are kept
        assert renamed.status_code == 200 and renamed.json()["name"] == "renamed"
        assert [e["name"] for e in serve.get(base).json()] == ["renamed"]
        assert {"name": "slack", "enabled": True} in serve.get("/v2/notifications/endpoints").json()
        assert serve.post(f"{one}/test").json()[0]["delivered"] is True
        assert slack.received[-1].status == 200 and slack.received[-1].path == slack.slack_path

        refused = serve.post("/v2/notifications/endpoints/webhook/configurations", json={"url": "ftp://x"})
        assert refused.status_code == 400 and "http(s) URL" in refused.json()["message"]
        assert serve.post("/v2/notifications/endpoints/fax/configurations", json={}).status_code == 404
        assert serve.delete(one).status_code == 204
        assert serve.get(one).status_code == 404
        assert SECRET not in serve.full_log() and "hooksecret" not in serve.full_log()


def test_endpoints_reach_only_allowed_hosts_and_a_shrunk_list_stops_delivery(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook", secret=SECRET)
    other = start_receiver(receivers, "webhook")
    hook_host = hook.url.removeprefix("http://")
    base = "/v2/notifications/endpoints"
    serve = ServeProcess(tmp_path / "data", environment={
        **FAST, "CI_GATE_ALLOW_NOTIFY_HOSTS": f"hooks.example.test, {hook_host}"}).start()
    try:
        for kind, body, host in [
            ("webhook", {"url": "http://169.254.169.254/latest/meta-data/"}, "169.254.169.254:80"),
            ("webhook", {"url": other.url + "/x"}, other.url.removeprefix("http://")),  # the same name, another port
            ("github", {"owner": "o", "repository": "r", "token": "ghp_x"}, "api.github.com:443"),
            ("email", {"smtp_host": "10.0.0.1", "from": "a@example.test", "to": ["b@example.test"]}, "10.0.0.1:25"),
        ]:
            refused = serve.post(f"{base}/{kind}/configurations", json=body)
            assert refused.status_code == 400, refused.text
            message = refused.json()["message"]
            assert "\n" not in message and f"ci-gate serve --allow-notify-host {host}" in message
        created = serve.post(f"{base}/webhook/configurations", json={"url": hook.url + "/in", "secret": SECRET})
        assert created.status_code == 200, created.text
        one = f"{base}/webhook/configurations/{created.json()['id']}"
        moved = serve.put(one, json={"url": "http://169.254.169.254/latest/meta-data/"})
        assert moved.status_code == 400 and serve.get(one).json()["url"] == hook.url + "/in"
        assert serve.post(f"{one}/test").json()[0]["delivered"] is True
        assert [r.path for r in hook.received] == ["/in"] and other.received == []

        serve.stop()  # the operator restarts without the receiver's host on the list
        serve.environment.pop("CI_GATE_ALLOW_NOTIFY_HOSTS")
        serve.start()
        for tested in (serve.post(f"{one}/test").json(), serve.post("/v2/system/webhooks/tag_update/test").json()):
            [result] = tested
            assert result["delivered"] is False and f"--allow-notify-host {hook_host}" in result["error"]
        assert len(hook.received) == 1  # nothing more was sent
    finally:
        serve.stop()


def test_a_bad_allow_notify_host_stops_serve_with_one_line(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from tests.support.serve import PASSWORD, free_port

    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "serve", "--port", str(free_port()), "--data-dir",
                             str(tmp_path / "data"), "--allow-notify-host", "http://hooks.example.test/x"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-notify-host takes HOST[:PORT]" in lines[0]
    assert not (tmp_path / "data").exists()


HOOK_TOKEN = "hook-token-0123456789"
MATTERMOST_KEY = "xoxm-mattermost-key-98765"


def test_a_credential_in_an_endpoint_url_is_masked_everywhere_and_still_delivers(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    """A `?token=` query parameter and a `/hooks/<key>` path segment are credentials: the API (create, list,
    read, update), the dashboard and the log show the URL with them masked, a client that saves back
    what it read keeps the real URL, and deliveries go to the real URL."""
    hook = start_receiver(receivers, "webhook")
    config = tmp_path / "notifications.yaml"
    config.write_text(f"webhooks:\n  general:\n    url: {hook.url}/hooks/{MATTERMOST_KEY}\n")
    with ServeProcess(tmp_path / "data", environment=FAST,
                      extra_args=["--notifications-config", str(config), *LOCAL_RECEIVERS]) as serve:
        base = "/v2/notifications/endpoints/webhook/configurations"
        created = serve.post(base, json={"name": "ci", "url": f"{hook.url}/in?team=a&token={HOOK_TOKEN}"})
        assert created.status_code == 200, created.text
        shown = created.json()
        assert shown["url"] == f"{hook.url}/in?team=a&token=***"
        one = f"{base}/{shown['id']}"
        read = serve.get(one)
        assert read.json()["url"] == shown["url"] and HOOK_TOKEN not in serve.get(base).text + read.text
        again = serve.put(one, json={**read.json(), "name": "ci renamed"})  # what it read, saved back
        assert again.status_code == 200 and HOOK_TOKEN not in again.text and again.json()["url"] == shown["url"]
        assert serve.post(f"{one}/test").json()[0]["delivered"] is True
        assert serve.post("/v2/system/webhooks/tag_update/test").status_code == 200
        assert [(r.path, r.query) for r in hook.received] == [
            ("/in", {"team": "a", "token": HOOK_TOKEN}), (f"/hooks/{MATTERMOST_KEY}", {}),
            ("/in", {"team": "a", "token": HOOK_TOKEN})]  # the engine-style file's hook, then ours

        page = serve.get("/ui/notifications")
        assert page.status_code == 200
        assert f"{hook.url}/in?team=a&amp;token=***" in page.text and f"{hook.url}/hooks/***" in page.text
        moved = serve.put(one, json={"url": f"{hook.url}/other"})  # a URL without a credential is shown as is
        assert moved.json()["url"] == f"{hook.url}/other" and serve.get(one).json()["url"] == f"{hook.url}/other"
        log = serve.full_log()
    for secret in (HOOK_TOKEN, MATTERMOST_KEY):
        assert secret not in page.text and secret not in log


def test_a_restart_while_the_receiver_is_down_loses_nothing_and_repeats_no_delivery(
        tmp_path: Path, serve_vuln_db: Path, pushed_images: list[tuple[str, str]],
        receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook", secret=SECRET, outage=[503] + ["hang"] * 1000, hang_seconds=2)
    serve = ServeProcess(tmp_path / "data", vuln_db=serve_vuln_db, environment=FAST,
                         extra_args=LOCAL_RECEIVERS).start()
    try:
        added = serve.post("/v2/notifications/endpoints/webhook/configurations",
                           json={"url": hook.url, "secret": SECRET, "notification_types": ["analysis_update"]})
        assert added.status_code == 200, added.text
        for tag, _ in pushed_images[:2]:
            assert serve.add_tag(tag).status_code == 200
        digests = {digest for _, digest in pushed_images[:2]}
        for digest in digests:
            serve.wait_status(digest)
        serve.wait_until(lambda: len({r.key for r in hook.received}) == 2 and len(hook.received) >= 3,
                         "two deliveries tried and retried")
        serve.kill()  # mid-delivery: a request hangs at the receiver, or waits for its next try
        hook.outage.clear()  # the receiver is back
        serve.start()
        deliveries = serve.wait_until(lambda: _all_delivered(serve), "every delivery delivered")
    finally:
        serve.stop()
    keys = {d["idempotency_key"] for d in deliveries}
    assert len(deliveries) == 2 == len(keys)
    assert Counter(r.key for r in hook.answered()) == {key: 1 for key in keys}  # each accepted exactly once
    assert {r.key for r in hook.received} == keys  # every try of an event carried the same key
    assert all(r.signature_ok for r in hook.received)
    payloads = [r.json()["data"]["notification_payload"] for r in hook.answered()]
    assert {p["curr_eval"]["image_digest"] for p in payloads} == digests
    assert {p["curr_eval"]["analysis_status"] for p in payloads} == {"analyzed"}


def test_a_re_pushed_tag_sends_tag_update_then_policy_eval_when_the_verdict_flips(
        tmp_path: Path, registry: RegistryServer, demo_vuln_db: Path, receivers: list[Receiver]) -> None:
    clean, leaky = build_app_image(tmp_path / "clean", leaky=False), build_app_image(tmp_path / "leaky", leaky=True)
    tag = push(clean, registry.host, f"notify/app-{uuid.uuid4().hex[:8]}:stable")
    hook = start_receiver(receivers, "webhook", secret=SECRET)
    with ServeProcess(tmp_path / "data", vuln_db=demo_vuln_db, environment=FAST,
                      extra_args=["--watch-interval", "1", *LOCAL_RECEIVERS]) as serve:
        serve.post("/v2/notifications/endpoints/webhook/configurations", json={
            "url": hook.url, "format": "v2", "secret": SECRET,
            "notification_types": ["tag_update", "policy_eval"]}).raise_for_status()
        serve.post("/v2/images", params={"auto_subscribe": "true"},
                   json={"source": {"tag": {"pull_string": tag}}}).raise_for_status()
        [policy_subscription] = serve.get("/v2/subscriptions", params={"subscription_key": tag,
                                                                       "subscription_type": "policy_eval"}).json()
        serve.put(f"/v2/subscriptions/{policy_subscription['subscription_id']}",
                  json={"active": True}).raise_for_status()
        serve.wait_status(clean.manifest_digest)
        checked = serve.get(f"/v2/images/{clean.manifest_digest}/check", params={"tag": tag})
        assert checked.status_code == 200, checked.text
        seen = len(registry.log_path.read_bytes())
        manifest_path = f"/v2/{tag.split('/', 1)[1].split(':')[0]}/manifests/stable"

        def manifest_requests() -> list[str]:
            return [line.split('"')[1].split()[0] for line in
                    registry.log_path.read_bytes()[seen:].decode(errors="replace").splitlines()
                    if line.startswith("127.0.0.1 - -") and manifest_path in line]

        # Watch passes over the unchanged tag (counted at the registry, not guessed from the clock):
        # nothing to send, and only manifest HEADs.
        requests_made = serve.wait_until(lambda: (lambda made: made if len(made) >= 2 else None)(manifest_requests()),
                                         "two watch passes over the unchanged tag")
        assert hook.received == []
        assert set(requests_made) == {"HEAD"}

        push(leaky, registry.host, tag.split("/", 1)[1])  # the tag now names the leaky image
        serve.wait_until(lambda: len(hook.answered()) >= 2, "tag_update and policy_eval")
        time.sleep(1.5)  # more watch passes: the same verdict on the same digest sends nothing more
    events = [r.json() for r in hook.answered()]
    assert [e["type"] for e in events] == ["user.image.tag.update", "user.checks.tag.policy_evaluation.update"]
    tag_update, policy_eval = events
    assert tag_update["resource"]["id"] == tag
    assert tag_update["details"] == {"last_eval": [clean.manifest_digest], "curr_eval": [leaky.manifest_digest]}
    assert policy_eval["details"]["last_eval"]["status"] == "pass"
    assert policy_eval["details"]["curr_eval"] == {"image_digest": leaky.manifest_digest, "status": "fail",
                                                   "policy_id": policy_eval["details"]["curr_eval"]["policy_id"]}
    assert all(r.signature_ok for r in hook.received)


def test_a_vulnerability_import_notifies_every_endpoint_kind_once(
        tmp_path: Path, demo_vuln_db: Path, pushed_images: list[tuple[str, str]], receivers: list[Receiver]) -> None:
    """vuln_update for the one subscribed tag whose matches changed, delivered to all six endpoint kinds."""
    import json
    import shutil

    from ci_gate.vulns.importers.osv import import_paths
    from tests.support.serve import OPENSSL_ADVISORY

    vuln_db = tmp_path / "vulns.sqlite"
    shutil.copyfile(demo_vuln_db, vuln_db)
    kinds = {kind: start_receiver(receivers, kind, secret=SECRET, outage=[503])
             for kind in ("webhook", "slack", "teams", "jira", "github")}
    (watched, digest), (other, _) = pushed_images[0], pushed_images[1]
    bodies = {
        "webhook": {"url": kinds["webhook"].url},
        "slack": {"url": kinds["slack"].url + kinds["slack"].slack_path},
        "teams": {"url": kinds["teams"].url + "/workflows/1/invoke"},
        "jira": {"url": kinds["jira"].url, "username": kinds["jira"].jira_user[0],
                 "password": kinds["jira"].jira_user[1], "project_key": "SEC"},
        "github": {"api_url": kinds["github"].url, "owner": "acme", "repository": "images",
                   "token": kinds["github"].github_token},
    }
    with smtp_receiver() as (mailbox, smtp_port), ServeProcess(
            tmp_path / "data", vuln_db=vuln_db, extra_args=LOCAL_RECEIVERS,
            environment={**FAST, "CI_GATE_SERVE_VULN_POLL_SECONDS": "0.2"}) as serve:
        for kind, body in bodies.items():
            serve.post(f"/v2/notifications/endpoints/{kind}/configurations",
                       json={**body, "secret": SECRET, "notification_types": ["vuln_update"]}).raise_for_status()
        serve.post("/v2/notifications/endpoints/email/configurations", json={
            "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "from": "ci-gate@example.test",
            "to": ["sec@example.test"], "notification_types": ["vuln_update"]}).raise_for_status()
        for tag in (watched, other):
            serve.add_tag(tag).raise_for_status()
        serve.wait_status(digest)
        [subscription] = serve.get("/v2/subscriptions", params={"subscription_key": watched,
                                                                "subscription_type": "vuln_update"}).json()
        serve.put(f"/v2/subscriptions/{subscription['subscription_id']}", json={"active": True}).raise_for_status()
        # The watcher's baseline for the subscribed tag (no event): the import must come after it, or the
        # import's advisory would be part of the baseline and nothing would be sent.
        serve.wait_until(lambda: serve.vuln_watch_images() == 1, "the baseline of the subscribed tag")

        tree = tmp_path / "osv" / "Debian"
        tree.mkdir(parents=True)
        (tree / "DSA-9999-1.json").write_text(json.dumps(OPENSSL_ADVISORY))
        import_paths([tree.parent], vuln_db)  # what `ci-gate db import` does
        serve.wait_until(lambda: all(r.answered() for r in kinds.values()) and mailbox.messages
                         and len(kinds["jira"].issues) == 1 and len(kinds["github"].issues) == 1,
                         "vuln_update at every endpoint")
        time.sleep(1.0)  # later polls with the same store send nothing more
        # A receiver answers before the server records its delivery as delivered: wait for the records too.
        deliveries = serve.wait_until(lambda: _all_delivered(serve), "every delivery recorded as delivered")
    assert sorted(d["endpoint"] for d in deliveries) == sorted([*kinds, "email"])
    assert {d["state"] for d in deliveries} == {"delivered"} and {d["notification_type"] for d in deliveries} == {
        "vuln_update"}
    webhook = kinds["webhook"].answered()
    assert len(webhook) == 1 and webhook[0].json()["data"]["notification_payload"]["imageDigest"] == digest
    added = webhook[0].json()["data"]["notification_payload"]["diff_vulnerability_result"]["added"]
    assert [(v["CVE_ID"], v["Package_Name"]) for v in added] == [("DSA-9999-1", "openssl")]
    assert all(r.signature_ok for kind in kinds.values() for r in kind.received)
    assert "DSA-9999-1" in kinds["slack"].answered()[0].json()["blocks"][1]["text"]["text"]
    [issue] = kinds["jira"].issues.values()
    assert watched in issue["fields"]["summary"] and "DSA-9999-1" in issue["fields"]["description"]
    assert len(mailbox.messages) == 1 and watched.encode() in mailbox.messages[0].content


@pytest.mark.parametrize(("text", "expected"), [
    ("webhooks:\n  general: {}\n", "webhooks.general needs a url"),
    ("webhooks:\n  general: {url: 'ftp://hooks.example.test/x'}\n", "webhooks.general.url must be an http(s) URL"),
    ("- a list\n", "must hold a `webhooks:` mapping"),
])
def test_a_bad_notifications_config_stops_serve_with_one_line(tmp_path: Path, text: str, expected: str) -> None:
    import os
    import subprocess
    import sys

    from tests.support.serve import PASSWORD, free_port

    config = tmp_path / "notifications.yaml"
    config.write_text(text)
    result = subprocess.run([sys.executable, "-m", "ci_gate.cli", "serve", "--port", str(free_port()), "--data-dir",
                             str(tmp_path / "data"), "--notifications-config", str(config)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "CI_GATE_ADMIN_PASSWORD": PASSWORD})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(config) in lines[0]
