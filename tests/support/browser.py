"""Headless Chromium from Debian (`chromium`, `chromium-driver`) through Selenium, for the browser tests
of the HTML report and the serve dashboard: the browser, its request log and dialog checks."""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def start_chromium() -> webdriver.Chrome:
    """Headless, one device pixel per CSS pixel, with the browser and performance (network) logs kept."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--hide-scrollbars", "--force-device-scale-factor=1", "--no-first-run"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def requests_made(driver: webdriver.Chrome) -> list[str]:
    """URLs the page asked for since the log was last read, from Chromium's performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def keep_screenshot(path: Path) -> None:
    """Copy a screenshot to $CI_GATE_SCREENSHOTS when set (docs/images/ holds the ones the docs show)."""
    folder = os.environ.get("CI_GATE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(folder) / path.name)


@contextmanager
def chromium_logged_in(user: str, password: str) -> Iterator[webdriver.Chrome]:
    """`start_chromium`, sending basic auth with every request (serve's API login), quit afterwards."""
    driver = start_chromium()
    driver.execute_cdp_cmd("Network.enable", {})
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {token}"}})
    try:
        yield driver
    finally:
        driver.quit()
