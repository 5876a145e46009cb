"""What figures, replays and the report add to the default ``squareseq train`` run.

Times, on the tutorial's settings (128 training sequences, 100 epochs, batch 16, Adam lr=0.01,
test set of 128 as validation and as the replay's sample):

* the training loop without and with the :class:`~squareseq.figures.replay.SnapshotRecorder`
  callback (best of ``--repeats`` interleaved runs), and the time spent inside the recorder itself
  (robust on a busy machine, where the A/B difference of two loops is mostly noise);
* writing every PNG, writing the two GIFs, writing ``report.html``;
* each one's share of the whole run.

Usage: ``python benchmarks/bench_figures.py [--repeats 5]``. Single-threaded torch, CPU.

``--whole-runs N`` instead times whole ``squareseq train`` processes (CPU and wall, ``--no-figures``,
``--no-animation`` and the default with GIFs, the figure phase per file), ``N`` of each, interleaved
with those of ``--baseline-src DIR`` (another checkout's ``src``, e.g. ``git archive`` of an older
commit) when given; see ``_whole_run.py``.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from squareseq import SquareModel, StepByStep, make_sequences, to_tensors  # noqa: E402
from squareseq import metrics as M  # noqa: E402
from squareseq.figures.replay import SnapshotRecorder, compute_frames, write_gif  # noqa: E402
from squareseq.figures.run_figures import ANIMATIONS, write_figures  # noqa: E402
from squareseq.runs.page import write_report  # noqa: E402


def train_once(train, test, record: bool):
    """The tutorial's experiment; returns (seconds in sbs.train, trainer, recorder or None)."""
    x, y, _ = to_tensors(*train)
    tx, ty, _ = to_tensors(*test)
    torch.manual_seed(21)
    model = SquareModel(2, 2, 1)
    sbs = StepByStep(model, nn.BCEWithLogitsLoss(), torch.optim.Adam(model.parameters(), lr=0.01))
    sbs.set_loaders(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True),
                    DataLoader(TensorDataset(tx, ty), batch_size=16))
    recorder = SnapshotRecorder(tx, ty) if record else None
    if recorder is not None:
        sbs.add_callback(recorder)
        recorder.seconds = 0.0  # time spent inside record(): the overhead, measured directly
        record_fn = recorder.record

        def timed_record(model, epoch):
            start = time.perf_counter()
            record_fn(model, epoch)
            recorder.seconds += time.perf_counter() - start

        recorder.record = timed_record
    start = time.perf_counter()
    sbs.train(100, seed=42)
    return time.perf_counter() - start, sbs, recorder


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="training runs per variant (default: 5)")
    parser.add_argument("--whole-runs", type=int, default=0, metavar="N",
                        help="time N whole `squareseq train` processes per variant instead")
    parser.add_argument("--baseline-src", default=None, metavar="DIR",
                        help="with --whole-runs: another checkout's src folder to compare with")
    args = parser.parse_args()
    if args.whole_runs:
        from _whole_run import trees_of, whole_runs

        print(whole_runs(trees_of(args.baseline_src, Path(__file__).resolve().parents[1] / "src"), args.whole_runs))
        return
    torch.set_num_threads(1)
    train, test = make_sequences(128, seed=13), make_sequences(128, seed=19)

    plain, recorded, inside = [], [], []
    train_once(train, test, record=False)  # warm-up: imports, allocator, first-call costs
    for _ in range(args.repeats):  # interleaved, so drifts in machine load hit both alike
        plain.append(train_once(train, test, record=False)[0])
        seconds, sbs, recorder = train_once(train, test, record=True)
        recorded.append(seconds)
        inside.append(recorder.seconds)
    t_plain, t_rec, t_inside = min(plain), min(recorded), min(inside)

    tx, ty, _ = to_tensors(*test)
    with torch.no_grad():
        counts = M.correct_per_class(sbs.model(tx), ty)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp)
        (run_dir / "metrics.json").write_text(json.dumps({
            "test": {"correct_per_class": counts.tolist(), "accuracy": M.accuracy(counts)},
            "epochs": 100, **sbs.history.as_dict(), "config": {"n_train": 128, "n_test": 128}}))
        t_save, _ = timed(lambda: recorder.snapshots.save(run_dir / "snapshots.pt"))
        t_png, pngs = timed(lambda: write_figures(run_dir, sbs.model, train, test, sbs.history, animation=False))
        t_frames, frames = timed(lambda: compute_frames(recorder.snapshots, sbs.history))
        t_gifs = {}
        for name, kind, _, _ in ANIMATIONS:
            t_gifs[name], _ = timed(lambda: write_gif(frames, sbs.history, run_dir / name, kind=kind))
        t_html, page = timed(lambda: write_report(run_dir))
        sizes = {p.name: p.stat().st_size for p in run_dir.iterdir()}

    t_gif_all = t_frames + sum(t_gifs.values())
    total = t_rec + t_save + t_png + t_gif_all + t_html
    rows = [
        ("training loop, no recorder", t_plain),
        ("training loop + SnapshotRecorder", t_rec),
        ("  difference (noisy)", t_rec - t_plain),
        ("  time inside the recorder", t_inside),
        ("save snapshots.pt", t_save),
        (f"write {len(pngs)} PNGs", t_png),
        ("compute replay frames (arrays)", t_frames),
        *[(f"write {name}", t) for name, t in t_gifs.items()],
        ("write report.html", t_html),
    ]
    print(f"squareseq figures benchmark: tutorial run (128 seqs, 100 epochs, batch 16), "
          f"torch {torch.__version__}, 1 thread, best of {args.repeats}")
    print(f"{'step':<36}{'seconds':>9}{'share':>8}")
    for name, seconds in rows:
        print(f"{name:<36}{seconds:>9.3f}{100 * seconds / total:>7.1f}%")
    print(f"{'total (recorded run + outputs)':<36}{total:>9.3f}{100.0:>7.1f}%")
    n_snaps = len(recorder.snapshots)
    print(f"recorder overhead: {100 * t_inside / t_plain:.1f}% of the training loop measured inside the "
          f"callback ({1000 * t_inside / n_snaps:.2f} ms per snapshot, {n_snaps} snapshots); "
          f"A/B difference of the loops {100 * (t_rec / t_plain - 1):+.1f}%")
    print(f"figures + GIFs + report: {t_png + t_gif_all + t_html + t_save:.2f} s, "
          f"{(t_png + t_gif_all + t_html + t_save) / t_rec:.1f}x the training loop")
    print("sizes: " + ", ".join(f"{k} {v / 1024:.0f} KiB" for k, v in sorted(sizes.items())))


if __name__ == "__main__":
    main()
