"""The dashboard's pages beyond the tag list, in headless Chromium against the real `ci-gate serve`:
stored evaluations and paging on /ui/, a tag's drift between two digests (a tag moved, for real, in
the local registry), the policies (view, diff, activation through the CSRF-protected form), allowlist
items expiring soon, notification endpoints with their deliveries (a real webhook receiver), and
hostile policy and tag text shown as text."""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.notify.receivers import Receiver
from tests.support.browser import chromium_logged_in, keep_screenshot, requests_made
from tests.support.drift_images import build_drift_images
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD, ServeProcess, build_variant

HOSTILE = "javascript:alert('link')<script>alert('x')</script>\"><img src=/ui/pwned onerror=alert('img')>"
FAST = {"CI_GATE_NOTIFY_BACKOFF_SECONDS": "0.2", "CI_GATE_NOTIFY_POLL_SECONDS": "0.1",
        "CI_GATE_NOTIFY_TIMEOUT_SECONDS": "1"}


def _day(days: int) -> str:
    return (datetime.now(timezone.utc) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _policy(policy_id: str, name: str, description: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": policy_id, "name": name, "version": "2", "description": description,
            "rule_sets": [{"id": "rs", "name": "root", "version": "2", "rules": [
                {"id": "r1", "gate": "dockerfile", "trigger": "instruction", "action": "warn",
                 "params": [{"name": "instruction", "value": "RUN"}, {"name": "check", "value": "exists"}]}]}],
            "allowlists": [{"id": "al", "name": "exceptions", "version": "2", "items": items}],
            "mappings": [{"id": "m", "name": "all", "registry": "*", "repository": "*",
                          "image": {"type": "tag", "value": "*"}, "rule_set_ids": ["rs"],
                          "allowlist_ids": ["al"]}]}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    hook = Receiver("webhook").start()
    try:
        yield hook
    finally:
        hook.stop()


@pytest.fixture(scope="module")
def ui_server(tmp_path_factory: pytest.TempPathFactory, serve_vuln_db: Path, registry: RegistryServer,
              receiver: Receiver) -> Iterator[tuple[ServeProcess, dict[str, Any]]]:
    """A server with a webhook endpoint, a tag moved from app:1 to app:2 (curl added), a tag never checked,
    and two policies: a hostile-named one with expiring allowlist items, and a plain one."""
    root = tmp_path_factory.mktemp("ui-pages")
    with ServeProcess(root / "data", vuln_db=serve_vuln_db, environment=FAST,
                      extra_args=["--allow-notify-host", "127.0.0.1"]) as server:
        added = server.post("/v2/notifications/endpoints/webhook/configurations",
                            json={"name": HOSTILE, "url": receiver.url, "notification_types": ["analysis_update"]})
        assert added.status_code == 200, added.text
        images = build_drift_images(root / "images")
        moved = push(images.app_v1_image, registry.host, f"ui/app-{uuid.uuid4().hex[:8]}:stable")
        for image in (images.app_v1_image, images.app_v2_image):
            push(image, registry.host, moved.split("/", 1)[1])
            assert server.add_tag(moved).status_code == 200
            assert server.wait_status(image.manifest_digest)["analysis_status"] == "analyzed"
        other_image = build_variant(root / "other", 21)
        other = push(other_image, registry.host, "ui/other:1")
        assert server.add_tag(other).status_code == 200
        assert server.wait_status(other_image.manifest_digest)["analysis_status"] == "analyzed"
        items = [{"id": "soon", "gate": "dockerfile", "trigger_id": "x", "expires_on": _day(10),
                  "reason": HOSTILE, "approved_by": "ISSO"},
                 {"id": "gone", "gate": "dockerfile", "trigger_id": "y", "expires_on": _day(-1)},
                 {"id": "later", "gate": "dockerfile", "trigger_id": "z", "expires_on": _day(90)}]
        for body in (_policy("hostile", HOSTILE, HOSTILE, items), _policy("plain", "plain policy", "warns", [])):
            response = server.post("/v2/policies", json=body)
            assert response.status_code == 200, response.text
        yield server, {"moved": moved, "v1": images.app_v1_image.manifest_digest,
                       "v2": images.app_v2_image.manifest_digest, "other": other,
                       "other_digest": other_image.manifest_digest}


@pytest.fixture(scope="module")
def browser(ui_server: tuple[ServeProcess, dict[str, Any]]) -> Iterator[Any]:
    with chromium_logged_in("admin", PASSWORD) as driver:
        yield driver


def _shots(browser: Any, name: str, tmp_path: Path) -> None:
    """Screenshots at desktop and phone widths: no sideways scrolling, not blank."""
    for width in (1280, 390):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
        browser.refresh()
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        shot = tmp_path / f"serve-ui-{name}-{width}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 5_000
        keep_screenshot(shot)
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def _rows(browser: Any, table: str) -> dict[str, Any]:
    return {r.find_element(By.TAG_NAME, "th").text: r for r in browser.find_elements(By.CSS_SELECTOR,
                                                                                    f"#{table} tbody tr")}


def test_index_shows_stored_evaluations_evaluates_the_rest_and_pages(ui_server, browser):
    server, tags = ui_server
    checked = server.get(f"/v2/images/{tags['v2']}/check", params={"tag": tags["moved"]}).json()
    final_action = checked["evaluations"][0]["final_action"].upper()
    with sqlite3.connect(f"file:{server.data_dir / 'ci-gate-serve.sqlite'}?mode=ro", uri=True) as database:
        [(stamp,)] = database.execute("SELECT evaluated_at FROM evaluation_history WHERE tag = ? ORDER BY seq DESC "
                                      "LIMIT 1", (tags["moved"],)).fetchall()
    browser.get(server.url + "/ui/")
    rows = _rows(browser, "tags")
    stored, fresh = rows[tags["moved"]], rows[tags["other"]]
    assert stored.find_element(By.CLASS_NAME, "evaluated").text == stamp  # the check's row, not a new evaluation
    assert stored.find_element(By.CLASS_NAME, "badge").text == ("STOP" if final_action == "STOP" else "PASS")
    assert fresh.find_element(By.CLASS_NAME, "evaluated").text == "now"
    assert fresh.find_element(By.CLASS_NAME, "badge").text in ("GO", "WARN", "STOP")

    # three images (the moved tag's two and the other), two tags: three pages of one
    browser.get(server.url + "/ui/?per_page=1")
    first, first_images = list(_rows(browser, "tags")), list(_rows(browser, "images"))
    assert len(first) == 1 and len(first_images) == 1
    assert "Page 1 of 3" in browser.find_element(By.ID, "pager").text
    assert browser.find_element(By.ID, "images-count").text == "3 images"
    browser.find_element(By.CSS_SELECTOR, "#pager a[rel=next]").click()
    WebDriverWait(browser, 30).until(lambda driver: "page=2" in driver.current_url)
    second, second_images = list(_rows(browser, "tags")), list(_rows(browser, "images"))
    assert len(second) == 1 and sorted(first + second) == sorted([tags["moved"], tags["other"]])
    browser.find_element(By.CSS_SELECTOR, "#pager a[rel=next]").click()
    WebDriverWait(browser, 30).until(lambda driver: "page=3" in driver.current_url)
    assert list(_rows(browser, "tags")) == [] and browser.find_elements(By.CSS_SELECTOR, "#pager a[rel=next]") == []
    shown = first_images + second_images + list(_rows(browser, "images"))
    assert sorted(shown) == sorted([tags["v1"], tags["v2"], tags["other_digest"]])
    assert server.get("/ui/?page=4&per_page=1").status_code == 400


def test_drift_between_two_digests_of_a_tag(ui_server, browser, tmp_path):
    server, tags = ui_server
    browser.get(server.url + "/ui/tag?tag=" + quote(tags["moved"], safe=""))
    browser.find_element(By.ID, "drift-link").click()
    WebDriverWait(browser, 30).until(lambda driver: "/ui/drift" in driver.current_url)
    assert tags["v1"] in browser.find_element(By.ID, "drift-digests").text
    rows = _rows(browser, "drift")
    assert list(rows) == ["curl"] and "added" in rows["curl"].text and "7.88.1-10+deb12u4" in rows["curl"].text
    assert [browser.find_element(By.ID, f"drift-{k}").text for k in ("added", "removed", "modified")] == [
        "1 added", "0 removed", "0 modified"]
    _shots(browser, "drift", tmp_path)
    backwards = f"/ui/drift?tag={quote(tags['moved'], safe='')}&from={tags['v2']}&to={tags['v1']}"
    browser.get(server.url + backwards)
    assert "removed" in _rows(browser, "drift")["curl"].text
    assert server.get(f"/ui/drift?tag={tags['moved']}&from=sha256:{'0' * 64}").status_code == 404


def test_policies_view_diff_and_activate_through_the_form(ui_server, browser, tmp_path):
    server, _ = ui_server
    browser.get(server.url + "/ui/policies")
    rows = _rows(browser, "policies")
    plain = next(r for name, r in rows.items() if name.startswith("plain policy"))
    plain.find_element(By.TAG_NAME, "a").click()
    WebDriverWait(browser, 30).until(lambda driver: "/ui/policy?id=plain" in driver.current_url)
    assert '"description": "warns"' in browser.find_element(By.ID, "document").text
    diff = browser.find_element(By.ID, "diff")
    added = [e.text for e in diff.find_elements(By.CLASS_NAME, "add")]
    assert '+  "id": "plain",' in added and "+++ this: plain" in added
    _shots(browser, "policy", tmp_path)

    # the form's POST without its token, or with a wrong one, is refused and changes nothing
    token = browser.find_element(By.CSS_SELECTOR, "input[name=csrf_token]").get_attribute("value")
    assert len(token) == 64
    for form in ({"policy_id": "plain"}, {"policy_id": "plain", "csrf_token": "0" * 64}):
        refused = server.post("/ui/policies/activate", data=form, allow_redirects=False)
        assert refused.status_code == 403, refused.text
    assert requests.post(server.url + "/ui/policies/activate", data={"policy_id": "plain", "csrf_token": token},
                         timeout=30).status_code == 401
    assert server.get("/v2/policies/plain").json()["active"] is False
    # the token is bound to who logged in: an API key's session needs its own
    key = server.post("/v2/user/api-keys", json={"name": "ui-test", "expires_at": _day(1)})
    assert key.status_code == 200, key.text
    as_key = ("_api_key", key.json()["value"])
    other = requests.post(server.url + "/ui/policies/activate", data={"policy_id": "plain", "csrf_token": token},
                          auth=as_key, timeout=30, allow_redirects=False)
    assert other.status_code == 403
    key_page = requests.get(server.url + "/ui/policies", auth=as_key, timeout=30).text
    assert 'name="csrf_token"' in key_page and token not in key_page
    assert server.get("/v2/policies/plain").json()["active"] is False

    browser.find_element(By.CSS_SELECTOR, "button.activate").click()  # the real form, with its token
    WebDriverWait(browser, 30).until(lambda driver: "activated=" in driver.current_url)
    assert browser.current_url.endswith("/ui/policies?activated=plain")
    assert "active" in _rows(browser, "policies")[next(n for n in _rows(browser, "policies")
                                                       if n.startswith("plain policy"))].text
    assert [p["policy_id"] for p in server.get("/v2/policies").json() if p["active"]] == ["plain"]
    _shots(browser, "policies", tmp_path)
    # the same token activates through a scripted POST too (it is bound to the login, not to one page)
    back = server.post("/ui/policies/activate", data={"policy_id": "ci-gate-default", "csrf_token": token},
                       allow_redirects=False)
    assert back.status_code == 303
    assert [p["policy_id"] for p in server.get("/v2/policies").json() if p["active"]] == ["ci-gate-default"]


def test_allowlist_items_expiring_within_30_days(ui_server, browser, tmp_path):
    server, _ = ui_server
    browser.get(server.url + "/ui/expiring")
    rows = _rows(browser, "expiring")
    assert sorted(rows) == ["gone", "soon"]  # 90 days away is not listed; the expired one is
    assert "expired" in rows["gone"].text and "ISSO" in rows["soon"].text and "in 9 days" in rows["soon"].text
    _shots(browser, "expiring", tmp_path)


def test_notification_endpoints_and_their_deliveries(ui_server, browser, tmp_path):
    server, _ = ui_server
    deliveries = server.wait_until(lambda: (lambda d: d if len(d) >= 3 and all(x["state"] == "delivered" for x in d)
                                            else None)(server.get("/v2/notifications/deliveries").json()),
                                   "three deliveries delivered")
    browser.get(server.url + "/ui/notifications")
    [endpoint] = _rows(browser, "endpoints").values()
    assert endpoint.find_element(By.TAG_NAME, "th").text == HOSTILE and "webhook" in endpoint.text
    shown = browser.find_elements(By.CSS_SELECTOR, "#deliveries tbody tr")
    assert len(shown) == len(deliveries)
    assert {r.find_element(By.CLASS_NAME, "badge").text for r in shown} == {"delivered"}
    assert {r.find_element(By.CLASS_NAME, "badge").get_attribute("class") for r in shown} == {"badge state-delivered"}
    assert all(d["endpoint_id"] in browser.find_element(By.ID, "deliveries").text for d in deliveries)
    _shots(browser, "notifications", tmp_path)


@pytest.mark.parametrize("path", ["/ui/policies", "/ui/policy?id=hostile", "/ui/expiring", "/ui/notifications",
                                  "/ui/tag?tag=" + quote(HOSTILE, safe=""),
                                  "/ui/drift?tag=" + quote(HOSTILE, safe="")])
def test_hostile_policy_text_and_tags_render_as_text(ui_server, browser, path):
    server, _ = ui_server
    browser.get_log("performance")
    browser.get(server.url + path)
    time.sleep(0.3)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is how Selenium asks for a dialog
    if path.startswith(("/ui/tag", "/ui/drift")):  # no registry takes such a tag: the API's JSON error, as text
        answer = server.get(path)
        assert answer.status_code == 400 and answer.headers["content-type"] == "application/json"
        assert "<script>alert('x')</script>" in browser.find_element(By.TAG_NAME, "body").text
    else:
        policy = server.get(path).headers["content-security-policy"]
        assert "script-src 'none'" in policy and "form-action 'self'" in policy and "default-src 'none'" in policy
        text = browser.find_element(By.ID, "main").text
        assert "<script>alert('x')</script>" in text and "onerror=alert('img')>" in text
        assert "javascript:alert('link')" in text
    counts = browser.execute_script("return [document.scripts.length, document.images.length,"
                                    " document.querySelectorAll('[onerror]').length]")
    assert counts == [0, 0, 0]
    assert [url for url in requests_made(browser) if "/ui/pwned" in url] == []
