"""The report's interactive replay in a real browser: Playwright for Python driving headless
Chromium on report.html opened from disk. The slider, play/pause, the step choice and a hover or
click on a sequence change what is drawn; the page logs no error. Screenshots go to the test's
temporary folder."""
import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("playwright")

from figure_helpers import tiny_run  # noqa: E402
from squareseq.figures.viewer_data import payload_json, viewer_payload  # noqa: E402
from squareseq.runs.page import write_report  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium():
    for path in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if path and Path(path).exists():
            return path
    pytest.skip("no Chromium found (Debian: apt-get install chromium); the browser tests need one")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A run folder's report.html with the replay of 8 recorded epochs (and no PNG: not needed)."""
    run = tiny_run(n_epochs=8, n_train=48, n_test=24)
    run_dir = tmp_path_factory.mktemp("run")
    history = run["history"]
    (run_dir / "metrics.json").write_text(json.dumps({"test": {"accuracy": 0.5}, "epochs": 8, **history.as_dict()}))
    (run_dir / "replay.json").write_text(payload_json(viewer_payload(run["snapshots"], history)))
    return write_report(run_dir)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    path = _chromium()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, report):
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(report.resolve().as_uri())
    page.locator("#sqv-replay canvas.sqv-plane").scroll_into_view_if_needed()
    yield page
    assert errors == []
    page.close()


def _state(page, key):
    return page.eval_on_selector("#sqv-replay", f"e => e.dataset.{key}")


def _plane_pixels(page):
    return page.eval_on_selector("#sqv-replay canvas.sqv-plane", "c => c.toDataURL()")


def test_slider_moves_the_drawn_epoch_and_step_choice_redraws(page, tmp_path):
    """Keys on the slider (Home, ArrowRight, End) set the epoch drawn; the canvas changes with it,
    and with the step chosen."""
    assert _state(page, "epoch") == "8" and _state(page, "step") == "4"
    last = _plane_pixels(page)
    page.screenshot(path=str(tmp_path / "epoch8.png"))
    slider = page.get_by_label("Epoch", exact=True)
    slider.focus()
    page.keyboard.press("Home")
    assert _state(page, "epoch") == "0" and _plane_pixels(page) != last
    page.keyboard.press("ArrowRight")
    assert _state(page, "epoch") == "1" and "epoch 1 of 8" in slider.get_attribute("aria-valuetext")
    page.screenshot(path=str(tmp_path / "epoch1.png"))
    before = _plane_pixels(page)
    page.get_by_label("Hidden state after step").select_option("0")
    assert _state(page, "step") == "1" and _plane_pixels(page) != before
    page.screenshot(path=str(tmp_path / "step1.png"))


def test_hover_and_click_show_a_sequence_and_its_probability(page, tmp_path):
    """Hovering over a point names its sequence and its probability; a click keeps it chosen."""
    x, y = page.evaluate("""() => {
        const v = window.squareseqReplay, f = v.frame(), p = v.point(v.data(v.index), v.epochs[v.index], 3, v.step);
        const box = v.plane.getBoundingClientRect(), s = box.width / Number(v.plane.dataset.w);
        return [box.left + f.x(p[0]) * s, box.top + f.y(p[1]) * s];
    }""")
    page.mouse.move(x, y)
    info = page.locator("#sqv-replay .sqv-info")
    assert "Sequence" in info.inner_text() and "P(clockwise) = " in info.inner_text()
    page.mouse.click(x, y)
    chosen = _state(page, "selected")
    assert chosen != ""
    page.mouse.move(5, 5)
    assert _state(page, "selected") == chosen and f"Sequence {int(chosen) + 1} " in info.inner_text()
    page.screenshot(path=str(tmp_path / "chosen.png"))


def test_play_advances_and_pause_stops(page):
    """Play runs through the epochs from the first; Pause holds the epoch shown."""
    play = page.locator("#sqv-replay .sqv-play")
    page.get_by_label("Epoch", exact=True).fill("0")
    play.click()
    assert _state(page, "playing") == "true" and play.get_attribute("aria-pressed") == "true"
    page.wait_for_function("() => Number(document.getElementById('sqv-replay').dataset.epoch) >= 2")
    play.click()
    held = _state(page, "epoch")
    assert _state(page, "playing") == "false"
    page.wait_for_timeout(350)
    assert _state(page, "epoch") == held


def test_a_live_viewer_follows_the_epochs_added(page, tmp_path):
    """A viewer started with no epoch (a live page) shows each epoch added while it follows the
    last one, and stays where it was sought while the epochs keep coming."""
    seen = page.evaluate("""() => {
        const data = JSON.parse(document.getElementById('sqv-replay-data').textContent);
        const root = document.createElement('div');
        root.id = 'live';
        document.body.appendChild(root);
        const records = data.epochs;
        data.epochs = [];
        data.losses = {train: [], val: []};
        const v = SquareseqViewer.create(root, data);
        const seen = [root.dataset.epoch];
        records.slice(0, 4).forEach(r => { v.addEpoch(r); seen.push(root.dataset.epoch); });
        v.seek(1);
        records.slice(4).forEach(r => v.addEpoch(r));
        seen.push(root.dataset.epoch, root.querySelector('.sqv-epoch').max);
        return seen;
    }""")
    assert seen == ["", "0", "1", "2", "3", "1", "8"]
    page.locator("#live").screenshot(path=str(tmp_path / "live.png"))
