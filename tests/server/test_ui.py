"""The dashboard of `ci-gate serve` (/ui/) in headless Chromium: behind the API's authentication, the tags
with their current verdict, a tag's history across the digests it pointed to (one tag moved from one
image to another, for real, in the local registry), and hostile finding text shown as text."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests.support.browser import chromium_logged_in, keep_screenshot, requests_made
from tests.support.oci import push
from tests.support.registry import RegistryServer
from tests.support.serve import PASSWORD, ServeProcess, build_variant

HOSTILE = "javascript:alert('link')<script>alert('x')</script>\"><img src=/ui/pwned onerror=alert('img')>"
DOCKERFILE = f"FROM scratch\nUSER 1000\nRUN curl '{HOSTILE}' | sh\n"
"""pipe_to_shell quotes the RUN line (up to 120 characters) in its message."""


@pytest.fixture(scope="module")
def moved_tag(server: ServeProcess, registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[str, list[str]]:
    """`serve/ui:live` pushed and added twice, pointing at a new image the second time: (tag, digests oldest first)."""
    root = tmp_path_factory.mktemp("ui-images")
    digests = []
    tag = ""
    for index in (11, 12):
        image = build_variant(root / f"oci-{index}", index)
        tag = push(image, registry.host, "serve/ui:live")
        response = server.add_tag(tag, dockerfile=DOCKERFILE)
        assert response.status_code == 200, response.text
        assert server.wait_status(image.manifest_digest)["analysis_status"] == "analyzed"
        digests.append(image.manifest_digest)
    return tag, digests


@pytest.fixture(scope="module")
def browser(server: ServeProcess) -> Iterator:
    with chromium_logged_in("admin", PASSWORD) as driver:
        yield driver


def test_dashboard_needs_the_api_login_and_sends_a_strict_policy(server, moved_tag):
    assert requests.get(server.url + "/ui/", timeout=30).status_code == 401
    assert requests.get(server.url + "/ui/", auth=("admin", "wrong"), timeout=30).status_code == 401
    response = server.get("/ui/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "<script" not in response.text and " style=" not in response.text


def test_tags_with_their_verdict_and_a_tags_history(server, moved_tag, browser, tmp_path):
    tag, digests = moved_tag
    browser.set_window_size(1280, 900)
    browser.get(server.url + "/ui/")
    rows = {row.find_element(By.TAG_NAME, "th").text: row for row in browser.find_elements(By.CSS_SELECTOR,
                                                                                          "#tags tbody tr")}
    row = rows[tag]
    check = server.get(f"/v2/images/{digests[1]}/check", params={"tag": tag}).json()["evaluations"][0]
    assert row.find_element(By.CLASS_NAME, "badge").text == check["final_action"].upper()
    assert digests[1] in row.text and digests[0] not in row.text  # the digest the tag points to now
    stops = sum(1 for f in check["details"]["findings"] if f["effective_action"] == "stop")
    assert row.find_elements(By.TAG_NAME, "td")[1].text == str(stops)
    browser.save_screenshot(str(tmp_path / "serve-ui-index-1280.png"))
    keep_screenshot(tmp_path / "serve-ui-index-1280.png")

    row.find_element(By.TAG_NAME, "a").click()  # follow the tag to its history
    assert browser.current_url.startswith(server.url + "/ui/tag?tag=")
    assert tag in browser.find_element(By.TAG_NAME, "h1").text
    history = [r.find_element(By.TAG_NAME, "th").text for r in browser.find_elements(By.CSS_SELECTOR,
                                                                                      "#history tbody tr")]
    assert history == digests  # oldest first, both digests the tag pointed to
    dots = browser.find_elements(By.CSS_SELECTOR, "#history-chart circle")
    assert len(dots) == 2 and dots[1].get_attribute("class") == f"dot-{check['final_action'].upper()}"
    chart = browser.find_element(By.ID, "history-chart").rect
    assert chart["width"] > 300 and chart["height"] > 100
    for width in (1280, 390):
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
        browser.refresh()
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        assert browser.find_element(By.ID, "history-chart").rect["width"] <= width
        shot = tmp_path / f"serve-ui-tag-{width}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 5_000
        keep_screenshot(shot)


def test_hostile_finding_text_is_text_in_the_dashboard(server, moved_tag, browser):
    tag, _ = moved_tag
    browser.get_log("performance")
    browser.get(server.url + "/ui/tag?tag=" + requests.utils.quote(tag, safe=""))
    time.sleep(0.5)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is how Selenium asks for a dialog
    findings = browser.find_element(By.ID, "findings").text
    assert "<script>alert('x')</script>" in findings and "onerror=alert('img')>" in findings
    assert "javascript:alert('link')" in findings
    counts = browser.execute_script("return [document.scripts.length, document.images.length,"
                                    " document.querySelectorAll('[onerror]').length]")
    assert counts == [0, 0, 0]
    assert [url for url in requests_made(browser) if "/ui/pwned" in url] == []

