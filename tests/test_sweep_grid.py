"""`squareseq sweep` over settings grids and own data: grid parsing, the batched fast path kept
exactly, run-by-run settings trained by the one training core, validation vs test labelling."""
import csv
import json
import math

import numpy as np
import pytest

from squareseq.cli import main
from squareseq.cli.parser import build_parser
from squareseq.config import RunConfig, RunOptions
from squareseq.errors import ConfigError, SquareseqError
from squareseq.runs.data import Split, build_data
from squareseq.runs.experiment import evaluate, run_experiment
from squareseq.runs.grid import GRID_FIELDS, MAX_SETTINGS, check_sweep_size, expand_grid
from squareseq.runs.sweep_report import MAX_SERIES, format_table, plot_settings, sweep_dict, sweep_rows
from squareseq.runs.sweep_train import VALIDATION_SPLIT, VALIDATION_TEST, plan_sweep, run_sweep, train_one
from squareseq.training.guard import NonFiniteLossError
from squareseq.training.many import train_many

QUICK = ["--epochs", "2", "--n-train", "32", "--n-test", "16", "--no-figures"]


def _error(capsys, argv):
    """Runs argv, expects exit 2 and exactly one line on stderr; returns that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    """A tiny two-class file: 40 sequences of 6 steps and 2 features, classes shifted apart."""
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 20)
    x = (rng.normal(size=(40, 6, 2)) + 0.7 * y[:, None, None]).astype(np.float32)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, X=x, y=y)
    return str(path)


def _sweep_config(path, **changes):
    return {"data": path, "epochs": 3, "early_stopping": 0, **changes}


# --- grid parsing ---------------------------------------------------------------------------------

def test_comma_lists_make_the_cartesian_product_of_checked_values():
    args = build_parser().parse_args(["sweep", "--hidden-dim", "8,32", "--lr", "0.01,0.003"])
    assert args.hidden_dim == (8, 32) and args.lr == (0.01, 0.003)
    fields = {name: getattr(args, name) for name in ("hidden_dim", "lr", "epochs")}
    settings = expand_grid(fields)
    assert [(s.values["lr"], s.values["hidden_dim"]) for s in settings] == [
        (0.01, 8), (0.01, 32), (0.003, 8), (0.003, 32)]
    assert all(s.config.lr == s.values["lr"] and s.config.hidden_dim == s.values["hidden_dim"] for s in settings)
    assert settings[1].label() == "--lr 0.01 --hidden-dim 32"
    assert set(settings[0].values) == set(GRID_FIELDS) and settings[0].varying == ("lr", "hidden_dim")
    assert expand_grid({"hidden_dim": (8,)})[0].label() == "the one setting"


def test_train_parses_one_value_as_before():
    assert build_parser().parse_args(["train", "--hidden-dim", "8"]).hidden_dim == 8
    with pytest.raises(SquareseqError, match="--hidden-dim"):
        build_parser().parse_args(["train", "--hidden-dim", "8,32"])


@pytest.mark.parametrize("argv,expected", [
    (["--hidden-dim", "8,,32"], "argument --hidden-dim: an empty item in '8,,32'"),
    (["--hidden-dim", "8,x"], "argument --hidden-dim: expected an integer in [1, 4096], got 'x' (in '8,x')"),
    (["--lr", "0.01,1e-2"], "argument --lr: '1e-2' repeats a value in '0.01,1e-2'"),
    (["--epochs", "10,20"], "argument --epochs: takes one value, got the list '10,20'; a sweep takes comma lists "
                            "for --batch-size, --lr, --hidden-dim, --num-layers, --weight-decay only"),
    (["--hidden-dim", ",".join(map(str, range(1, 18))), "--lr", ",".join(map(str, range(1, 17)))],
     f"the grid holds 16 x 17 = 272 settings; a sweep takes at most {MAX_SETTINGS} (MAX_SETTINGS)"),
    (["--model", "square-conv1d", "--num-layers", "1,2"], "setting --num-layers 2: --model square-conv1d is the "
                                                          "book's one-layer convolution"),
    (["--model", "gru", "--num-layers", "1,2", "--seeds", "0-255"],
     "2 settings x 256 seeds = 512 models; a sweep trains at most 256 models one by one (MAX_SEPARATE_RUNS)"),
])
def test_bad_grids_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, argv, expected):
    out = tmp_path / "sweep"
    assert expected in _error(capsys, ["sweep", *argv, *QUICK, "--out", str(out)])
    assert not out.exists()


def test_a_bad_data_file_is_refused_as_train_refuses_it(tmp_path, capsys):
    bad = tmp_path / "missing.npz"
    sweep_line = _error(capsys, ["sweep", "--data", str(bad), "--hidden-dim", "4,8", "--out", str(tmp_path / "s")])
    train_line = _error(capsys, ["train", "--data", str(bad), "--out", str(tmp_path / "t")])
    assert sweep_line == train_line
    assert not (tmp_path / "s").exists()


def test_library_grid_errors():
    with pytest.raises(ConfigError, match="epochs takes one value in a sweep"):
        expand_grid({"epochs": (1, 2)})
    with pytest.raises(ConfigError, match="empty list"):
        expand_grid({"lr": ()})
    with pytest.raises(ConfigError, match="repeats a value"):
        expand_grid({"lr": [0.1, 0.1]})
    with pytest.raises(SquareseqError, match="300 seeds = 300 models.*give fewer seeds$"):
        check_sweep_size(1, 300, separate=True)
    check_sweep_size(2, 128, separate=True)  # 256: at the bound


# --- the batched fast path --------------------------------------------------------------------------

@pytest.mark.exact
def test_a_one_setting_sweep_writes_todays_numbers(tmp_path, capsys):
    """Same keys and values as the seed sweep always wrote (train_many's), plus the new keys; the counts are those
    the seed sweep gave before grids existed."""
    out = tmp_path / "sweep"
    assert main(["sweep", "--seeds", "0-3", *QUICK, "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("4 seeds: test accuracy min 0.312")
    written = json.loads((out / "sweep.json").read_text())
    expected = json.loads(json.dumps(train_many("0-3", RunConfig(epochs=2, n_train=32, n_test=16)).as_dict()))
    for key in ("config", "summary", "seeds"):
        assert written[key] == expected[key]
    assert [s["correct_per_class"] for s in written["seeds"]] == [
        [[3, 5], [4, 11]], [[4, 5], [6, 11]], [[5, 5], [2, 11]], [[5, 5], [0, 11]]]
    assert written["validation"] == VALIDATION_TEST and written["best"]["index"] == 0
    (setting,) = written["settings"]
    assert setting["batched"] and [s["val_accuracy"] for s in setting["seeds"]] == [0.4375, 0.625, 0.4375, 0.3125]
    assert setting["val_accuracy"]["mean"] == pytest.approx(0.453125)
    with open(out / "sweep.csv") as f:
        assert next(csv.reader(f))[:3] == ["seed", "correct_0", "total_0"]  # the seed sweep's columns


def test_each_batched_setting_is_train_many_of_its_config():
    settings = expand_grid({"epochs": 2, "n_train": 32, "n_test": 16, "hidden_dim": (2, 3)})
    plan = plan_sweep(settings, [0, 1])
    assert plan.batched == [True, True] and plan.data is None
    result = run_sweep(plan)
    for setting in result.settings:
        assert setting.test_accuracy == train_many([0, 1], setting.setting.config).accuracy


# --- run by run: the one training core ---------------------------------------------------------------

def test_a_data_sweep_equals_separate_train_runs(npz, tmp_path, capsys):
    """2 settings x 2 seeds on a file: every model's accuracies are those of `run_experiment` of its config."""
    out = tmp_path / "sweep"
    assert main(["sweep", "--data", npz, "--epochs", "3", "--early-stopping", "0", "--hidden-dim", "3,5",
                 "--seeds", "0-1", "--no-figures", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    written = json.loads((out / "sweep.json").read_text())
    assert [s["setting"]["hidden_dim"] for s in written["settings"]] == [3, 5]
    for setting in written["settings"]:
        assert not setting["batched"] and [s["seed"] for s in setting["seeds"]] == [0, 1]
        for record in setting["seeds"]:
            config = RunConfig(**_sweep_config(npz, hidden_dim=setting["setting"]["hidden_dim"], seed=record["seed"]))
            metrics = run_experiment(config, RunOptions(run_dir=None, handle_signals=False)).metrics
            assert record["test_accuracy"] == metrics["test"]["accuracy"]
            assert record["val_accuracy"] == metrics.get("val", metrics["test"])["accuracy"]
            assert record["test_correct_per_class"] == metrics["test"]["correct_per_class"]
    has_val = getattr(build_data(RunConfig(**_sweep_config(npz))), "val", None) is not None
    assert written["validation"] == (VALIDATION_SPLIT if has_val else VALIDATION_TEST)
    rows = list(csv.DictReader(open(out / "sweep.csv")))
    assert [(r["hidden_dim"], r["seed"]) for r in rows] == [("3", "0"), ("3", "1"), ("5", "0"), ("5", "1")]
    best = written["best"]["label"]
    assert best in (s["label"] for s in written["settings"])
    assert any(line.startswith("* " + best) and line.endswith("<- best") for line in captured.out.splitlines())
    assert "[4/4] --hidden-dim 5, seed 1:" in captured.err


def test_a_mixed_grid_batches_what_it_can_and_trains_the_rest_run_by_run():
    settings = expand_grid({"epochs": 2, "n_train": 32, "n_test": 16, "model": "gru", "num_layers": (1, 2)})
    plan = plan_sweep(settings, [3])
    assert plan.batched == [True, False]
    result = run_sweep(plan)
    assert result.settings[0].test_accuracy == train_many([3], settings[0].config).accuracy
    separate = run_experiment(settings[1].config.replace(seed=3), RunOptions(run_dir=None, handle_signals=False))
    assert result.settings[1].test_accuracy == [separate.metrics["test"]["accuracy"]]


@pytest.fixture(scope="module")
def three_classes(tmp_path_factory):
    """Three classes (a loss on class indices, so the data's splits pass to the trainer unchanged)."""
    rng = np.random.default_rng(1)
    y = np.tile([0, 1, 2], 14)
    x = (rng.normal(size=(42, 5, 2)) + 0.8 * y[:, None, None]).astype(np.float32)
    path = tmp_path_factory.mktemp("data3") / "three.npz"
    np.savez(path, X=x, y=y)
    return str(path)


def test_settings_are_judged_on_the_validation_split_and_the_test_set_is_labelled(three_classes):
    settings = expand_grid(_sweep_config(three_classes, hidden_dim=(2, 4)))
    data = build_data(settings[0].config)
    data.val = Split(data.train.x[:12], data.train.y[:12], None)  # a validation split unlike the test set
    result = run_sweep(plan_sweep(settings, [0, 1], data=data))
    assert result.validation == VALIDATION_SPLIT
    differs = False
    for r in result.settings:
        for i, seed in enumerate(r.seeds):
            trainer, prepared = train_one(r.setting.config.replace(seed=seed), data)
            assert r.val_accuracy[i] == evaluate(trainer.model, data.val, data.n_classes)["accuracy"]
            assert r.test_accuracy[i] == evaluate(trainer.model, prepared.test, data.n_classes)["accuracy"]
            differs |= r.val_accuracy[i] != r.test_accuracy[i]
    assert differs  # the test would not tell validation from test otherwise
    table = format_table(result)
    assert "judged by validation accuracy" in table and "test set" not in table.splitlines()[0]
    assert table.splitlines()[1].split() == ["setting", "validation", "test"]
    assert sweep_dict(result)["validation"] == "split"
    assert {row["validation"] for row in sweep_rows(result)} == {"split"}

    on_test = run_sweep(plan_sweep(expand_grid(_sweep_config(three_classes, hidden_dim=(2, 4), val_fraction=0.0)),
                                   [0]))  # no validation split: the book's way
    assert on_test.validation == VALIDATION_TEST
    assert all(r.val_accuracy == r.test_accuracy for r in on_test.settings)
    head = format_table(on_test).splitlines()[0]
    assert "test accuracy (no validation split" in head and "--val-fraction" in head
    assert sweep_dict(on_test)["validation"] == "test set"


def test_a_diverged_model_is_recorded_and_its_setting_never_wins(three_classes, monkeypatch):
    import squareseq.runs.sweep_train as sweep_train

    settings = expand_grid(_sweep_config(three_classes, lr=(0.5, 0.01)))
    plan = plan_sweep(settings, [0, 1])

    def train_or_fail(config, data, threads="auto", device="cpu"):
        if config.lr == 0.5 and config.seed == 1:
            raise NonFiniteLossError("loss is nan at epoch 1, step 1", 1, 1)
        return train_one(config, data, threads, device)

    monkeypatch.setattr(sweep_train, "train_one", train_or_fail)
    result = run_sweep(plan)
    first = result.settings[0]
    assert first.failures == {1: "loss is nan at epoch 1, step 1"} and math.isnan(first.val_accuracy[1])
    assert result.best == 1 and math.isnan(sweep_dict(result)["settings"][0]["val_accuracy"]["mean"])
    assert "(1 of 2 seeds diverged)" in format_table(result)


def test_the_histogram_draws_one_series_per_setting_at_most_max_series(three_classes):
    import matplotlib

    matplotlib.use("Agg")
    settings = expand_grid(_sweep_config(three_classes, epochs=1, hidden_dim=tuple(range(1, MAX_SERIES + 2))))
    result = run_sweep(plan_sweep(settings, [0]))
    fig = plot_settings(result)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert len(labels) == MAX_SERIES and sum("(best)" in label for label in labels) == 1
    assert f"the {MAX_SERIES} best of {MAX_SERIES + 1} settings" in fig.axes[0].get_title()
