"""squareseq playground without a browser: its settings and caps, its HTTP answers (4xx JSON, never a
traceback; nothing served outside the static folder), its socket protocol (stream, pause, step,
learning rate, one job per page, cancel on disconnect), the fair turns of its workers, and the CLI."""
import asyncio
import base64
import io
import json
import subprocess
import sys
import time
import warnings
import zipfile

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():  # starlette 1.x asks for httpx2; httpx is what it runs with here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from squareseq.cli.main import main  # noqa: E402
from squareseq.config import RunConfig  # noqa: E402
from squareseq.playground.server import STATIC, build_app  # noqa: E402
from squareseq.playground.session import Hub  # noqa: E402
from squareseq.playground.settings import SettingsError, parse_settings  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:starlette.*")

QUICK = {"epochs": "3", "n_train": "32", "n_test": "16"}
LONG = {"epochs": "1000", "n_train": "16", "n_test": "8", "batch": "16"}


@pytest.fixture
def client():
    with TestClient(build_app(workers=2, allowed_hosts=("testserver",))) as c:
        yield c


def _until(ws, kind, **match):
    """Messages up to and including the first of type ``kind`` whose fields match."""
    seen = []
    for _ in range(5000):
        message = ws.receive_json()
        seen.append(message)
        if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
            return seen
    raise AssertionError(f"no {kind} {match} in {len(seen)} messages")


# -- settings ----------------------------------------------------------------------------------

def test_default_settings_are_the_tutorials_run():
    config, texts = parse_settings({})
    assert config == RunConfig()
    assert texts["hidden"] == "2" and texts["cell"] == "rnn" and texts["length"] == "fixed"


def test_settings_set_their_config_fields():
    config, _ = parse_settings({"task": "corner-direction", "length": "variable", "cell": "gru", "hidden": "8",
                                "lr": "0.05", "batch": "32", "seed": "7", "noise": "0.2", "epochs": "12"})
    assert (config.task, config.variable_len, config.model, config.hidden_dim) == ("corner-direction", True, "gru", 8)
    assert (config.lr, config.batch_size, config.seed, config.noise, config.epochs) == (0.05, 32, 7, 0.2, 12)


@pytest.mark.parametrize("values,field,words", [
    ({"hidden": "65"}, "hidden", "[1, 64]"),
    ({"hidden": "4096"}, "hidden", "range"),
    ({"epochs": "1001"}, "epochs", "[1, 1000]"),
    ({"n_train": "100000"}, "n_train", "[2, 4096]"),
    ({"hidden": "two"}, "hidden", "an integer"),
    ({"lr": "nan"}, "lr", "finite"),
    ({"lr": "-1"}, "lr", "range"),
    ({"cell": "conv1d"}, "cell", "rnn, gru, lstm"),
    ({"task": "up"}, "task", "direction"),
    ({"path": "/etc/passwd"}, "path", "unknown setting"),
    ({"seed": "1" * 100}, "seed", "at most 64"),
    ({"hidden": True}, "hidden", "string or a number"),
])
def test_bad_settings_are_refused_naming_the_setting(values, field, words):
    with pytest.raises(SettingsError) as info:
        parse_settings(values)
    assert info.value.field == field and words in str(info.value) and "\n" not in str(info.value)


# -- HTTP --------------------------------------------------------------------------------------

def test_page_and_fields(client):
    page = client.get("/")
    assert page.status_code == 200 and "playground.js" in page.text
    assert page.headers["x-frame-options"] == "DENY" and "default-src 'self'" in page.headers["content-security-policy"]
    names = [f["name"] for f in client.get("/api/fields").json()["fields"]]
    assert names[:5] == ["task", "noise", "length", "cell", "hidden"]
    assert client.get("/static/playground.js").status_code == 200


def test_check_answers_400_json_for_bad_settings(client):
    good = client.get("/api/check", params={"hidden": "8", "cell": "lstm"})
    assert good.status_code == 200 and good.json()["settings"]["hidden"] == "8"
    for params, field in (({"hidden": "65"}, "hidden"), ({"batch": "0"}, "batch"), ({"x": "1"}, "x")):
        bad = client.get("/api/check", params=params)
        assert bad.status_code == 400 and bad.headers["content-type"] == "application/json"
        assert bad.json()["field"] == field and "Traceback" not in bad.text


@pytest.mark.parametrize("path", [
    "/static/%2e%2e/playground/server.py",
    "/static/..%2fplayground%2fserver.py",
    "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc/passwd",
    "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%5cplayground%5cserver.py",
    "/static//etc/passwd",
    "/static/%00",
    "/etc/passwd",
])
def test_nothing_outside_the_static_folder_is_served(client, path):
    assert (STATIC.parent / "playground" / "server.py").exists()  # what the first paths aim at is there
    response = client.get(path)
    assert response.status_code in (400, 404)
    assert "build_app" not in response.text and "root:" not in response.text and "Traceback" not in response.text


def test_unknown_routes_answer_json_404(client):
    response = client.get("/admin")
    assert response.status_code == 404 and response.json() == {"error": "not found"}
    assert client.post("/api/check").status_code == 405
    assert client.get("/download/nothing").status_code == 404


# -- the socket --------------------------------------------------------------------------------

def test_training_streams_every_epoch_then_offers_the_run(client, tmp_path):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "settings": QUICK})
        messages = _until(ws, "done")
    kinds = [m["type"] for m in messages]
    assert kinds.index("meta") < kinds.index("epoch")
    epochs = [m for m in messages if m["type"] == "epoch"]
    assert [m["epoch"] for m in epochs] == [0, 1, 2, 3]
    meta = next(m for m in messages if m["type"] == "meta")
    payload = meta["payload"]  # the report viewer's payload, without epochs yet
    assert payload["meta"]["format"] == "squareseq-viewer" and payload["epochs"] == []
    assert payload["sequences"]["n"] == len(payload["sequences"]["labels"]) == 16 and meta["epochs"] == 3
    first = epochs[1]
    n_steps = len(payload["meta"]["steps"])
    assert len(base64.b64decode(first["hidden"])) == 16 * n_steps * 2 * 2  # int16 (x, y) per sequence and step
    assert epochs[0]["train_loss"] is None and first["train_loss"] > 0 and 0 <= first["accuracy"] <= 1
    assert all(m["line"] is None or len(m["line"]) == 4 for m in epochs)
    # the run is squareseq's own: the same losses as build_trainer + train
    from squareseq.runs.experiment import build_trainer

    trainer, _ = build_trainer(parse_settings(QUICK)[0], threads=1)
    trainer.train(3, seed=42)
    assert [m["train_loss"] for m in epochs[1:]] == [float(f"{v:.5g}") for v in trainer.losses]
    archive = client.get(messages[-1]["download"])
    assert archive.status_code == 200 and archive.headers["content-type"] == "application/zip"
    zipfile.ZipFile(io.BytesIO(archive.content)).extractall(tmp_path)
    run = tmp_path / "playground-run"
    assert {"checkpoint.pt", "history.csv", "metrics.json", "settings.json"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 3
    assert main(["evaluate", str(run)]) == 0  # a run folder the CLI reads


def test_bad_messages_get_an_error_not_a_disconnect(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "settings": {"hidden": "65"}})
        error = ws.receive_json()
        assert error["type"] == "error" and error["field"] == "hidden" and "64" in error["message"]
        for text, words in (("not json", "not JSON"), ("[1]", "\"type\""), ('{"type": "fly"}', "unknown"),
                            ('{"type": "pause"}', "cannot pause while idle"), ("x" * 20000, "at most"),
                            ('{"type": "start", "settings": 3}', "object")):
            ws.send_text(text)
            message = ws.receive_json()
            assert message["type"] == "error" and words in message["message"], (text[:20], message)
        ws.send_json({"type": "start", "settings": QUICK})  # still serving
        assert _until(ws, "done")[-1]["epoch"] == 3


def test_pause_step_and_learning_rate(client):
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "settings": LONG})
        _until(ws, "state", state="running")
        ws.send_json({"type": "lr", "lr": "0.5"})
        assert _until(ws, "error")[-1]["field"] == "lr"  # only while paused
        ws.send_json({"type": "start", "settings": QUICK})
        assert "one job per page" in _until(ws, "error")[-1]["message"]
        ws.send_json({"type": "pause"})
        paused = _until(ws, "state", state="paused")[-1]
        ws.send_json({"type": "lr", "lr": "0.5"})
        assert _until(ws, "state", state="paused")[-1]["lr"] == 0.5
        ws.send_json({"type": "lr", "lr": "1e9"})
        assert _until(ws, "error")[-1]["field"] == "lr"
        ws.send_json({"type": "step"})
        stepped = _until(ws, "state", state="paused")
        records = [m for m in stepped if m["type"] == "epoch"]
        assert [m["epoch"] for m in records] == [paused["epoch"] + 1] and records[0]["lr"] == 0.5
        ws.send_json({"type": "resume"})
        _until(ws, "epoch", epoch=paused["epoch"] + 3)
        ws.send_json({"type": "reset"})
        _until(ws, "state", state="idle")


def test_a_closed_page_cancels_its_job(client):
    hub = client.app.state.hub
    with client.websocket_connect("/ws") as ws:
        ws.send_json({"type": "start", "settings": LONG})
        _until(ws, "epoch", epoch=2)
        (job,) = hub.jobs
    for _ in range(500):
        if hub.pages == 0 and job.cancelled.is_set() and not job.busy:
            break
        time.sleep(0.02)
    assert job.cancelled.is_set() and not hub.jobs and hub.pages == 0
    stopped = job.epoch
    time.sleep(0.3)
    assert job.epoch == stopped < 1000


def test_another_sites_page_cannot_open_the_socket(client):
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect("/ws", headers={"origin": "http://evil.example"}) as ws:
            ws.receive_json()
    with client.websocket_connect("/ws", headers={"origin": "http://testserver"}) as ws:
        ws.send_json({"type": "pause"})
        assert ws.receive_json()["type"] == "error"


def test_only_local_host_names_are_answered():
    """A page served on 127.0.0.1 answers to this machine's names only (no DNS rebinding)."""
    app = build_app(workers=1)
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/").status_code == 200
    with TestClient(app, base_url="http://localhost:8000") as local:
        assert local.get("/api/fields").status_code == 200
    with TestClient(app, base_url="http://rebound.example:8000") as other:
        assert other.get("/").status_code == 400 and other.get("/api/fields").status_code == 400
        with pytest.raises(WebSocketDisconnect):
            with other.websocket_connect("/ws") as ws:  # TestClient's sockets ask for "testserver"
                ws.receive_json()


def test_pages_take_turns_epoch_by_epoch():
    """With one worker, two pages' epochs alternate: neither waits for the other to finish."""
    order = []

    async def page(name):
        for _ in range(4):
            await hub.run(lambda: order.append(name) or time.sleep(0.01))

    async def both():
        await asyncio.gather(page("a"), page("b"))

    hub = Hub(workers=1)
    try:
        asyncio.run(both())
    finally:
        hub.close()
    assert order == ["a", "b"] * 4


# -- the command line ----------------------------------------------------------------------------

def test_cli_refuses_bad_options_and_explains_a_missing_extra(monkeypatch, capsys):
    assert main(["playground", "--port", "70000"]) == 2
    assert "0-65535" in capsys.readouterr().err
    import squareseq.playground as playground

    monkeypatch.setattr(playground, "available", lambda: False)
    assert main(["playground", "--no-browser"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'squareseq[playground]'" in err and len(err.strip().splitlines()) == 1


def test_serve_warns_off_localhost_and_opens_the_browser(monkeypatch, capsys):
    import uvicorn

    import squareseq.playground.serve as serve_module

    opened, bound = [], []

    def fake_run(self):
        bound.append((self.config.host, self.config.port))
        self.started = True

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    monkeypatch.setattr(serve_module.webbrowser, "open", opened.append)
    serve_module.serve("0.0.0.0", 8765, open_browser=True, workers=1)
    for _ in range(100):
        if opened:
            break
        time.sleep(0.02)
    captured = capsys.readouterr()
    assert "warning: listening on 0.0.0.0" in captured.err and opened == ["http://127.0.0.1:8765/"]
    assert bound == [("0.0.0.0", 8765)]
    serve_module.serve("127.0.0.1", 8766, open_browser=False, workers=1)
    assert "warning" not in capsys.readouterr().err and bound[-1] == ("127.0.0.1", 8766) and len(opened) == 1


def test_help_loads_neither_torch_nor_the_server():
    code = ("import sys, contextlib, io\nfrom squareseq.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n        main(['playground', '--help'])\n    except SystemExit:\n        pass\n"
            "assert '--no-browser' in out.getvalue()\n"
            "print(sorted(m for m in ('torch', 'starlette', 'uvicorn') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- own sequences -------------------------------------------------------------------------------

def _npz(n=40, length=10, features=2, seed=0, **extra) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = (rng.normal(size=(n, length, features)) + y[:, None, None]).astype(np.float32)
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y, **extra)
    return buffer.getvalue()


def test_own_sequences_upload_and_train(client):
    answer = client.post("/api/upload", content=_npz())
    assert answer.status_code == 200, answer.text
    token, summary = answer.json()["data"], answer.json()["summary"]
    assert summary == {"sequences": 40, "shape": [40, 10, 2], "classes": 2, "test_set": False}
    assert client.get("/api/check", params={"data": token, "task": "corner-direction"}).status_code == 200
    with client.websocket_connect("/ws") as ws:  # the squares' settings do not apply, and are left out
        ws.send_json({"type": "start", "settings": {"data": token, "epochs": "2", "cell": "lstm", "hidden": "3",
                                                    "noise": "0.5", "layout": "NLF"}})
        messages = _until(ws, "done")
    meta = next(m for m in messages if m["type"] == "meta")
    assert meta["data"]["source"] != "generated" and meta["payload"]["meta"]["steps"] == [1, 3, 5, 6, 8, 10]
    assert [m["epoch"] for m in messages if m["type"] == "epoch"] == [0, 1, 2]


@pytest.mark.parametrize("body,status,words", [
    (b"not a zip file", 400, "npz"),
    (_npz(n=8193, length=2, features=1), 400, "at most 8192"),
    (_npz(n=4, length=513, features=1), 400, "at most 512 steps"),
    (b"\0" * (8 * 1024 * 1024 + 1), 413, "larger than"),
])
def test_bad_uploads_are_refused(client, body, status, words):
    answer = client.post("/api/upload", content=body)
    assert answer.status_code == status and answer.json()["field"] == "data"
    assert words in answer.json()["error"] and "/tmp" not in answer.json()["error"], answer.json()
    assert not client.app.state.hub.uploads.files


def test_pickled_uploads_are_refused(client):
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, X=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    answer = client.post("/api/upload", content=buffer.getvalue())
    assert answer.status_code == 400 and "Traceback" not in answer.text


def test_an_unknown_upload_token_is_refused(client):
    for token in ("x" * 22, "../../etc/passwd", "a/b"):
        answer = client.get("/api/check", params={"data": token})
        assert answer.status_code == 400 and answer.json()["field"] == "data"


def test_pages_past_the_cap_are_told_to_close_one(client, monkeypatch):
    import squareseq.playground.server as server

    monkeypatch.setattr(server, "MAX_PAGES", 1)
    with client.websocket_connect("/ws") as first:
        with client.websocket_connect("/ws") as second:
            refused = second.receive_json()
            assert refused["type"] == "error" and "close one" in refused["message"]
            with pytest.raises(WebSocketDisconnect):
                second.receive_json()
        first.send_json({"type": "pause"})
        assert "cannot pause" in first.receive_json()["message"]  # the first page is still served
