"""Credentials in notification endpoint URLs that do not look like `?token=` or `/hooks/<key>`, on the
real `ci-gate serve`: a Telegram bot token in a path segment, a `;`-separated query pair, a path
segment parameter, IFTTT's `/with/key/<key>`, an n8n `/webhook/<uuid>`, a `?jwt=`. Every one is masked
in the API (create, list, read, saved back), the dashboard and the log, and deliveries still go to
the real URL."""

from __future__ import annotations

from pathlib import Path

from tests.notify.receivers import Receiver, start_receiver
from tests.support.serve import ServeProcess

FAST = {"CI_GATE_NOTIFY_BACKOFF_SECONDS": "0.2", "CI_GATE_NOTIFY_POLL_SECONDS": "0.1",
        "CI_GATE_NOTIFY_TIMEOUT_SECONDS": "1"}
TELEGRAM_TOKEN = "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SEMICOLON_TOKEN = "semi-colon-secret-4711"
SESSION = "jsession-secret-0815"
IFTTT_KEY = "dkq3vb8xwz"
N8N_ID = "3f2c1a4e-9b7d-4c2e-8f1a-2b3c4d5e6f70"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjaSJ9.c2lnbmF0dXJl"
FILE_TELEGRAM_TOKEN = "BBHdqTcvCH1vGWJxfSeofSAs0K5PALDsbx"
SECRETS = (TELEGRAM_TOKEN, SEMICOLON_TOKEN, SESSION, IFTTT_KEY, N8N_ID, JWT, FILE_TELEGRAM_TOKEN)


def test_credentials_of_other_url_shapes_are_masked_everywhere_and_still_delivered(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    hook = start_receiver(receivers, "webhook")
    urls = {  # URL -> (path, query) the receiver must be sent
        f"{hook.url}/bot123456:{TELEGRAM_TOKEN}/sendMessage": (f"/bot123456:{TELEGRAM_TOKEN}/sendMessage", {}),
        f"{hook.url}/in?team=a;token={SEMICOLON_TOKEN}": ("/in", {"team": f"a;token={SEMICOLON_TOKEN}"}),
        f"{hook.url}/in;jsessionid={SESSION}": (f"/in;jsessionid={SESSION}", {}),
        f"{hook.url}/trigger/ci/with/key/{IFTTT_KEY}": (f"/trigger/ci/with/key/{IFTTT_KEY}", {}),
        f"{hook.url}/webhook/{N8N_ID}": (f"/webhook/{N8N_ID}", {}),
        f"{hook.url}/in?jwt={JWT}": ("/in", {"jwt": JWT}),
    }
    config = tmp_path / "notifications.yaml"
    config.write_text(f"webhooks:\n  tag_update:\n    url: {hook.url}/bot42:{FILE_TELEGRAM_TOKEN}/sendMessage\n")
    with ServeProcess(tmp_path / "data", environment=FAST, extra_args=[
            "--notifications-config", str(config), "--allow-notify-host", "127.0.0.1"]) as serve:
        base = "/v2/notifications/endpoints/webhook/configurations"
        shown_texts = []
        for number, url in enumerate(urls):
            created = serve.post(base, json={"name": f"hook{number}", "url": url})
            assert created.status_code == 200, created.text
            one = f"{base}/{created.json()['id']}"
            read = serve.get(one)
            saved_back = serve.put(one, json={**read.json(), "name": f"hook{number} renamed"})
            assert saved_back.status_code == 200 and saved_back.json()["url"] == read.json()["url"]
            assert "***" in read.json()["url"]
            shown_texts += [created.text, read.text, saved_back.text]
            tested = serve.post(f"{one}/test")
            assert tested.status_code == 200 and tested.json()[0]["delivered"] is True, tested.text
        assert serve.post("/v2/system/webhooks/tag_update/test").status_code == 200
        shown_texts += [serve.get(base).text, serve.get("/v2/notifications/deliveries").text,
                        serve.get("/ui/notifications").text]
        log = serve.full_log()
    # deliveries went to the real URLs (as saved back), then the engine-style test reached the file's hook
    # and every tag_update endpoint
    received = [(r.path, r.query) for r in hook.received]
    assert received[:len(urls)] == list(urls.values())
    assert sorted(map(str, received[len(urls):])) == sorted(map(str, [
        *urls.values(), (f"/bot42:{FILE_TELEGRAM_TOKEN}/sendMessage", {})]))
    for secret in SECRETS:
        assert all(secret not in text for text in shown_texts), secret
        assert secret not in log, secret


def test_a_new_url_replaces_the_real_one_and_a_moved_host_does_not_take_the_credential(
        tmp_path: Path, receivers: list[Receiver]) -> None:
    """Saving back the masked URL keeps the real one; a masked URL with another host is taken as written
    (the credential is not carried to a host the client names)."""
    hook, other = start_receiver(receivers, "webhook"), start_receiver(receivers, "webhook")
    with ServeProcess(tmp_path / "data", environment=FAST,
                      extra_args=["--allow-notify-host", "127.0.0.1"]) as serve:
        base = "/v2/notifications/endpoints/webhook/configurations"
        created = serve.post(base, json={"url": f"{hook.url}/bot1:{TELEGRAM_TOKEN}/sendMessage"})
        one = f"{base}/{created.json()['id']}"
        masked_url = created.json()["url"]
        moved = serve.put(one, json={"url": masked_url.replace(hook.url, other.url)})
        assert moved.status_code == 200
        assert serve.post(f"{one}/test").json()[0]["delivered"] is True
        replaced = serve.put(one, json={"url": f"{hook.url}/bot2:{SEMICOLON_TOKEN}x{TELEGRAM_TOKEN}/send"})
        assert replaced.status_code == 200 and SEMICOLON_TOKEN not in replaced.text
        assert serve.post(f"{one}/test").json()[0]["delivered"] is True
    assert [r.path for r in other.received] == ["/***/sendMessage"]
    assert [r.path for r in hook.received] == [f"/bot2:{SEMICOLON_TOKEN}x{TELEGRAM_TOKEN}/send"]
