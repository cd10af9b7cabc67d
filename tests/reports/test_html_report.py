"""The HTML report (`gate --html`) in a real browser: headless Chromium from Debian through Selenium.

The reports come from real `ci-gate gate` runs on the example images (the same run writes the JSON
report the counts are checked against). The page is loaded from file://, as a CI artifact is opened;
screenshots at desktop (1280) and phone (390) widths are checked by their pixels (the verdict banner
is the verdict's colour, the page is not blank) and by element rectangles. A hostile finding
(`<script>`, `"><img onerror=…>`, a `javascript:` URL) must render as text: no dialog, no element,
no request (a real HTTP server on 127.0.0.1 counts requests; Chromium's performance log lists them).

Set CI_GATE_SCREENSHOTS=DIR to keep the screenshots (docs/images/ holds the ones docs/reports.md shows).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup
from report_samples import sample_analysis, sample_evaluation
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from ci_gate.model import AllowlistMatch, Finding, VulnerabilityDetail
from ci_gate.reports.html import render_html, safe_url
from tests.support.browser import keep_screenshot, requests_made, start_chromium
from tests.support.png import read_png
from tests.support.wheel import installed_copy

REPOSITORY = Path(__file__).resolve().parents[2]
STOP_RED = (164, 0, 29)
GO_GREEN = (27, 94, 32)
DESKTOP, PHONE = 1280, 390


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reports(images: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`ci-gate gate --html --json` on both example images; name → output folder."""
    out = tmp_path_factory.mktemp("html-reports")
    folders = {}
    for name, expected_exit in (("compliant", 0), ("noncompliant", 1)):
        folder = out / name
        folder.mkdir()
        arguments = [sys.executable, "-m", "ci_gate.cli", "gate", f"oci-dir:{images[name]}", "--policy", "builtin:dod",
                     "--vuln-db", str(images["vuln-db"]), "--tag", f"registry.example.com/acme/{name}:1",
                     "--dockerfile", f"examples/images/{name}/Dockerfile", "--comment", "off", "--no-cache",
                     "--html", str(folder / "report.html"), "--json", str(folder / "ci-gate.json")]
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "GITLAB_", "CI_"))}
        completed = subprocess.run(arguments, cwd=REPOSITORY, capture_output=True, text=True, env=environment,
                                   timeout=300)
        assert completed.returncode == expected_exit, completed.stdout + completed.stderr
        assert sorted(p.name for p in folder.iterdir()) == ["ci-gate.json", "report.html"]  # no temp files left
        folders[name] = folder
    return folders


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = start_chromium()
    try:
        yield driver
    finally:
        driver.quit()


class Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        Counter.hits.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def request_counter() -> Iterator[tuple[str, list[str]]]:
    """A real HTTP server on 127.0.0.1 that records every request: an XSS that makes a request shows here."""
    Counter.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Counter.hits
    finally:
        server.shutdown()
        server.server_close()


# --- helpers ---------------------------------------------------------------------------------------


def load(driver: webdriver.Chrome, path: Path, width: int, height: int = 900) -> None:
    driver.set_window_size(width, height)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    driver.get(path.as_uri())
    driver.get_log("performance")  # drop what came before; each test reads only its own page's log
    driver.get(path.as_uri())


def capture(driver: webdriver.Chrome, clip: dict[str, float] | None = None, scale: float = 0.25) -> bytes:
    """A PNG of the page (or of `clip`, in page coordinates), scaled down so the pixel checks stay quick."""
    width = driver.execute_script("return document.documentElement.clientWidth")
    box = clip or {"x": 0, "y": 0, "width": width, "height": driver.execute_script("return innerHeight")}
    result = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                               "clip": {**box, "scale": scale}})
    return base64.b64decode(result["data"])


def save_screenshot(driver: webdriver.Chrome, name: str, directory: Path) -> Path:
    """The first screen, what a reader sees on opening the page (kept when CI_GATE_SCREENSHOTS names a folder)."""
    height = driver.execute_script("return innerHeight")
    width = driver.execute_script("return document.documentElement.clientWidth")
    data = base64.b64decode(driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})["data"])
    path = directory / f"{name}.png"
    path.write_bytes(data)
    keep_screenshot(path)
    return path


def rect(driver: webdriver.Chrome, selector: str) -> dict[str, float]:
    return dict(driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect();"
        "return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height};", selector))


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS `rgb(…)` colours."""
    def luminance(colour: str) -> float:
        channels = [int(value) / 255 for value in re.findall(r"\d+", colour)[:3]]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    lighter, darker = sorted((luminance(first), luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def dominant(image_bytes: bytes) -> tuple[int, int, int]:
    colours = read_png(image_bytes).colours(step=1)
    return max(colours, key=lambda colour: colours[colour])


# --- the example images ----------------------------------------------------------------------------


def test_noncompliant_report_verdict_counts_and_links(reports, browser, tmp_path):
    page = reports["noncompliant"] / "report.html"
    document = json.loads((reports["noncompliant"] / "ci-gate.json").read_text())
    load(browser, page, DESKTOP)
    headline = browser.find_element(By.CSS_SELECTOR, "#verdict h1")
    assert headline.text == "STOP: registry.example.com/acme/noncompliant:1"
    # The verdict is the first thing on the page: the banner starts at the top.
    assert rect(browser, "#verdict")["y"] < 40
    findings = document["evaluations"][0]["details"]["findings"]
    stops = sum(1 for finding in findings if finding["effective_action"] == "stop")
    warns = sum(1 for finding in findings if finding["effective_action"] == "warn")
    shown_stop = int(browser.find_element(By.ID, "count-stop").text.split()[0])
    assert shown_stop == stops and shown_stop > 0
    assert browser.find_element(By.ID, "count-warn").text == f"{warns} WARN"

    # Every in-page link lands on a section that exists; the vulnerability ids link to their advisories.
    for link in browser.find_elements(By.CSS_SELECTOR, "nav a"):
        target = link.get_attribute("href").split("#", 1)[1]
        assert browser.find_elements(By.ID, target), target
    advisories = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#vulnerabilities a")}
    assert advisories["CVE-2025-26465"] == "https://nvd.nist.gov/vuln/detail/CVE-2025-26465"
    assert "Fixed in" in browser.find_element(By.ID, "vulnerabilities").text
    assert "1:9.2p1-2+deb12u5" in browser.find_element(By.ID, "vulnerabilities").text

    # STOP rows carry their fix; the compliance view says FAIL for the SSH guide section.
    stop_rows = browser.find_elements(By.CSS_SELECTOR, "#stop-table tbody tr")
    assert len(stop_rows) == int(re.search(r"(\d+) STOP finding", browser.find_element(By.ID, "stop-heading").text)[1])
    ssh = next(row for row in stop_rows if "SSH server" in row.text)
    assert "EXPOSE 8080" in ssh.find_element(By.TAG_NAME, "pre").text
    compliance = {row.find_element(By.TAG_NAME, "th").text.split("\n")[0]: row.text
                  for row in browser.find_elements(By.CSS_SELECTOR, "#compliance-table tbody tr")}
    assert "FAIL" in compliance["DISA CIDG 2.1"] and "sshd" in compliance["DISA CIDG 2.1"]

    # The layer chart: one bar per layer, the widths in the ratio of the layer sizes.
    sizes = [int(size) for size in re.findall(r"(\d+) B", " ".join(
        row.find_elements(By.TAG_NAME, "td")[1].text for row in browser.find_elements(By.CSS_SELECTOR,
                                                                                       "#layers-table tbody tr")))]
    bars = [float(bar.get_attribute("width")) for bar in browser.find_elements(By.CSS_SELECTOR, "#layer-chart rect")]
    assert len(bars) == len(sizes) == 2
    assert bars[1] / bars[0] == pytest.approx(sizes[1] / sizes[0], rel=0.02)

    # The style sheet's CSP hash is right: the banner is styled (a wrong hash leaves it unstyled).
    banner = capture(browser, rect(browser, "#verdict"))
    assert dominant(banner) == STOP_RED
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    assert all(url.startswith("file://") for url in requests_made(browser))

    # Contrast: every badge, the banner and body text at least 4.5:1 (WCAG AA) against their background.
    for selector in ("#verdict h1", "#verdict p", ".badge.STOP", ".badge.WARN", ".badge.FAIL", ".badge.PASS",
                     "td", ".muted", "nav a"):
        for element in browser.find_elements(By.CSS_SELECTOR, selector)[:3]:
            foreground, background = browser.execute_script(
                "let e = arguments[0], c = getComputedStyle(e).color, b;"
                "while (e && (b = getComputedStyle(e).backgroundColor) === 'rgba(0, 0, 0, 0)') e = e.parentElement;"
                "return [c, b || 'rgb(255, 255, 255)'];", element)
            assert contrast(foreground, background) >= 4.5, (selector, foreground, background)

    # Keyboard: the first Tab lands on the skip link, which leads to the report.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to the report" and focused.get_attribute("href").endswith("#main")
    assert focused.rect["x"] >= 0  # visible when focused

    # Printed (an assessor's PDF): no section links, the verdict in black on white, links spelled out.
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert browser.execute_script("return getComputedStyle(document.querySelector('nav')).display") == "none"
        assert browser.execute_script(
            "return getComputedStyle(document.querySelector('#verdict')).backgroundColor") == "rgb(255, 255, 255)"
        advisory = browser.execute_script(
            "return getComputedStyle(document.querySelector('#vulnerabilities a'), '::after').content")
        assert "https://nvd.nist.gov/vuln/detail/CVE-2025-" in advisory
        pdf = base64.b64decode(browser.execute_cdp_cmd("Page.printToPDF", {})["data"])
        assert pdf.startswith(b"%PDF") and len(pdf) > 20_000
    finally:
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_screenshots_render_at_desktop_and_phone_widths(reports, browser, tmp_path):
    for name, colour in (("noncompliant", STOP_RED), ("compliant", GO_GREEN)):
        for width in (DESKTOP, PHONE):
            load(browser, reports[name] / "report.html", width)
            saved = save_screenshot(browser, f"html-report-{name}-{width}", tmp_path)
            image = read_png(capture(browser))
            assert len(image.colours()) > 20, f"{name} at {width}px looks blank"
            assert saved.stat().st_size > 10_000
            # Nothing wider than the screen: a phone reader scrolls down, never sideways.
            assert browser.execute_script("return document.documentElement.scrollWidth") <= width
            verdict = rect(browser, "#verdict")
            assert verdict["y"] < 40 and verdict["width"] <= width
            assert dominant(capture(browser, verdict)) == colour
            for region in ("#stop", "#warn", "#vulnerabilities", "#compliance", "#layers", "#image"):
                box = rect(browser, region)
                assert box["height"] > 20 and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, region
            if width == PHONE:
                # Tables become one card per row: the header row is moved off-screen, each cell says its label.
                header = rect(browser, "#compliance-table thead")
                assert header["x"] < -1000
                assert browser.find_element(By.CSS_SELECTOR, "#compliance-table td[data-label=Status]").is_displayed()
    load(browser, reports["compliant"] / "report.html", DESKTOP)
    assert browser.find_element(By.CSS_SELECTOR, "#verdict h1").text == "GO: registry.example.com/acme/compliant:1"
    assert browser.find_element(By.ID, "count-stop").text == "0 STOP"
    assert browser.find_element(By.ID, "stop").text.endswith("No STOP findings.")


def test_noncompliant_report_is_small(reports):
    page = reports["noncompliant"] / "report.html"
    assert page.stat().st_size < 200_000
    text = page.read_text()
    assert "bPxRfiCYEXAMPLEKEY" not in text and "IOSFODNN7EXAMPLE" not in text  # the planted secret
    assert "<script" not in text and "http://" not in text.split("<body>")[0]  # nothing to load, nothing to run


# --- hostile text ---------------------------------------------------------------------------------


def hostile_report(directory: Path, server: str) -> Path:
    """The sample evaluation with attacker-controlled text in every place an image or feed can set."""
    script = f"<script>fetch('{server}/script');alert('script')</script>"
    image_tag = f'"><img src="{server}/img" onerror="alert(\'img\')">'
    evaluation = sample_evaluation()
    findings = list(evaluation.findings)
    findings[0] = dataclasses.replace(findings[0], message=f"{script} {image_tag}", trigger_id=image_tag)
    findings.append(Finding(
        gate="vulnerabilities", trigger="package", trigger_id=f"CVE-2099-1{image_tag}", action="STOP",
        message=f"critical {script}", rule_id="hostile-rule",
        vulnerability=VulnerabilityDetail(id=f"CVE-2099-0001{script}", severity="critical",
                                          fixed_versions=(image_tag,), package_name=f"pkg{script}",
                                          package_version="1", url="javascript:alert('link')")))
    findings.append(Finding(
        gate="dockerfile", trigger="instruction", trigger_id="x", action="WARN", message="allowlisted",
        rule_id="hostile-allow", allowlisted=AllowlistMatch("list", "list", f"item{image_tag}",
                                                            reason=script, approved_by=image_tag,
                                                            expires_on="2099-01-01")))
    evaluation = dataclasses.replace(evaluation, findings=tuple(findings), policy_name=script)
    path = directory / "hostile.html"
    path.write_text(render_html(evaluation, sample_analysis()), encoding="utf-8")
    return path


def test_hostile_finding_text_renders_as_text(browser, tmp_path, request_counter):
    server, hits = request_counter
    page = hostile_report(tmp_path, server)
    load(browser, page, DESKTOP)
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - reading it is how Selenium asks for a dialog
    counts = browser.execute_script(
        "return [document.scripts.length, document.images.length, document.querySelectorAll('[onerror]').length,"
        " [...document.links].filter(a => !/^(https?:|file:)/.test(a.href)).length]")
    assert counts == [0, 0, 0, 0]
    body = browser.find_element(By.TAG_NAME, "body").text
    assert f"<script>fetch('{server}/script');alert('script')</script>" in body  # shown, as text
    assert f'"><img src="{server}/img"' in body
    vulnerability = next(cell for cell in browser.find_elements(By.CSS_SELECTOR, "#vulnerabilities tbody th")
                         if cell.text.startswith("CVE-2099-0001<script>"))
    assert vulnerability.find_elements(By.TAG_NAME, "a") == []  # a javascript: URL is no link
    assert hits == []
    assert [url for url in requests_made(browser) if not url.startswith("file://")] == []


def test_report_has_a_strict_content_security_policy():
    page = render_html(sample_evaluation(), sample_analysis())
    policy = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', page)
    assert policy is not None
    directives = dict(part.strip().split(" ", 1) for part in html.unescape(policy[1]).split(";"))
    assert directives["default-src"] == "'none'" and directives["script-src"] == "'none'"
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style[1].encode()).digest()).decode()
    assert directives["style-src"] == f"'sha256-{digest}'"
    assert page.count("<style>") == 1 and " style=" not in page  # attributes would need 'unsafe-hashes'


@pytest.mark.parametrize(("url", "expected"), [
    ("https://nvd.nist.gov/vuln/detail/CVE-1", "https://nvd.nist.gov/vuln/detail/CVE-1"),
    ("javascript:alert(1)", ""), (" JavaScript:alert(1)", ""), ("data:text/html,x", ""),
    ("//evil.example/x", ""), ("/relative", ""), ("https://a.example/x y", ""), ("http:///nohost", ""),
])
def test_links_only_to_http_urls(url, expected):
    assert safe_url(url) == expected


def test_the_wheel_ships_the_template_compiled_and_it_renders_the_same(tmp_path):
    """The wheel holds the template compiled by its build (build_hooks.py: a gate would spend longer compiling
    the template than rendering it): it comes from the template as it is now, an installed ci-gate renders
    from it, and the page is the one the template renders. A source checkout compiles the template."""
    from ci_gate.reports import html as report
    from ci_gate.reports import html_environment

    installed = installed_copy(tmp_path)
    compiled_file = installed / "ci_gate" / "reports" / "html_compiled.py"
    assert compiled_file.read_text("utf-8") == html_environment.compiled_source()
    assert not (REPOSITORY / "ci_gate" / "reports" / "html_compiled.py").exists()  # generated, never checked in

    render = ("import json\n"
              "from report_samples import sample_analysis, sample_evaluation\n"
              "from ci_gate.reports import html as report\n"
              "page = report.render_html(sample_evaluation(), sample_analysis())\n"
              "print(json.dumps({'page': page, 'template': report._template().filename}))\n")
    completed = subprocess.run([sys.executable, "-c", render], capture_output=True, text=True, check=True, timeout=120,
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": f"{installed}:{Path(__file__).parent}"})
    from_wheel = json.loads(completed.stdout)
    assert from_wheel["template"] == str(compiled_file)  # what render_html used there: the compiled one

    page = render_html(sample_evaluation(), sample_analysis())
    context = report.html_context(sample_evaluation(), sample_analysis())
    csp = html.unescape(re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)[1])
    from_source = html_environment.html_environment().get_template(html_environment.TEMPLATE_NAME).render(
        **context, css=Markup(report._style()[0]), csp=csp)
    assert page == from_source == from_wheel["page"]
    assert report._template().filename == str(html_environment.TEMPLATES / html_environment.TEMPLATE_NAME)
