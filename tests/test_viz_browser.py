"""The `archdsl viz` HTML page in a real headless Chromium: it loads from a file with no
console errors and no network, a click on a closed scope opens it, a click on an open
scope's frame title closes it.

Needs the system's chromium and chromium-driver (apt-get install chromium chromium-driver)
and selenium (the `test` extra); no browser is downloaded.
"""
from __future__ import annotations

import shutil

import pytest

from archdsl.diagram import drawing, render

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _drawn_nodes(driver) -> set[str]:
    return set(driver.execute_script(
        "return Array.from(document.querySelectorAll('#drawing g.node')).map(g => g.id.replace(/^n:/, ''));"))


def test_page_loads_clean_and_scopes_open_and_close(browser, tmp_path):
    from selenium.webdriver.common.by import By

    facts, opened = drawing("resnet50", depth=2)
    page = tmp_path / "resnet50.html"
    page.write_bytes(render(facts, opened, ".html"))
    browser.get(page.as_uri())
    first = _drawn_nodes(browser)
    assert {"stem.conv1", "stages.0", "stages.2", "head.fc"} <= first

    # a click on the closed stage 2 opens it: its blocks (one fold, x 6) replace it
    browser.find_element(By.ID, "n:stages.2").click()
    opened_stage = _drawn_nodes(browser)
    assert "stages.2" not in opened_stage and "stages.2.blocks.0-5" in opened_stage
    assert {"stages.0", "stages.3"} <= opened_stage  # the other stages stay closed

    # a click on the fold opens its first block down to single ops
    browser.find_element(By.ID, "n:stages.2.blocks.0-5").click()
    ops = _drawn_nodes(browser)
    assert {"stages.2.blocks.0.conv2", "stages.2.blocks.0.shortcut", "stages.2.blocks.5"} <= ops
    browser.find_element(By.ID, "n:stages.2.blocks.0.shortcut").click()
    assert {"stages.2.blocks.0.shortcut.conv1", "stages.2.blocks.0.conv2"} <= _drawn_nodes(browser)

    # a click on an open frame's title closes it again
    title = browser.find_element(By.ID, "c:stages.2").find_element(By.TAG_NAME, "text")
    title.click()
    assert _drawn_nodes(browser) == first

    # hover text links back to the spec
    tip = browser.execute_script(
        "return document.getElementById('n:stem.maxpool1').querySelector('a').getAttribute('xlink:title');")
    assert "resnet.arch:" in tip and "maxpool(k=3, s=2, p=1)" in tip

    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name);")
    assert resources == []  # nothing fetched: the page is self-contained
