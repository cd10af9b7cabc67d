"""Deliveries from a real serve database through the real dispatcher to receivers on 127.0.0.1 that answer
as Slack, Teams, Jira, GitHub and a generic webhook do, and to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest

from ci_gate.notify import endpoints, hosts, outbox
from ci_gate.notify.dispatcher import Dispatcher
from ci_gate.server.records import CredentialBox, initialise_subscriptions
from ci_gate.server.store import Store, add_event, now_text
from tests.notify.conftest import TAG
from tests.notify.receivers import Receiver, smtp_receiver, start_receiver

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
SIGNING_SECRET = "whsec-test-signing-secret"
LOCAL = ("127.0.0.1",)
"""The receivers listen on 127.0.0.1 (`serve --allow-notify-host 127.0.0.1`)."""


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_NOTIFY_BACKOFF_SECONDS", "0.05")
    monkeypatch.setenv("CI_GATE_NOTIFY_TIMEOUT_SECONDS", "1")


def add_endpoint(store: Store, box: CredentialBox, kind: str, body: dict[str, Any]) -> endpoints.Endpoint:
    endpoint = endpoints.parse_endpoint(kind, body)
    endpoints.save_endpoint(store, box, endpoint, now_text())
    return endpoint


def record(store: Store, notification_type: str, details: dict[str, Any], tag: str = TAG) -> str:
    with store._transaction() as connection:
        return add_event(connection, "admin", notification_type, tag, details)


def drain(dispatcher: Dispatcher, store: Store, timeout: float = 20) -> list[dict[str, Any]]:
    """Run delivery passes until nothing is pending; the deliveries."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dispatcher.pass_once()
        deliveries = outbox.list_deliveries(store)
        if deliveries and all(d["state"] in (outbox.DELIVERED, outbox.FAILED) for d in deliveries):
            return deliveries
        time.sleep(0.02)
    raise AssertionError(f"deliveries still pending: {outbox.list_deliveries(store)}")


TAG_MOVED = {"last_eval": [DIGEST_A], "curr_eval": [DIGEST_B]}


def vulns(digest: str, cve: str) -> dict[str, Any]:
    return {"imageDigest": digest, "subscription_type": "vuln_update", "diff_vulnerability_result": {
        "added": [{"CVE_ID": cve, "Severity": "High", "Vulnerable_Package": "openssl-3.0.11",
                   "Fix_Available": "3.0.13"}],
        "updated": [], "removed": []}}


def test_webhook_v1_is_anchore_engines_body_signed_with_a_stable_key(store: Store, box: CredentialBox,
                                                                     receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook", secret=SIGNING_SECRET, outage=[503])
    endpoint = add_endpoint(store, box, "webhook", {"url": hook.url + "/hooks/<notification_type>",
                                                    "secret": SIGNING_SECRET})
    event_id = record(store, "tag_update", TAG_MOVED)
    deliveries = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)

    assert [d["state"] for d in deliveries] == ["delivered"]
    first, second = hook.received
    assert first.status == 503 and second.status == 200
    assert second.path == "/hooks/tag_update"
    expected_key = outbox.idempotency_key(event_id, endpoint.endpoint_id)
    assert first.key == second.key == second.headers["idempotency-key"] == expected_key
    assert first.signature_ok and second.signature_ok
    body = second.json()
    assert set(body) == {"queueId", "userId", "dataId", "created_at", "last_updated", "record_state_key",
                         "record_state_val", "tries", "max_tries", "data"}
    assert body["data"]["notification_type"] == "tag_update" and body["data"]["notification_user"] == "admin"
    payload = body["data"]["notification_payload"]
    assert (payload["subscription_key"], payload["subscription_type"], payload["notificationId"]) == (
        TAG, "tag_update", event_id)
    assert (payload["last_eval"], payload["curr_eval"]) == ([DIGEST_A], [DIGEST_B])
    assert body["tries"] == 2


def test_webhook_v2_is_enterprises_event_body(store: Store, box: CredentialBox, receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook")
    add_endpoint(store, box, "webhook", {"url": hook.url, "format": "v2", "notification_types": ["policy_eval"]})
    record(store, "tag_update", TAG_MOVED)  # not a type this endpoint takes
    event_id = record(store, "policy_eval", {"last_eval": {"status": "pass"}, "curr_eval": {"status": "fail"}})
    drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)

    [only] = hook.received
    body = only.json()
    assert set(body) == {"id", "type", "level", "message", "details", "timestamp", "resource", "source"}
    assert body["id"] == event_id and body["type"] == "user.checks.tag.policy_evaluation.update"
    assert body["resource"] == {"account_name": "admin", "type": "image_tag", "id": TAG}
    assert only.signature_ok is None and "x-ci-gate-signature-256" not in only.headers  # no secret, no signature


def test_an_event_without_an_active_subscription_is_not_sent(store: Store, box: CredentialBox,
                                                             receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook")
    add_endpoint(store, box, "webhook", {"url": hook.url})
    record(store, "tag_update", TAG_MOVED, tag="registry.example.test/other:1")
    Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL).pass_once()
    assert outbox.list_deliveries(store) == [] and hook.received == []


def test_slack_429_waits_for_retry_after(store: Store, box: CredentialBox, receivers: list[Receiver]) -> None:
    slack = start_receiver(receivers, "slack", outage=[429], retry_after="1")
    add_endpoint(store, box, "slack", {"url": slack.url + slack.slack_path})
    record(store, "vuln_update", vulns(DIGEST_A, "CVE-2099-0001"))
    drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)

    limited, accepted = slack.received
    assert (limited.status, accepted.status) == (429, 200)
    assert accepted.at - limited.at >= 1.0  # Retry-After: 1, although the backoff alone is 0.05 s
    message = accepted.json()
    assert message["blocks"][0]["type"] == "header" and "1 added" in message["blocks"][0]["text"]["text"]
    assert "CVE-2099-0001" in message["blocks"][1]["text"]["text"]


def test_teams_answers_5xx_then_takes_the_adaptive_card(store: Store, box: CredentialBox,
                                                        receivers: list[Receiver]) -> None:
    teams = start_receiver(receivers, "teams", outage=[503, 502])
    add_endpoint(store, box, "teams", {"url": teams.url + "/workflows/abc/triggers/manual/paths/invoke"})
    record(store, "analysis_update", {"image_digest": DIGEST_A, "analysis_status": "analyzed"})
    [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)

    assert [r.status for r in teams.received] == [503, 502, 202]
    assert len({r.key for r in teams.received}) == 1
    assert (delivery["tries"], delivery["last_status"]) == (3, 202)
    card = teams.received[-1].json()["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and {"title": "Tag", "value": TAG} in card["body"][1]["facts"]


def test_a_timeout_and_a_dropped_connection_are_retried(store: Store, box: CredentialBox,
                                                        receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook", outage=["hang", "drop"], hang_seconds=2.5)
    add_endpoint(store, box, "webhook", {"url": hook.url})
    record(store, "tag_update", TAG_MOVED)
    [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)
    assert delivery["state"] == "delivered" and delivery["tries"] == 3
    assert [r.status for r in hook.received] == [0, 0, 200]


def test_a_refusal_is_not_retried_and_the_slack_url_is_never_shown(store: Store, box: CredentialBox,
                                                                    receivers: list[Receiver]) -> None:
    slack = start_receiver(receivers, "slack")
    endpoint = add_endpoint(store, box, "slack", {"url": slack.url + "/services/T0001/B0001/wrongsecret"})
    record(store, "tag_update", TAG_MOVED)
    [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)

    assert (delivery["state"], delivery["tries"], delivery["last_status"]) == ("failed", 1, 404)
    assert len(slack.received) == 1
    shown = repr(delivery) + repr(endpoint.public()) + repr(endpoints.list_endpoints(store, box)[0].public())
    assert "wrongsecret" not in shown and "services/T0001" not in shown
    assert endpoint.public()["url_set"] is True


def test_a_receiver_down_past_the_retry_window_fails_the_delivery(store: Store, box: CredentialBox,
                                                                   receivers: list[Receiver],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_NOTIFY_RETRY_WINDOW_SECONDS", "0.6")
    hook = start_receiver(receivers, "webhook", outage=[503] * 100)
    add_endpoint(store, box, "webhook", {"url": hook.url})
    record(store, "tag_update", TAG_MOVED)
    [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)
    assert delivery["state"] == "failed" and delivery["tries"] >= 2 and delivery["last_error"] == "HTTP 503"
    assert hook.answered() == []


def test_jira_gets_one_issue_per_image_and_event_even_when_an_answer_is_lost(
        store: Store, box: CredentialBox, receivers: list[Receiver]) -> None:
    jira = start_receiver(receivers, "jira", secret=SIGNING_SECRET, outage=[None, "lost"])  # the create is lost
    add_endpoint(store, box, "jira", {"url": jira.url, "username": jira.jira_user[0], "password": jira.jira_user[1],
                                      "project_key": "OPS", "labels": ["security"], "secret": SIGNING_SECRET})
    dispatcher = Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL)
    record(store, "vuln_update", vulns(DIGEST_A, "CVE-2099-0001"))
    drain(dispatcher, store)
    record(store, "vuln_update", vulns(DIGEST_A, "CVE-2099-0002"))  # the same image again: a comment
    record(store, "vuln_update", vulns(DIGEST_B, "CVE-2099-0003"))  # another image: its own issue
    deliveries = drain(dispatcher, store)

    assert [d["state"] for d in deliveries] == ["delivered"] * 3
    assert sorted(jira.issues) == ["OPS-1", "OPS-2"]  # the lost answer did not make a second OPS issue
    first = jira.issues["OPS-1"]["fields"]
    assert first["project"] == {"key": "OPS"} and first["issuetype"] == {"name": "Bug"}
    assert "security" in first["labels"] and "CVE-2099-0001" in first["description"]
    assert len(jira.comments["OPS-1"]) == 2  # the retry after the lost answer, then CVE-2099-0002
    assert "CVE-2099-0002" in jira.comments["OPS-1"][-1]
    assert all(r.signature_ok for r in jira.received)
    assert {d["external_ref"] for d in deliveries} == {"OPS-1", "OPS-2"}


def test_github_creates_then_updates_one_issue(store: Store, box: CredentialBox, receivers: list[Receiver]) -> None:
    github = start_receiver(receivers, "github")
    add_endpoint(store, box, "github", {"api_url": github.url, "owner": "acme", "repository": "images",
                                        "token": github.github_token, "labels": ["ci-gate"]})
    dispatcher = Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL)
    record(store, "policy_eval", {"last_eval": {"status": "pass"}, "curr_eval": {"status": "fail",
                                                                                "image_digest": DIGEST_A}})
    drain(dispatcher, store)
    github.issues["1"]["state"] = "closed"  # someone closed it; the next flip for the same image reopens it
    record(store, "policy_eval", {"last_eval": {"status": "fail"}, "curr_eval": {"status": "pass",
                                                                                "image_digest": DIGEST_A}})
    drain(dispatcher, store)

    assert list(github.issues) == ["1"]
    issue = github.issues["1"]
    assert issue["updates"] == 1 and issue["state"] == "open" and "fail -> pass" in issue["title"]
    assert "ci-gate" in [label["name"] for label in issue["labels"]]
    assert all(r.headers["x-github-api-version"] == "2022-11-28" for r in github.received)


def test_email_over_smtp_with_a_temporary_failure(store: Store, box: CredentialBox) -> None:
    with smtp_receiver(refuse_next=True) as (handler, port):
        add_endpoint(store, box, "email", {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "ci-gate@example.test",
                                           "to": ["team@example.test", "sec@example.test"]})
        event_id = record(store, "tag_update", TAG_MOVED)
        [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)
    assert delivery["state"] == "delivered" and delivery["tries"] == 2
    [envelope] = handler.messages
    assert envelope.rcpt_tos == ["team@example.test", "sec@example.test"]
    message = message_from_bytes(envelope.content, policy=policy.default)
    assert message["Subject"].strip() == f"ci-gate: {TAG} now points to another image"
    assert message["X-CI-Gate-Idempotency-Key"] == delivery["idempotency_key"]
    text = message.get_content()  # type: ignore[attr-defined]
    assert event_id in text and DIGEST_B in text


def test_endpoint_secrets_are_kept_but_never_shown(store: Store, box: CredentialBox) -> None:
    saved = add_endpoint(store, box, "github", {"owner": "o", "repository": "r", "token": "ghp_verysecret",
                                                "secret": SIGNING_SECRET})
    [loaded] = endpoints.list_endpoints(store, box)
    assert loaded.secrets == {"token": "ghp_verysecret", "secret": SIGNING_SECRET}
    assert "ghp_verysecret" not in repr(loaded) and "ghp_verysecret" not in repr(loaded.public())
    assert loaded.public()["token_set"] is True and loaded.public()["secret_set"] is True
    if store.database.dialect == "sqlite":
        raw = (store.path.read_bytes() + Path(str(store.path) + "-wal").read_bytes()
               if Path(str(store.path) + "-wal").exists() else store.path.read_bytes())
    else:  # every stored column of the endpoint, as PostgreSQL holds it
        raw = repr([tuple(row) for row in store._query("SELECT * FROM notification_endpoints")]).encode()
    assert b"ghp_verysecret" not in raw  # sealed in the database too
    updated = endpoints.parse_endpoint("github", {"owner": "o", "repository": "r2"}, saved.endpoint_id, loaded)
    assert updated.secrets["token"] == "ghp_verysecret"  # an update that does not resend the token keeps it


def test_a_disabled_endpoint_gets_no_more_tries(store: Store, box: CredentialBox, receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook", outage=[503] * 100)
    endpoint = add_endpoint(store, box, "webhook", {"url": hook.url})
    record(store, "tag_update", TAG_MOVED)
    dispatcher = Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL)
    dispatcher.pass_once()
    assert [d["state"] for d in outbox.list_deliveries(store)] == ["pending"]
    endpoints.save_endpoint(store, box, endpoints.parse_endpoint("webhook", {"url": hook.url, "enabled": False},
                                                                 endpoint.endpoint_id, endpoint), now_text())
    [delivery] = drain(dispatcher, store)
    assert delivery["state"] == "failed" and "disabled" in delivery["last_error"] and len(hook.received) == 1


def test_a_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(endpoints.EndpointError) as refused:
        endpoints.parse_endpoint("webhook", {"url": "https://bot:hunter2@hooks.example.test/x"})
    assert "hunter2" not in str(refused.value) and "username and password" in str(refused.value)


def test_backoff_grows_with_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI_GATE_NOTIFY_BACKOFF_SECONDS", "2")
    waits = {tries: [outbox.backoff_seconds(tries) for _ in range(50)] for tries in (1, 4, 12, 40)}
    assert all(1.0 <= w <= 2 * 2 ** 1 + 0.2 for w in waits[1])
    assert max(waits[4]) > max(waits[1]) and len(set(waits[4])) > 40  # jittered, not in step
    assert all(w <= outbox.MAX_BACKOFF + 0.2 for w in waits[40])


def test_finished_deliveries_are_pruned_after_a_week(store: Store, box: CredentialBox,
                                                     receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook")
    add_endpoint(store, box, "webhook", {"url": hook.url})
    record(store, "tag_update", TAG_MOVED)
    drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)
    assert outbox.prune(store) == 0  # a fresh delivery stays listable
    assert outbox.prune(store, now=time.time() + outbox.KEEP_SECONDS + 60) == 1
    assert outbox.list_deliveries(store) == [] and store._query("SELECT * FROM outbox") == []


def test_every_notification_type_reaches_every_endpoint_kind(store: Store, box: CredentialBox,
                                                             receivers: list[Receiver]) -> None:
    hook, slack, teams, jira, github = (start_receiver(receivers, kind, secret=SIGNING_SECRET)
                                        for kind in ("webhook", "slack", "teams", "jira", "github"))
    for kind, body in (("webhook", {"url": hook.url}), ("slack", {"url": slack.url + slack.slack_path}),
                       ("teams", {"url": teams.url + "/invoke"}),
                       ("jira", {"url": jira.url, "username": jira.jira_user[0], "password": jira.jira_user[1],
                                 "project_key": "OPS"}),
                       ("github", {"api_url": github.url, "owner": "o", "repository": "r",
                                   "token": github.github_token})):
        add_endpoint(store, box, kind, {**body, "secret": SIGNING_SECRET})
    with smtp_receiver() as (mailbox, port):
        add_endpoint(store, box, "email", {"smtp_host": "127.0.0.1", "smtp_port": port, "from": "a@example.test",
                                           "to": ["b@example.test"]})
        record(store, "tag_update", TAG_MOVED)
        record(store, "policy_eval", {"last_eval": {"status": "pass", "image_digest": DIGEST_B},
                                      "curr_eval": {"status": "fail", "image_digest": DIGEST_B}})
        record(store, "vuln_update", vulns(DIGEST_B, "CVE-2099-0009"))
        record(store, "analysis_update", {"image_digest": DIGEST_B, "analysis_status": "analyzed"})
        deliveries = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)
    assert len(deliveries) == 24 and {d["state"] for d in deliveries} == {"delivered"}
    types = {"tag_update", "policy_eval", "vuln_update", "analysis_update"}
    for http in (hook, slack, teams):
        assert {r.headers["x-ci-gate-event"] for r in http.answered()} == types
        assert all(r.signature_ok for r in http.received)
    assert len(jira.issues) == 4 and len(github.issues) == 4  # one per image and notification type
    titles = [m.content for m in mailbox.messages]
    assert len(titles) == 4 and any(b"policy check" in t for t in titles) and any(b"analysis of" in t for t in titles)


def test_each_account_notifies_only_its_own_endpoints(tmp_path: Path, box: CredentialBox,
                                                      receivers: list[Receiver]) -> None:
    stores = {"admin": Store(tmp_path / "admin"), "team-b": Store(tmp_path / "team-b")}
    hooks = {account: start_receiver(receivers, "webhook") for account in stores}
    try:
        for account, account_store in stores.items():
            initialise_subscriptions(account_store, TAG, ("tag_update",))
            add_endpoint(account_store, box, "webhook", {"url": hooks[account].url})
        event_id = record(stores["team-b"], "tag_update", TAG_MOVED)
        dispatcher = Dispatcher(lambda: stores, box, allowed_hosts=LOCAL)
        drain(dispatcher, stores["team-b"])
        dispatcher.pass_once()
    finally:
        for account_store in stores.values():
            account_store.close()
    assert hooks["admin"].received == []
    [only] = hooks["team-b"].received
    body = only.json()
    assert body["userId"] == "team-b" and body["data"]["notification_payload"]["notificationId"] == event_id


def test_a_redirect_to_another_host_is_not_followed(store: Store, box: CredentialBox,
                                                    receivers: list[Receiver]) -> None:
    elsewhere = start_receiver(receivers, "webhook")
    redirecting = start_receiver(receivers, "webhook", redirect_to=f"{elsewhere.url}/stolen")
    add_endpoint(store, box, "webhook", {"url": redirecting.url, "secret": SIGNING_SECRET})
    record(store, "tag_update", TAG_MOVED)
    # both receivers' host is allowed: the redirect itself is never followed
    [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=LOCAL), store)
    assert delivery["state"] == "failed" and delivery["last_status"] == 302 and delivery["tries"] == 1
    assert len(redirecting.received) == 1 and elsewhere.received == []


def test_a_host_no_longer_allowed_after_a_restart_is_never_sent_to(store: Store, box: CredentialBox,
                                                                   receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook")
    slack = start_receiver(receivers, "slack")
    port = hook.url.rsplit(":", 1)[1]
    add_endpoint(store, box, "webhook", {"url": hook.url})
    add_endpoint(store, box, "slack", {"url": slack.url + slack.slack_path})
    record(store, "tag_update", TAG_MOVED)
    # the server restarted with `--allow-notify-host 127.0.0.1:<the webhook's port>` only
    deliveries = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=(f"127.0.0.1:{port}",)), store)
    states = {d["endpoint"]: d for d in deliveries}
    assert states["webhook"]["state"] == "delivered" and len(hook.received) == 1
    refused = states["slack"]
    assert refused["state"] == "failed" and refused["tries"] == 1 and slack.received == []
    slack_host = slack.url.removeprefix("http://")
    assert f"--allow-notify-host {slack_host}" in refused["last_error"]
    assert "hooksecret" not in refused["last_error"]  # the Slack URL (a credential) is not shown


def test_email_to_an_smtp_server_not_allowed_is_never_connected(store: Store, box: CredentialBox) -> None:
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    try:
        add_endpoint(store, box, "email", {"smtp_host": "127.0.0.1", "smtp_port": listener.getsockname()[1],
                                           "from": "ci-gate@example.test", "to": ["sec@example.test"]})
        record(store, "tag_update", TAG_MOVED)
        [delivery] = drain(Dispatcher(lambda: {"admin": store}, box, allowed_hosts=("hooks.example.test",)), store)
        assert delivery["state"] == "failed" and "--allow-notify-host 127.0.0.1:" in delivery["last_error"]
        with pytest.raises(TimeoutError):
            listener.accept()  # nothing ever connected
    finally:
        listener.close()


@pytest.mark.parametrize(("entry", "host", "allowed"), [
    ("127.0.0.1", "127.0.0.1:8080", True), ("127.0.0.1:8080", "127.0.0.1:8081", False),
    ("Hooks.Slack.com", hosts.url_host("https://hooks.slack.com/services/x"), True),
    ("hooks.slack.com:443", hosts.url_host("https://hooks.slack.com/services/x"), True),
    ("hooks.slack.com", hosts.url_host("https://hooks.slack.com.evil.test/x"), False),
    ("*", hosts.url_host("http://169.254.169.254/latest/meta-data/"), True),
    ("10.0.0.1", hosts.url_host("http://169.254.169.254/latest/meta-data/"), False),
    ("[::1]", hosts.url_host("http://[::1]:9000/hook"), True),
    # requests (urllib3) would connect to evil.test: judged by that host, never by the part after `@`
    ("127.0.0.1", hosts.url_host("http://evil.test\\@127.0.0.1/"), False),
    ("127.0.0.1", hosts.url_host("http://127.0.0.1%2e/"), False),
])
def test_allowlist_entries(entry: str, host: str, allowed: bool) -> None:
    assert hosts.allowed(host, [hosts.parse_entry(entry)]) is allowed
