"""The playground's targets, measured against a real ``squareseq playground`` server (a child
process, pinned to 2 CPUs where ``taskset`` exists) by WebSocket clients, and in Chromium when
Playwright and a Chromium are installed:

* from pressing Train to the first trained epoch on screen (goal: at most 1 s);
* epochs per second reaching the page for the tutorial's settings (goal: at least 20);
* 4 pages training at once, each keeping at least 5 epochs per second on 2 cores.

    python benchmarks/bench_playground.py [--epochs 100] [--pages 4] [--cpus 0,1] [--no-browser]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from typing import Dict, List

import _common
from _common import median, table, verdict

CHROMIUM = os.environ.get("SQUARESEQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(cpus: str) -> tuple:
    port = _free_port()
    command = [sys.executable, "-m", "squareseq", "playground", "--no-browser", "--port", str(port)]
    if cpus and shutil.which("taskset"):
        command = ["taskset", "-c", cpus, *command]
    proc = subprocess.Popen(command, env=_common.subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    line = proc.stdout.readline()  # printed once torch is loaded and the warm-up epoch ran
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.stdout.read()}")
    for _ in range(200):  # listening a moment after the line
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    return proc, port


def one_page(port: int, settings: Dict[str, str], out: Dict[str, float], go: threading.Event) -> None:
    """Trains one run over the socket; records seconds to epoch 0 and epoch 1 and the epochs per
    second from epoch 1 to the last."""
    from websockets.sync.client import connect

    with connect(f"ws://127.0.0.1:{port}/ws", max_size=1 << 24) as ws:
        go.wait()
        start = time.perf_counter()
        ws.send(json.dumps({"type": "start", "settings": settings}))
        first = None
        while True:
            message = json.loads(ws.recv())
            if message["type"] == "epoch" and message["epoch"] == 0:
                out["epoch0_s"] = time.perf_counter() - start
            if message["type"] == "epoch" and message["epoch"] == 1:
                first = time.perf_counter()
                out["epoch1_s"] = first - start
            if message["type"] == "error":
                raise SystemExit(message["message"])
            if message["type"] == "done":
                last = time.perf_counter()
                out["epochs_per_s"] = (message["epoch"] - 1) / (last - first)
                return


def pages_at_once(port: int, n: int, settings: Dict[str, str]) -> List[Dict[str, float]]:
    results: List[Dict[str, float]] = [{} for _ in range(n)]
    go = threading.Event()
    threads = [threading.Thread(target=one_page, args=(port, settings, results[i], go)) for i in range(n)]
    for t in threads:
        t.start()
    time.sleep(0.3)  # every socket open
    go.set()
    for t in threads:
        t.join()
    return results


def in_browser(port: int, epochs: int) -> Dict[str, float]:
    """Seconds from the Train click to epoch 1 drawn, and epochs drawn per second, in Chromium."""
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/?epochs={epochs}")
        page.wait_for_selector("#f-hidden")
        start = time.perf_counter()
        page.click("#train")
        page.wait_for_function("() => Number(document.body.dataset.epoch) >= 1", timeout=30_000, polling="raf")
        first = time.perf_counter()
        page.wait_for_function(f"() => Number(document.body.dataset.epoch) >= {epochs}", timeout=120_000,
                               polling="raf")
        last = time.perf_counter()
        browser.close()
    return {"epoch1_s": first - start, "epochs_per_s": (epochs - 1) / (last - first)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per run (the tutorial's: 100)")
    parser.add_argument("--pages", type=int, default=4)
    parser.add_argument("--cpus", default="0,1", help="CPUs the server is pinned to ('' for all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    settings = {"epochs": str(args.epochs)}  # otherwise the tutorial's settings
    proc, port = start_server(args.cpus)
    try:
        single = [pages_at_once(port, 1, settings)[0] for _ in range(args.rounds)]
        many = [r for _ in range(args.rounds) for r in pages_at_once(port, args.pages, settings)]
        browser = None
        if not args.no_browser and os.path.exists(CHROMIUM):
            try:
                browser = [in_browser(port, args.epochs) for _ in range(args.rounds)]
            except ImportError:
                browser = None
    finally:
        proc.terminate()
        proc.wait(10)
    first = median([r["epoch1_s"] for r in single])
    rate = median([r["epochs_per_s"] for r in single])
    worst = min(r["epochs_per_s"] for r in many)
    rows = [["socket: Train to epoch 0 (untrained) received, s", median([r["epoch0_s"] for r in single]), "", ""],
            ["socket: Train to epoch 1 received, s", first, "<= 1", verdict(first <= 1)],
            ["socket: epochs/s, one page", rate, ">= 20", verdict(rate >= 20)],
            [f"socket: epochs/s, slowest of {args.pages} pages at once", worst, ">= 5", verdict(worst >= 5)],
            [f"socket: epochs/s, median of {args.pages} pages at once",
             median([r["epochs_per_s"] for r in many]), "", ""]]
    if browser:
        b_first = median([r["epoch1_s"] for r in browser])
        b_rate = median([r["epochs_per_s"] for r in browser])
        rows += [["Chromium: Train click to epoch 1 drawn, s", b_first, "<= 1", verdict(b_first <= 1)],
                 ["Chromium: epochs/s drawn, one page", b_rate, ">= 20", verdict(b_rate >= 20)]]
    cpus = args.cpus if args.cpus and shutil.which("taskset") else f"all {os.cpu_count()}"
    print(table(f"squareseq playground, tutorial's settings, {args.epochs} epochs, server on CPUs {cpus}, "
                f"median of {args.rounds} rounds", ["measure", "value", "goal", ""], rows))


if __name__ == "__main__":
    main()
