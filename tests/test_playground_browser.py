"""squareseq playground in a real browser: Chromium (the system's, driven by Playwright) against a
server on a free local port. The page trains, streams epochs, pauses, steps, keeps its settings
in the address, refuses a bad hidden size with a message on the page, and logs no console error.
Screenshots go to the test's temporary folder."""
import http.client
import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("starlette")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")

from squareseq.playground.server import build_app  # noqa: E402

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("SQUARESEQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = _free_port()
    config = uvicorn.Config(build_app(workers=2), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    for _ in range(500):
        if running.started:
            break
        time.sleep(0.01)
    assert running.started
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium at /usr/bin/chromium (set SQUARESEQ_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def _page(browser, url, problems):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(url)
    page.wait_for_selector("#f-hidden")
    return page


def _epoch(page) -> int:
    return int(page.evaluate("() => document.body.dataset.epoch || '-1'"))


def test_the_page_trains_streams_pauses_and_steps(server, browser, tmp_path):
    problems = []
    page = _page(browser, server + "/?epochs=400&cell=gru&hidden=3", problems)
    assert page.input_value("#f-cell") == "gru" and page.input_value("#f-hidden") == "3"  # the address's settings
    page.fill("#f-seed", "5")
    page.click("#train")
    page.wait_for_function("() => Number(document.body.dataset.epoch) >= 1", timeout=20_000)
    assert "seed=5" in page.url and "cell=gru" in page.url  # a link to this page reproduces the run
    page.wait_for_function("() => Number(document.body.dataset.epoch) >= 10", timeout=20_000)  # epochs advance
    page.screenshot(path=str(tmp_path / "playground-training.png"))
    page.click("#pause")
    page.wait_for_function("() => document.body.dataset.state === 'paused'", timeout=10_000)
    paused = _epoch(page)
    time.sleep(0.5)
    assert _epoch(page) == paused < 400
    page.fill("#new-lr", "0.05")
    page.click("#set-lr")
    page.click("#step")
    page.wait_for_function(f"() => Number(document.body.dataset.epoch) === {paused + 1}", timeout=10_000)
    assert "lr 0.05" in page.inner_text("#status")
    page.screenshot(path=str(tmp_path / "playground-paused.png"))
    page.click("#pause")  # resume
    page.wait_for_function(f"() => Number(document.body.dataset.epoch) >= {paused + 5}", timeout=20_000)
    page.click("#reset")
    page.wait_for_function("() => document.body.dataset.state === 'idle'", timeout=10_000)
    page.close()
    assert not problems, problems


def test_the_page_refuses_a_bad_hidden_size(server, browser, tmp_path):
    problems = []
    page = _page(browser, server + "/", problems)
    page.fill("#f-hidden", "999")
    page.click("#train")
    page.wait_for_function("() => document.getElementById('message').textContent.length > 0", timeout=10_000)
    message = page.inner_text("#message")
    assert "hidden size 999" in message and "[1, 64]" in message
    assert page.evaluate("() => document.getElementById('f-hidden').parentNode.classList.contains('bad')")
    assert page.evaluate("() => document.body.dataset.epoch") is None  # nothing trained
    page.screenshot(path=str(tmp_path / "playground-refused.png"))
    page.close()
    assert not problems, problems


def test_a_run_finishes_and_offers_its_folder(server, browser, tmp_path):
    problems = []
    page = _page(browser, server + "/?epochs=20&task=corner-direction&length=variable", problems)
    page.click("#train")
    page.wait_for_selector("#download:not([hidden])", timeout=30_000)
    assert _epoch(page) == 20
    with page.expect_download() as info:
        page.click("#download")
    info.value.save_as(tmp_path / "run.zip")
    assert (tmp_path / "run.zip").stat().st_size > 1000
    page.screenshot(path=str(tmp_path / "playground-done.png"))
    page.close()
    assert not problems, problems


def test_raw_paths_cannot_leave_the_static_folder(server):
    """Sent as written (a browser or httpx would normalise the dots away first)."""
    host, port = server.split("//")[1].split(":")
    for path in ("/static/../../../../etc/passwd", "/static/../playground/server.py", "/static/..%2f..%2fetc/passwd",
                 "/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd"):
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        connection.putrequest("GET", path, skip_host=False)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        connection.close()
        assert response.status in (400, 404), (path, response.status)
        assert "root:" not in body and "build_app" not in body, path


def test_own_sequences_train_in_the_page(server, browser, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    X = (rng.normal(size=(60, 12, 2)) + y[:, None, None]).astype(np.float32)
    np.savez(tmp_path / "mine.npz", X=X, y=y)
    problems = []
    page = _page(browser, server + "/?epochs=15", problems)
    page.set_input_files("#f-data-file", str(tmp_path / "mine.npz"))
    page.wait_for_function("() => document.getElementById('data-summary').textContent.length > 0", timeout=10_000)
    assert "60 sequences" in page.inner_text("#data-summary") and "3 classes" in page.inner_text("#data-summary")
    assert page.is_disabled("#f-task") and page.is_disabled("#f-noise") and page.is_enabled("#f-layout")
    page.click("#train")
    page.wait_for_selector("#download:not([hidden])", timeout=30_000)
    assert _epoch(page) == 15 and "data=" in page.url
    page.screenshot(path=str(tmp_path / "playground-own-data.png"))
    page.close()
    assert not problems, problems
