"""The `archdsl viz` HTML page in a real headless Chromium: it loads from a file with no
console errors and no network; what it draws for a set of open scopes is what Python draws
for the same set (the same dot text, and in the laid-out SVG the same nodes and edges); a
click on a closed scope opens it, a click on an open scope's frame title closes it, and
scopes opened one after the other stay open together.

Needs the system's chromium and chromium-driver (apt-get install chromium chromium-driver)
and selenium (the `test` extra); no browser is downloaded.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from archdsl.diagram import drawing, render
from archdsl.diagram.dot import draw
from archdsl.diagram.scopes import with_only_children
from archdsl.diagram.view import build_view

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_S = 20  # a drawing is laid out in the browser; generous for a loaded 2-core machine


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


def _rendered(driver) -> int:
    """How many drawings the page has laid out (page.js counts them)."""
    return int(driver.execute_script("const d = document.getElementById('drawing');"
                                     "return d ? Number(d.dataset.rendered || 0) : 0;"))


def _after(driver, action, loads: bool = False) -> None:
    """Do `action` (a click, a call; `loads`: a new page) and wait until the page has laid
    out the drawing it asks for."""
    from selenium.webdriver.support.ui import WebDriverWait

    before = 0 if loads else _rendered(driver)
    action()
    WebDriverWait(driver, WAIT_S).until(lambda d: _rendered(d) > before)


def _open_page(driver, tmp_path, spec, depth=2) -> tuple:
    facts, opened = drawing(spec, depth=depth)
    page = tmp_path / f"{facts.compiled.name}.html"
    page.write_bytes(render(facts, opened, ".html"))
    _after(driver, lambda: driver.get(page.as_uri()), loads=True)
    return facts, opened


def _show(driver, opened) -> None:
    _after(driver, lambda: driver.execute_script("window.archdslViz.show(arguments[0]);", sorted(opened)))


def _drawn(driver) -> tuple[set[str], set[tuple[str, str]]]:
    """Node keys and (src, dst) edges of the laid-out SVG on the page now."""
    nodes, titles = driver.execute_script(
        "const q = s => Array.from(document.querySelectorAll('#drawing ' + s));"
        "return [q('g.node').map(g => g.id.replace(/^n:/, '')),"
        "        q('g.edge').map(g => g.querySelector('title').textContent)];")
    return set(nodes), {tuple(t.split("->")) for t in titles}


def _opened_now(driver) -> frozenset[str]:
    return frozenset(driver.execute_script("return window.archdslViz.opened();"))


def _assert_same_as_python(driver, facts, opened) -> str:
    """The page's dot text for `opened` is Python's, and its SVG has the nodes and edges of
    Python's view (the page must show `opened` now). Returns the text."""
    view = build_view(facts.graph, facts.tree, frozenset(opened))
    text = driver.execute_script("return window.archdslViz.drawingText(arguments[0]);", sorted(opened))
    assert text == draw(facts, view).source
    nodes, edges = _drawn(driver)
    assert nodes == set(view.items)
    assert edges == {(e.src, e.dst) for e in view.edges}
    return text


def _no_errors(driver) -> None:
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def _clicked(facts, opened, scope) -> frozenset[str]:
    """The open scopes after a click on the closed `scope` (page.js: openScope)."""
    return opened | {*facts.tree.ancestors(scope), *with_only_children(facts.tree, scope)}


@pytest.mark.parametrize("spec", ["resnet18", "deeplabv3_mobilevit_xxs", "examples/misaligned_shortcut.arch"])
def test_page_draws_what_python_draws(browser, tmp_path, spec):
    """Folds, residual merges and taps (ResNet-18); tokens, attention's q/k/v and concats
    (DeepLabV3 MobileViT); a checker's warning (the misaligned shortcut): the first view, two
    scopes opened independently, then a fold opened too, everything open, everything closed."""
    facts, opened = _open_page(browser, tmp_path, str(ROOT / spec) if spec.endswith(".arch") else spec)
    assert _opened_now(browser) == opened
    states = [opened]
    closed = [key for key, item in build_view(facts.graph, facts.tree, opened).items.items() if item.kind == "scope"]
    if len(closed) >= 2:  # two closed scopes of the first view, each opened on its own
        states.append(_clicked(facts, _clicked(facts, opened, closed[0]), closed[-1]))
        folds = [i for i in build_view(facts.graph, facts.tree, states[-1]).items.values() if i.kind == "fold"]
        if folds:
            states.append(_clicked(facts, states[-1], folds[0].run.items[0]))
    states += [frozenset({"", *facts.tree.scopes()}), frozenset({""})]
    kinds, texts = set(), []
    for i, state in enumerate(states):
        if i:
            _show(browser, state)
        texts.append(_assert_same_as_python(browser, facts, state))
        kinds |= {item.kind for item in build_view(facts.graph, facts.tree, state).items.values()}
    if spec == "resnet18":
        assert kinds == {"op", "scope", "fold", "output"}  # every kind of drawn item was compared
    if spec.startswith("examples/"):
        assert "xlabel=" in texts[-2]  # the warning, drawn at the op it is about
    _no_errors(browser)


def test_clicks_open_and_close_scopes_and_keep_them_open(browser, tmp_path):
    from selenium.webdriver.common.by import By

    def click(element_id):
        _after(browser, browser.find_element(By.ID, element_id).click)

    facts, _ = _open_page(browser, tmp_path, "resnet50")
    first, _ = _drawn(browser)
    assert {"stem.conv1", "stages.0", "stages.2", "head.fc"} <= first

    # a click on the closed stage 2 opens it: its blocks (one fold, x 6) replace it
    click("n:stages.2")
    opened_stage, _ = _drawn(browser)
    assert "stages.2" not in opened_stage and "stages.2.blocks.0-5" in opened_stage
    assert {"stages.0", "stages.3"} <= opened_stage  # the other stages stay closed

    # a click on the fold opens its first block down to single ops
    click("n:stages.2.blocks.0-5")
    ops, _ = _drawn(browser)
    assert {"stages.2.blocks.0.conv2", "stages.2.blocks.0.shortcut", "stages.2.blocks.5"} <= ops
    click("n:stages.2.blocks.0.shortcut")
    assert {"stages.2.blocks.0.shortcut.conv1", "stages.2.blocks.0.conv2"} <= _drawn(browser)[0]

    # another stage opened on its own: what was opened in stage 2 stays open
    click("n:stages.0")
    both, _ = _drawn(browser)
    assert {"stages.0.blocks.0-2", "stages.2.blocks.0.shortcut.conv1", "stages.2.blocks.5"} <= both
    _assert_same_as_python(browser, facts, _opened_now(browser))

    # a click on an open frame's title closes it again; stage 0 stays open
    title = browser.find_element(By.ID, "c:stages.2").find_element(By.TAG_NAME, "text")
    _after(browser, title.click)
    after_close, _ = _drawn(browser)
    assert "stages.2" in after_close and "stages.0.blocks.0-2" in after_close
    click("initial")  # the header's button: back to the first view
    assert _drawn(browser)[0] == first

    # hover text links back to the spec
    tip = browser.execute_script(
        "return document.getElementById('n:stem.maxpool1').querySelector('a').getAttribute('xlink:title');")
    assert "resnet.arch:" in tip and "maxpool(k=3, s=2, p=1)" in tip

    _no_errors(browser)
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(r => r.name);")
    assert resources == []  # nothing fetched: the page is self-contained
