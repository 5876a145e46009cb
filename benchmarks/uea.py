"""Accuracy on public UEA/UCR archive datasets: ``squareseq train --data FILE`` side by side with
the published 1-NN DTW and best deep-learning accuracies (benchmarks/published_uea.json).

Each dataset bundled with aeon is converted once to the README's npz schema (X (N, L, F) float32,
zero-padded, with ``lengths`` where lengths vary; the archive's own TRAIN/TEST split as X/X_test)
and cached. Each seed S is one subprocess run of the CLI with ``--seed S --fit-seed S --split-seed
S`` (model initialisation, shuffling, and the validation split carved from TRAIN; the test split is
always the archive's) plus only what ``--args`` adds: with no ``--args`` the run uses the defaults.
``--threads`` (an execution option, 1 by default) is passed to every run so that ``--jobs`` runs
share the cores without oversubscription.

Run: python benchmarks/uea.py [--datasets GunPoint,ArrowHead] [--seeds 0-4] [--args "--model lstm"|--args=--flag]
     [--jobs 2] [--threads 1] [--cache DIR] [--results FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from _common import ROOT, subprocess_env, table

HERE = Path(__file__).resolve().parent
PUBLISHED = HERE / "published_uea.json"
#: The archive datasets aeon ships with its package (no download needed), shortest first.
DATASETS = ("ItalyPowerDemand", "JapaneseVowels", "BasicMotions", "GunPoint", "ArrowHead",
            "PickupGestureWiimoteZ")
FORMAT_VERSION = 1


def aeon_data_dir() -> Path:
    """Folder of the archive files bundled with aeon (``pip install aeon``; squareseq's ``aeon`` extra)."""
    try:
        import aeon.datasets
    except ImportError:
        sys.exit("benchmarks/uea.py needs aeon for the archive files: pip install 'squareseq[aeon]'")
    return Path(aeon.datasets.__file__).resolve().parent / "data"


def _padded(series: Any) -> tuple:
    """aeon's (N, C, L) array or list of (C, L_i) arrays -> zero-padded (N, L, C) float32 and lengths."""
    items = list(series) if isinstance(series, list) else [series[i] for i in range(series.shape[0])]
    lengths = np.array([item.shape[1] for item in items], dtype=np.int64)
    X = np.zeros((len(items), int(lengths.max()), items[0].shape[0]), dtype=np.float32)
    for i, item in enumerate(items):
        X[i, :item.shape[1]] = np.asarray(item, dtype=np.float32).T
    if np.isnan(X).any():
        raise SystemExit("missing values inside a series are not supported by this benchmark")
    return X, lengths


def convert(name: str, cache: Path, string_labels: bool = False) -> Path:
    """The cached npz of one archive dataset (written on first use) and its sidecar ``.json``
    (shape facts and the class names, index order)."""
    suffix = "-str" if string_labels else ""
    path = cache / f"{name}{suffix}.npz"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        if json.loads(meta_path.read_text()).get("format") == FORMAT_VERSION:
            return path
    from aeon.datasets import load_from_ts_file

    folder = aeon_data_dir() / name
    X, y = load_from_ts_file(str(folder / f"{name}_TRAIN.ts"))
    X_test, y_test = load_from_ts_file(str(folder / f"{name}_TEST.ts"))
    X, lengths = _padded(X)
    X_test, lengths_test = _padded(X_test)
    L = max(X.shape[1], X_test.shape[1])
    X = np.pad(X, ((0, 0), (0, L - X.shape[1]), (0, 0)))
    X_test = np.pad(X_test, ((0, 0), (0, L - X_test.shape[1]), (0, 0)))
    names = sorted(set(map(str, y)) | set(map(str, y_test)), key=lambda s: (not s.isdigit(), int(s) if
                                                                            s.isdigit() else 0, s))
    index = {label: i for i, label in enumerate(names)}
    arrays: Dict[str, np.ndarray] = {"X": X, "X_test": X_test}
    if string_labels:
        arrays["y"], arrays["y_test"] = np.asarray(y, dtype=str), np.asarray(y_test, dtype=str)
    else:
        arrays["y"] = np.array([index[str(v)] for v in y], dtype=np.int64)
        arrays["y_test"] = np.array([index[str(v)] for v in y_test], dtype=np.int64)
    variable = len(set(lengths.tolist()) | set(lengths_test.tolist())) > 1
    if variable:
        arrays["lengths"], arrays["lengths_test"] = lengths, lengths_test
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    meta = {"format": FORMAT_VERSION, "dataset": name, "n_train": int(X.shape[0]), "n_test": int(X_test.shape[0]),
            "length": int(L), "min_length": int(min(lengths.min(), lengths_test.min())), "variable_length": variable,
            "channels": int(X.shape[2]), "classes": len(names), "class_names": names}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return path


def reproduce_dtw(name: str) -> float:
    """Test accuracy of 1-NN DTW (full window; dependent DTW over all channels) with aeon, on the
    archive's own split, as the series come (no rescaling, unequal lengths kept)."""
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
    from aeon.datasets import load_from_ts_file

    folder = aeon_data_dir() / name
    X, y = load_from_ts_file(str(folder / f"{name}_TRAIN.ts"))
    X_test, y_test = load_from_ts_file(str(folder / f"{name}_TEST.ts"))
    clf = KNeighborsTimeSeriesClassifier(n_neighbors=1, distance="dtw").fit(X, y)
    return float(np.mean(clf.predict(X_test) == np.asarray(y_test)))


def parse_seeds(text: str) -> List[int]:
    """``0-4`` or ``0,3,7`` (or a mix) -> list of seeds."""
    seeds: List[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        seeds += list(range(int(a), int(b) + 1)) if b else [int(a)]
    return seeds


def train_once(data: Path, seed: int, extra: List[str], threads: int, scratch: Path) -> Dict[str, Any]:
    """One ``squareseq train`` subprocess; its test accuracy and timing from ``metrics.json``."""
    out = Path(tempfile.mkdtemp(dir=scratch)) / "run"
    cmd = [sys.executable, "-m", "squareseq", "train", "--data", str(data), "--seed", str(seed),
           "--fit-seed", str(seed), "--split-seed", str(seed), "--no-figures", "--quiet",
           "--threads", str(threads), "--out", str(out), *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=subprocess_env(), capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    record: Dict[str, Any] = {"seed": seed, "rc": proc.returncode, "seconds": round(seconds, 2)}
    metrics_path = out / "metrics.json"
    if proc.returncode == 0 and metrics_path.exists():
        metrics = json.loads(metrics_path.read_text())
        record["accuracy"] = metrics["test"]["accuracy"]
        record["epochs_run"] = len(metrics.get("losses") or [])
        for key in ("best_epoch", "stopped_epoch", "validation"):
            if key in metrics:
                record[key] = metrics[key]
        if isinstance(metrics.get("val"), dict) and "accuracy" in metrics["val"]:
            record["val_accuracy"] = metrics["val"]["accuracy"]
        config = metrics.get("config") or {}
        record["resolved"] = {k: config.get(k) for k in ("model", "hidden_dim", "epochs", "lr", "batch_size",
                                                          "standardize", "val_fraction", "early_stopping")}
    else:
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        record["error"] = lines[-1] if lines else f"exit code {proc.returncode}"
    shutil.rmtree(out.parent, ignore_errors=True)
    return record


def _progress(name: str, record: Dict[str, Any]) -> Dict[str, Any]:
    """Prints one finished run (to stderr, so the table on stdout stays clean) and returns it."""
    outcome = f"{record['accuracy']:.4f}" if "accuracy" in record else f"failed: {record.get('error')}"
    print(f"  {name} seed {record['seed']}: {outcome} in {record['seconds']:.0f} s", file=sys.stderr, flush=True)
    return record


def summarise(name: str, meta: Dict[str, Any], runs: List[Dict[str, Any]],
              published: Dict[str, Any]) -> Dict[str, Any]:
    """One dataset's row: accuracy over seeds beside the published numbers."""
    accs = [r["accuracy"] for r in runs if "accuracy" in r]
    pub = published.get(name, {})
    dtw = (pub.get("dtw") or {}).get("accuracy")
    dl = (pub.get("best_dl") or {}).get("accuracy")
    row: Dict[str, Any] = {"dataset": name, **{k: meta[k] for k in ("n_train", "n_test", "length", "channels",
                                                                    "classes", "variable_length")},
                           "runs": len(runs), "ok": len(accs), "dtw": dtw, "best_dl": dl,
                           "best_dl_model": (pub.get("best_dl") or {}).get("model"),
                           "dtw_published": (pub.get("dtw") or {}).get("source") not in (None, "reproduced_aeon"),
                           "seconds_mean": round(statistics.mean(r["seconds"] for r in runs), 1)}
    if accs:
        row.update(mean=statistics.mean(accs), std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                   min=min(accs), max=max(accs))
        if dtw is not None:
            row["beats_dtw"] = row["mean"] > dtw
            row["seeds_above_dtw"] = sum(a > dtw for a in accs)
    errors = sorted({r["error"] for r in runs if "error" in r})
    if errors:
        row["errors"] = errors
    return row


def _cell(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.3f}"


def render(rows: List[Dict[str, Any]], title: str) -> str:
    """The plain-text table of :func:`summarise` rows."""
    header = ["dataset", "n_train", "length", "channels", "classes", "squareseq mean ± std (min-max)",
              "1-NN DTW", "best DL", "beats DTW?", "s/run"]
    lines = []
    for r in rows:
        ours = (f"{r['mean']:.3f} ± {r['std']:.3f} ({r['min']:.3f}-{r['max']:.3f})" if "mean" in r
                else "failed: " + "; ".join(r.get("errors", []))[:60])
        verdict = "-" if "beats_dtw" not in r else ("yes" if r["beats_dtw"] else "NO") + \
            f" ({r['seeds_above_dtw']}/{r['ok']} seeds)"
        dl = _cell(r["best_dl"]) + (f" {r['best_dl_model']}" if r["best_dl_model"] else "")
        length = f"<={r['length']}" if r["variable_length"] else str(r["length"])
        dtw = _cell(r["dtw"]) + ("" if r["dtw_published"] or r["dtw"] is None else "*")
        lines.append([r["dataset"], str(r["n_train"]), length, str(r["channels"]), str(r["classes"]), ours,
                      dtw, dl, verdict, f"{r['seconds_mean']:.1f}"])
    footer = "\n* no published number found: reproduced with aeon (benchmarks/published_uea.json)" \
        if any(r["dtw"] is not None and not r["dtw_published"] for r in rows) else ""
    return table(title, header, lines) + footer


def render_saved(path: Path) -> int:
    """Prints the table of a results JSON written by an earlier run."""
    saved = json.loads(path.read_text())
    published = json.loads(PUBLISHED.read_text())["datasets"] if PUBLISHED.exists() else {}
    rows = [summarise(r["dataset"], r, saved["runs"][r["dataset"]], published) for r in saved["summary"]]
    print(render(rows, f"squareseq train --data FILE {saved['args'] or '(defaults)'}; seeds "
                       f"{','.join(map(str, saved['seeds']))}; commit {saved.get('commit')}"))
    return 0


def slug(args: str) -> str:
    """A file-name-safe tag of the extra arguments (``defaults`` for none)."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", args).strip("_") or "defaults"


def git_commit() -> Optional[str]:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated archive names")
    parser.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,3,7 (default: 0-4)")
    parser.add_argument("--args", default="", help="extra 'squareseq train' options, e.g. --args \"--model lstm\"; a single option as "
                        "--args=--bidirectional (default: none, the defaults)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (default: 1)")
    parser.add_argument("--threads", type=int, default=1, help="--threads of every run (default: 1)")
    parser.add_argument("--string-labels", action="store_true",
                        help="write the archive's own labels (strings) instead of class indices 0..C-1")
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "squareseq-uea"),
                        help="folder for the converted npz files and scratch run folders")
    parser.add_argument("--results", default=None,
                        help="results JSON (default: benchmarks/uea_results/<args>.json)")
    parser.add_argument("--reproduce-dtw", action="store_true",
                        help="only compute 1-NN DTW (full window) with aeon on each dataset and print it")
    parser.add_argument("--render", metavar="RESULTS_JSON", default=None,
                        help="only print the table of an earlier results JSON (with today's published numbers)")
    opts = parser.parse_args(argv)
    if opts.render:
        return render_saved(Path(opts.render))
    names = [n for n in opts.datasets.split(",") if n]
    unknown = [n for n in names if not (aeon_data_dir() / n / f"{n}_TRAIN.ts").exists()]
    if unknown:
        parser.error(f"not bundled with aeon: {', '.join(unknown)} (choose from {', '.join(DATASETS)})")
    if opts.reproduce_dtw:
        for name in names:
            print(f"{name}: 1-NN DTW test accuracy {reproduce_dtw(name):.4f}", flush=True)
        return 0
    seeds, extra = parse_seeds(opts.seeds), shlex.split(opts.args)
    cache = Path(opts.cache)
    scratch = cache / "runs"
    scratch.mkdir(parents=True, exist_ok=True)
    published = json.loads(PUBLISHED.read_text())["datasets"] if PUBLISHED.exists() else {}
    files = {n: convert(n, cache, opts.string_labels) for n in names}
    metas = {n: json.loads(files[n].with_suffix(".json").read_text()) for n in names}
    jobs = [(n, s) for n in names for s in seeds]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(1, opts.jobs)) as pool:
        outcomes = list(pool.map(lambda job: _progress(job[0], train_once(files[job[0]], job[1], extra, opts.threads,
                                                                          scratch)), jobs))
    runs: Dict[str, List[Dict[str, Any]]] = {n: [] for n in names}
    for (n, _), record in zip(jobs, outcomes):
        runs[n].append(record)
    rows = [summarise(n, metas[n], runs[n], published) for n in names]
    title = f"squareseq train --data FILE {opts.args or '(defaults)'}; seeds {opts.seeds}; " \
            f"{time.perf_counter() - start:.0f} s wall, jobs {opts.jobs}, threads {opts.threads}"
    print(render(rows, title))
    results_path = Path(opts.results) if opts.results else HERE / "uea_results" / f"{slug(opts.args)}.json"
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results = {"args": opts.args, "seeds": seeds, "commit": git_commit(), "threads": opts.threads,
               "jobs": opts.jobs, "string_labels": opts.string_labels, "summary": rows, "runs": runs}
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    print(f"results: {results_path}")
    return 0 if all("mean" in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
