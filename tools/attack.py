"""Throws hostile input at the squareseq CLI and checks its promises on each attempt.

Every attempt runs ``python -m squareseq ...`` in a child process under an address-space cap and a
time limit, and passes when:

* the exit code is one the README documents for it (2 for bad input, 0 where the input is odd but
  usable, 3 for a numerical failure, 130/143 for a signal);
* a failure prints exactly one line on stderr, with no traceback and no "internal error";
* a refused attempt leaves every file of the run folder it aimed at byte for byte as it was;
* it neither hangs nor exceeds the memory cap.

Categories: option values, option combinations, data files, ``predict --input``, tampered
checkpoints, tampered run records, two writers at once, and signals at random moments.

    python tools/attack.py            # all categories, 2 workers
    python tools/attack.py -k data -j 1

Prints a table (attempts and failures per category), then each failure with its reproducer.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch

CAP_BYTES = 4 * 2**30
TIMEOUT_S = 90
QUICK = ["--epochs", "1", "--n-train", "16", "--n-test", "8", "--no-figures", "--quiet"]


@dataclass
class Attack:
    category: str
    name: str
    argv: Callable[[Path], List[str]]  # builds the attempt's files under a scratch folder
    allowed: Sequence[int] = (2,)
    protect: Optional[str] = None  # a folder under the scratch folder that a refusal must leave untouched
    check: Optional[Callable[[Path, "Outcome"], Optional[str]]] = None
    result: Optional[str] = None


@dataclass
class Outcome:
    code: int
    stderr: str
    seconds: float
    notes: List[str] = field(default_factory=list)


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (CAP_BYTES, CAP_BYTES))
    os.setsid()


def _squareseq(argv: Sequence[str], cwd: Path, timeout: float = TIMEOUT_S) -> Outcome:
    start = time.perf_counter()
    for attempt in range(5):  # fork can fail for a moment on a busy machine: that is not the attempt's fault
        try:
            return _run(argv, cwd, timeout, start)
        except BlockingIOError:
            time.sleep(2 ** attempt)
    return _run(argv, cwd, timeout, start)


def _run(argv: Sequence[str], cwd: Path, timeout: float, start: float) -> Outcome:
    try:
        proc = subprocess.run([sys.executable, "-m", "squareseq", *argv], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_limit_memory, errors="replace")
        return Outcome(proc.returncode, proc.stderr, time.perf_counter() - start)
    except subprocess.TimeoutExpired as exc:
        return Outcome(-1, f"HANG after {timeout} s {exc.stderr or ''}", time.perf_counter() - start)


def _digest(folder: Path) -> Dict[str, str]:
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _judge(attack: Attack, outcome: Outcome, before: Dict[str, str], scratch: Path) -> Optional[str]:
    if outcome.code == -1:
        return "hung"
    if outcome.code not in attack.allowed:
        return f"exit {outcome.code}, expected one of {tuple(attack.allowed)}"
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.code != 0:
        if len(lines) != 1:
            return f"{len(lines)} lines on stderr"
        if "internal error" in lines[0] or "Traceback" in outcome.stderr:
            return "internal error"
    elif any("Traceback" in line for line in lines):
        return "traceback on success"
    if attack.protect and outcome.code != 0 and _digest(scratch / attack.protect) != before:
        return f"refused, but changed {attack.protect}"
    if attack.check:
        return attack.check(scratch, outcome)
    return None


@contextlib.contextmanager
def _trial(attack: Attack) -> Iterator[Path]:
    """A scratch folder for one attempt, removed after it; an error of the harness itself is
    recorded as the attempt's result instead of stopping the other attempts."""
    scratch = Path(tempfile.mkdtemp(prefix="attack-"))
    try:
        yield scratch
    except Exception as exc:
        attack.result = f"harness error {type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_attack(attack: Attack, base: Path) -> Attack:
    with _trial(attack) as scratch:
        shutil.copytree(base, scratch / "run")
        argv = attack.argv(scratch)
        before = _digest(scratch / attack.protect) if attack.protect else {}
        outcome = _squareseq(argv, scratch)
        problem = _judge(attack, outcome, before, scratch)
        if problem is not None:
            attack.result = f"{problem}: squareseq {' '.join(argv)} -> {outcome.stderr.strip()[-300:]}"
    return attack


# -- attempts -------------------------------------------------------------------------------------

_VALUES = ["-1", "x", "", "nan", "inf", "1e400", "4294967296", "99999999999999999999", "1_0", "٣", "0x10", "1e3"]
_FLAGS = ["--epochs", "--batch-size", "--lr", "--hidden-dim", "--seed", "--fit-seed", "--train-seed", "--test-seed",
          "--n-train", "--n-test", "--num-layers", "--noise", "--test-fraction", "--split-seed",
          "--checkpoint-every", "--threads"]


def option_attacks() -> List[Attack]:
    attacks = []
    for flag in _FLAGS:
        for value in _VALUES:
            def argv(scratch, flag=flag, value=value):
                quick = [a for i, a in enumerate(QUICK) if a != flag and not (i and QUICK[i - 1] == flag)]
                return ["train", *quick, flag, value, "--out", str(scratch / "out")]
            attacks.append(Attack("options", f"{flag} {value!r}", argv, allowed=(0, 2, 3)))
    return attacks


def _train(*extra: str) -> Callable[[Path], List[str]]:
    return lambda scratch: ["train", *QUICK, *extra, "--out", str(scratch / "out")]


def combination_attacks() -> List[Attack]:
    def nonrun(scratch):
        (scratch / "docs").mkdir()
        (scratch / "docs" / "thesis.txt").write_text("years of work\n")
        return ["train", *QUICK, "--out", str(scratch / "docs"), "--overwrite"]

    def file_out(scratch):
        (scratch / "file").write_text("x")
        return ["train", *QUICK, "--out", str(scratch / "file")]

    def existing(scratch):
        return ["train", *QUICK, "--out", str(scratch / "run")]

    cases = [
        ("conv1d + ce", _train("--model", "conv1d", "--loss", "ce"), (0, 2), None),
        ("conv1d + variable-len", _train("--model", "conv1d", "--variable-len"), (0, 2), None),
        ("bce on 8 classes", _train("--task", "corner-direction", "--loss", "bce"), (2,), None),
        ("lstm 4096 x 64 layers", _train("--model", "lstm", "--hidden-dim", "4096", "--num-layers", "64"), (2,), None),
        ("rnn 4096 x 4096 layers", _train("--hidden-dim", "4096", "--num-layers", "4096"), (2,), None),
        ("batch 10**9 of 4096-wide", _train("--hidden-dim", "4096", "--batch-size", "1000000000",
                                            "--n-train", "10000000"), (2,), None),
        ("resume + overwrite", lambda s: ["train", "--resume", str(s / "run"), "--overwrite"], (2,), "run"),
        ("resume, missing folder", lambda s: ["train", "--resume", str(s / "nope")], (2,), None),
        ("resume, fewer epochs", lambda s: ["train", "--resume", str(s / "run"), "--epochs", "1"], (2,), "run"),
        ("resume + other option", lambda s: ["train", "--resume", str(s / "run"), "--hidden-dim", "3"], (2,), "run"),
        ("existing run, no flag", existing, (2,), "run"),
        ("overwrite a non-run folder", nonrun, (2,), "docs"),
        ("out is a file", file_out, (2,), None),
        ("out under a file", lambda s: (s / "f").write_text("x") and ["train", *QUICK, "--out", str(s / "f" / "r")],
         (2,), None),
        ("data missing", _train("--data", "missing.csv"), (2,), None),
        ("sweep seeds 0-99999999", lambda s: ["sweep", "--seeds", "0-99999999", "--epochs", "1", "--out",
                                              str(s / "sw")], (2,), None),
        ("sweep seed 2**32", lambda s: ["sweep", "--seeds", "4294967296", "--epochs", "1", "--out", str(s / "sw")],
         (2,), None),
        ("sweep seeds 5-1", lambda s: ["sweep", "--seeds", "5-1", "--out", str(s / "sw")], (2,), None),
        ("sweep seeds 0,,1", lambda s: ["sweep", "--seeds", "0,,1", "--out", str(s / "sw")], (2,), None),
        ("sweep 256 wide models", lambda s: ["sweep", "--seeds", "0-255", "--hidden-dim", "4096", "--out",
                                             str(s / "sw")], (2,), None),
        ("evaluate a missing run", lambda s: ["evaluate", str(s / "nope")], (2,), None),
        ("evaluate a plain folder", lambda s: (s / "d").mkdir() or ["evaluate", str(s / "d")], (2,), None),
        ("plot a plain folder", lambda s: (s / "d").mkdir() or ["plot", str(s / "d")], (2,), None),
    ]
    return [Attack("combinations", name, argv, allowed=allowed, protect=protect)
            for name, argv, allowed, protect in cases]


def _csv(rows: Sequence[str], header: str = "sequence,step,x0,x1,label", prefix: bytes = b"") -> Callable:
    def write(path: Path) -> None:
        path.write_bytes(prefix + ("\n".join([header, *rows]) + "\n").encode())
    return write


def _square_rows(n: int = 20, label: Callable[[int], str] = lambda i: str(i % 2)) -> List[str]:
    rng = random.Random(0)
    return [f"{i},{t},{rng.random():.3f},{rng.random():.3f},{label(i)}" for i in range(n) for t in range(4)]


def _npy_header_bomb(path: Path, rows: int = 10**12) -> None:
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (rows, 4, 2)})
        f.write(b"\0" * 64)


def _npz(path: Path, **arrays) -> None:
    np.savez(path, **arrays)


def _npz_bomb(path: Path) -> None:
    member = path.parent / "X.npy"
    _npy_header_bomb(member)
    with zipfile.ZipFile(path, "w") as z:
        z.write(member, "X.npy")
        np.save(path.parent / "y.npy", np.zeros(3, dtype=np.int64))
        z.write(path.parent / "y.npy", "y.npy")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def data_attacks() -> List[Attack]:
    X = np.random.default_rng(0).random((20, 4, 2)).astype(np.float32)
    y = np.arange(20) % 2
    files: List[tuple] = [
        ("bom.csv", _csv(_square_rows(), prefix=b"\xef\xbb\xbf"), (0,)),
        ("label 10**30.csv", _csv(_square_rows(label=lambda i: "10" + "0" * 30 if i == 3 else str(i % 2))), (2,)),
        ("label 10**12.csv", _csv(_square_rows(label=lambda i: str(10**12) if i == 3 else str(i % 2))), (2,)),
        ("label 1_0.csv", _csv(_square_rows(label=lambda i: "1_0" if i == 3 else str(i % 2))), (2,)),
        ("label -1.csv", _csv(_square_rows(label=lambda i: "-1" if i == 3 else str(i % 2))), (2,)),
        ("label 1.5.csv", _csv(_square_rows(label=lambda i: "1.5" if i == 3 else str(i % 2))), (2,)),
        ("label x.csv", _csv(_square_rows(label=lambda i: "x" if i == 3 else str(i % 2))), (0, 2)),
        ("nan feature.csv", _csv(_square_rows() + ["99,0,nan,0,1"]), (2,)),
        ("inf feature.csv", _csv(_square_rows() + ["99,0,inf,0,1"]), (2,)),
        ("1e400 feature.csv", _csv(_square_rows() + ["99,0,1e400,0,1"]), (2,)),
        ("padding bomb.csv", _csv([f"0,{t},0,0,0" for t in range(20000)] + [f"{i},0,0,0,{i % 2}"
                                                                           for i in range(1, 20000)]), (2,)),
        ("missing column.csv", _csv([r.rsplit(",", 1)[0] for r in _square_rows()], header="sequence,step,x0,x1"),
         (2,)),
        ("empty.csv", lambda p: p.write_bytes(b""), (2,)),
        ("header only.csv", _csv([]), (2,)),
        ("junk.csv", lambda p: p.write_bytes(bytes(range(256)) * 8), (2,)),
        ("latin-1.csv", lambda p: p.write_bytes("séquence,step,x0,x1,label\n".encode("latin-1")), (2,)),
        ("duplicate steps.csv", _csv(_square_rows() + ["0,0,0,0,0"]), (2,)),
        ("one class.csv", _csv(_square_rows(label=lambda i: "0")), (2,)),
        ("header bomb.npy", _npy_header_bomb, (2,)),
        ("header bomb.npz", _npz_bomb, (2,)),
        ("object dtype.npz", lambda p: _npz(p, X=np.array([object()] * 3, dtype=object), y=y[:3]), (2,)),
        ("complex X.npz", lambda p: _npz(p, X=X.astype(np.complex64), y=y), (2,)),
        ("2-D X.npz", lambda p: _npz(p, X=X[:, :, 0], y=y), (2,)),
        ("float y.npz", lambda p: _npz(p, X=X, y=y + 0.5), (2,)),
        ("short y.npz", lambda p: _npz(p, X=X, y=y[:5]), (2,)),
        ("lengths over L.npz", lambda p: _npz(p, X=X, y=y, lengths=np.full(20, 9)), (2,)),
        ("lengths 0.npz", lambda p: _npz(p, X=X, y=y, lengths=np.zeros(20, dtype=np.int64)), (2,)),
        ("no X.npz", lambda p: _npz(p, y=y), (2,)),
        ("fifo.csv", _fifo, (2,)),
        ("folder.csv", lambda p: p.mkdir(), (2,)),
        ("dev-zero.npy", lambda p: p.symlink_to("/dev/zero"), (2,)),
        ("text as.npz", lambda p: p.write_text("not a zip"), (2,)),
    ]
    attacks = []
    for name, make, allowed in files:
        def argv(scratch, name=name, make=make):
            path = scratch / name.replace(" ", "_")
            make(path)
            return ["train", *QUICK, "--data", str(path), "--out", str(scratch / "out")]
        attacks.append(Attack("data files", name, argv, allowed=allowed))
    return attacks


def input_attacks() -> List[Attack]:
    X = np.random.default_rng(0).random((3, 4, 2)).astype(np.float32)
    files = [
        ("2-D.npy", lambda p: np.save(p, X[:, :, 0]), (2,)),
        ("3 features.npy", lambda p: np.save(p, np.zeros((3, 4, 3), np.float32)), (2,)),
        ("nan.npy", lambda p: np.save(p, np.full((3, 4, 2), np.nan, np.float32)), (2,)),
        ("complex.npy", lambda p: np.save(p, X.astype(np.complex64)), (2,)),
        ("object.npy", lambda p: np.save(p, np.array([None] * 3, dtype=object), allow_pickle=True), (2,)),
        ("int.npy", lambda p: np.save(p, np.ones((3, 4, 2), np.int64)), (0, 2)),
        ("header bomb.npy", _npy_header_bomb, (2,)),
        ("an.npz", lambda p: _npz(p, X=X), (0,)),  # predict reads X (and lengths) from an .npz
        ("fifo.npy", _fifo, (2,)),
        ("folder.npy", lambda p: p.mkdir(), (2,)),
        ("dev-zero.npy", lambda p: p.symlink_to("/dev/zero"), (2,)),
        ("empty.npy", lambda p: p.write_bytes(b""), (2,)),
        ("zero sequences.npy", lambda p: np.save(p, np.zeros((0, 4, 2), np.float32)), (0, 2)),
    ]
    attacks = []
    for name, make, allowed in files:
        def argv(scratch, name=name, make=make):
            path = scratch / name.replace(" ", "_")
            make(path)
            return ["predict", str(scratch / "run"), "--input", str(path)]
        attacks.append(Attack("predict inputs", name, argv, allowed=allowed, protect="run"))
    for points, allowed in [("1,2 3", (2,)), ("nan,nan", (2,)), ("1e400,0", (2,)), ("", (2,)), ("1,2,3", (2,)),
                            (" ".join(["0,0"] * 20000), (0, 2)), ("0x1,0", (2,)), ("1,1 -1,1 -1,-1 1,-1", (0,))]:
        attacks.append(Attack("predict inputs", f"--points {points[:20]!r}",
                              lambda s, points=points: ["predict", str(s / "run"), "--points", points],
                              allowed=allowed, protect="run"))
    return attacks


def _tamper(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(run: Path) -> None:
        data = torch.load(run / "checkpoint.pt", weights_only=True)
        change(data)
        torch.save(data, run / "checkpoint.pt")
    return apply


class _System:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def _set(*keys, value):
    def change(data):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return change


def _payload(run: Path) -> None:
    data = torch.load(run / "checkpoint.pt", weights_only=True)
    data["model_config"] = {"name": _System()}
    torch.save(data, run / "checkpoint.pt")


def _no_pwned(scratch: Path, outcome: Outcome) -> Optional[str]:
    return "payload ran" if any(scratch.rglob("pwned.txt")) else None


def checkpoint_attacks() -> List[Attack]:
    first = "basic_rnn.weight_ih_l0"
    changes = [
        ("os.system payload", _payload),
        ("random bytes", lambda r: (r / "checkpoint.pt").write_bytes(os.urandom(23000))),
        ("truncated", lambda r: (r / "checkpoint.pt").write_bytes((r / "checkpoint.pt").read_bytes()[:5000])),
        ("empty", lambda r: (r / "checkpoint.pt").write_bytes(b"")),
        ("a list", lambda r: torch.save([1, 2], r / "checkpoint.pt")),
        ("complex weights", _tamper(lambda d: d["model_state_dict"].update(
            {first: d["model_state_dict"][first].to(torch.complex64)}))),
        ("wrong shape", _tamper(lambda d: d["model_state_dict"].update({first: torch.zeros(7, 7)}))),
        ("huge model_config", _tamper(_set("model_config", value={"name": "SquareModel", "cell": "lstm",
                                                                   "hidden_dim": 4096, "num_layers": 64}))),
        ("model name os.system", _tamper(_set("model_config", "name", value="os.system"))),
        ("hidden_dim True", _tamper(_set("model_config", "hidden_dim", value=True))),
        ("lr 'x'", _tamper(lambda d: d["optimizer_state_dict"]["param_groups"][0].update(lr="x"))),
        ("learning_rates 'x'", _tamper(_set("learning_rates", value="x"))),
        ("resumed_from junk", _tamper(_set("resumed_from", value=[[1]]))),
        ("epoch -1", _tamper(_set("epoch", value=-1))),
        ("version 99", _tamper(_set("version", value=99))),
        ("run_config data 123", _tamper(_set("run_config", "data", value=123))),
        ("run_config variable_len 'yes'", _tamper(_set("run_config", "variable_len", value="yes"))),
        ("run_config n_test 10**7", _tamper(_set("run_config", "n_test", value=10**7))),
        ("run_config n_train 10**12", _tamper(_set("run_config", "n_train", value=10**12))),
        ("run_config hidden 4096 x 64 lstm", _tamper(lambda d: d["run_config"].update(
            hidden_dim=4096, num_layers=64, model="lstm"))),
        ("run_config a list", _tamper(_set("run_config", value=[1]))),
        ("checkpoint is a fifo", lambda r: ((r / "checkpoint.pt").unlink(), os.mkfifo(r / "checkpoint.pt"))),
        ("checkpoint is /dev/zero", lambda r: ((r / "checkpoint.pt").unlink(),
                                               (r / "checkpoint.pt").symlink_to("/dev/zero"))),
    ]
    attacks = []
    for name, change in changes:
        for command in (["evaluate"], ["predict", "--points", "1,1 -1,1 -1,-1 1,-1"], ["plot"], ["resume"]):
            def argv(scratch, change=change, command=command):
                change(scratch / "run")
                if command == ["resume"]:
                    return ["train", "--resume", str(scratch / "run"), "--epochs", "3", "--no-figures", "--quiet"]
                if command == ["plot"]:
                    return ["plot", str(scratch / "run"), "--no-animation"]
                return [command[0], str(scratch / "run"), *command[1:]]
            attacks.append(Attack("checkpoints", f"{name} / {command[0]}", argv, protect="run", check=_no_pwned))
    return attacks


def record_attacks() -> List[Attack]:
    def metrics(text: Callable[[dict], Union[str, bytes]]) -> Callable[[Path], List[str]]:
        def argv(scratch):
            path = scratch / "run" / "metrics.json"
            content = text(json.loads(path.read_text()))
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            return ["plot", str(scratch / "run"), "--no-animation"]
        return argv
    cases = [
        ("a list", metrics(lambda m: "[1, 2]")),
        ("nested 100000 deep", metrics(lambda m: "[" * 100000 + "]" * 100000)),
        ("n_train 10**12", metrics(lambda m: json.dumps({**m, "config": {**m["config"], "n_train": 10**12}}))),
        ("n_test 10**12", metrics(lambda m: json.dumps({**m, "config": {**m["config"], "n_test": 10**12}}))),
        ("another model's config", metrics(lambda m: json.dumps({**m, "config": {**m["config"], "model": "lstm",
                                                                                  "hidden_dim": 64}}))),
        ("not JSON", metrics(lambda m: "{")),
        ("not UTF-8", metrics(lambda m: b"\xff\xfe{")),
        ("NaN losses", metrics(lambda m: json.dumps({**m, "losses": [float("nan")] * 2}))),
        ("string losses", metrics(lambda m: json.dumps({**m, "losses": "x"}))),
        ("huge epochs", metrics(lambda m: json.dumps({**m, "epochs": 10**15, "epochs_completed": 10**15}))),
    ]
    return [Attack("run records", name, argv, allowed=(0, 2), protect="run") for name, argv in cases]


def run_two_writers(trial: int, base: Path) -> Attack:
    """Two ``train --out same`` started together: one runs, the other is refused, and the folder
    holds the winner's whole run."""
    attack = Attack("two writers", f"trial {trial}", lambda s: [])
    with _trial(attack) as scratch:
        argv = ["train", "--epochs", "40", "--n-train", "64", "--n-test", "16", "--no-figures", "--quiet",
                "--out", str(scratch / "shared")]
        procs = [subprocess.Popen([sys.executable, "-m", "squareseq", *argv, "--seed", str(seed)], cwd=scratch,
                                  stderr=subprocess.PIPE, text=True, preexec_fn=_limit_memory)
                 for seed in (trial, trial + 100)]
        codes = [p.wait(timeout=TIMEOUT_S) for p in procs]
        errors = [p.stderr.read() for p in procs]
        winners = [i for i, code in enumerate(codes) if code == 0]
        record = json.loads((scratch / "shared" / "metrics.json").read_text()) if winners else {}
        if sorted(codes) != [0, 2]:
            attack.result = f"exit codes {codes}: {errors}"
        elif record.get("config", {}).get("seed") != (trial, trial + 100)[winners[0]]:
            attack.result = f"the folder holds the loser's run: {record.get('config')}"
        elif not any(words in errors[1 - winners[0]] for words in ("in use", "already exists")):
            # "in use" while the winner runs; "already exists" if it finished before the other began
            attack.result = f"refusal does not say why: {errors[1 - winners[0]]}"
    return attack


def run_signal(trial: int, base: Path) -> Attack:
    """A SIGINT or SIGTERM (sometimes two) at a random moment of a run with figures: the exit code
    and metrics.json agree, and an interrupted run resumes to a complete one."""
    rng = random.Random(trial)
    signum = rng.choice([signal.SIGINT, signal.SIGTERM])
    delay, double = rng.uniform(1.5, 9.0), rng.random() < 0.3
    attack = Attack("signals", f"trial {trial}: {signal.Signals(signum).name} at {delay:.1f} s"
                    f"{' twice' if double else ''}", lambda s: [])
    with _trial(attack) as scratch:
        run = scratch / "r"
        argv = ["train", "--epochs", "30", "--n-train", "64", "--n-test", "32", "--no-animation", "--quiet",
                "--checkpoint-every", "5", "--out", str(run)]
        proc = subprocess.Popen([sys.executable, "-m", "squareseq", *argv], cwd=scratch, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_limit_memory)
        time.sleep(delay)
        for _ in range(2 if double else 1):
            try:
                proc.send_signal(signum)
            except ProcessLookupError:
                pass
        code = proc.wait(timeout=TIMEOUT_S)
        stderr = proc.stderr.read()
        record = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else None
        status = record.get("status") if record else None
        if "Traceback" in stderr:
            attack.result = f"traceback: {stderr[-300:]}"
        elif code == 0 and status != "complete":
            attack.result = f"exit 0 but status {status}"
        elif code == 0 and not (run / "report.html").exists():
            attack.result = "exit 0 but no report.html"
        elif code != 0 and status == "complete":
            attack.result = f"exit {code} but metrics.json says complete"
        elif code not in (0, 130, 143):
            attack.result = f"exit {code}: {stderr[-300:]}"
        elif code != 0 and (run / "checkpoint.pt").exists():
            resumed = _squareseq(["train", "--resume", str(run), "--no-animation", "--quiet"], scratch)
            final = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
            if resumed.code != 0 or final.get("status") != "complete":
                attack.result = f"resume after the signal: exit {resumed.code}, {resumed.stderr.strip()[-300:]}"
    return attack


CATEGORIES: Dict[str, Callable[[], List[Attack]]] = {
    "options": option_attacks, "combinations": combination_attacks, "data": data_attacks,
    "inputs": input_attacks, "checkpoints": checkpoint_attacks, "records": record_attacks,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", action="append", help="only these categories (repeatable): "
                        + ", ".join([*CATEGORIES, "writers", "signals"]))
    parser.add_argument("-j", type=int, default=2, help="attempts run side by side (default 2)")
    parser.add_argument("--trials", type=int, default=6, help="two-writer and signal trials each (default 6)")
    args = parser.parse_args()
    chosen = args.k or [*CATEGORIES, "writers", "signals"]
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "run"
        made = _squareseq(["train", "--epochs", "2", "--n-train", "32", "--n-test", "16", "--no-figures", "--quiet",
                           "--out", str(base)], Path(tmp))
        if made.code != 0:
            print(f"could not make the base run: {made.stderr}")
            return 1
        attacks = [a for name in chosen if name in CATEGORIES for a in CATEGORIES[name]()]
        jobs: List[Callable[[], Attack]] = [lambda a=a: run_attack(a, base) for a in attacks]
        if "writers" in chosen:
            jobs += [lambda t=t: run_two_writers(t, base) for t in range(args.trials)]
        if "signals" in chosen:
            jobs += [lambda t=t: run_signal(t, base) for t in range(args.trials)]
        start = time.perf_counter()
        with ThreadPoolExecutor(args.j) as pool:
            done = list(pool.map(lambda job: job(), jobs))
    table: Dict[str, List[int]] = {}
    for attack in done:
        counts = table.setdefault(attack.category, [0, 0])
        counts[0] += 1
        counts[1] += attack.result is not None
    print(f"{'category':<16}{'attempts':>10}{'failed':>8}")
    for category, (total, failed) in table.items():
        print(f"{category:<16}{total:>10}{failed:>8}")
    total, failed = len(done), sum(a.result is not None for a in done)
    print(f"{'all':<16}{total:>10}{failed:>8}   ({time.perf_counter() - start:.0f} s)")
    for attack in done:
        if attack.result:
            print(f"- [{attack.category}] {attack.name}: {attack.result}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
