"""`predict` on a saved run answers exactly what `evaluate`'s model computes for the same
sequences, whatever the run's preprocessing: standardized or not, (N, L, F) or (N, C, L) arrays,
string or 1-based labels, NaN padding, lengths, and .npy, .npz or .csv inputs."""
import json

import numpy as np
import pytest
import torch

from squareseq.cli import main

TINY = ["--epochs", "3", "--hidden-dim", "3", "--batch-size", "8", "--seed", "5", "--no-figures", "--quiet"]
N_TRAIN, N_TEST, STEPS, FEATURES = 36, 9, 7, 3


def _sequences(n, seed, names=(0, 1, 2), variable=False):
    """``n`` sequences ``(n, STEPS, FEATURES)`` far from zero mean and unit scale (so that
    standardizing matters), their labels drawn from ``names``, and lengths (None unless variable)."""
    rng = np.random.RandomState(seed)
    k = np.arange(n) % len(names)
    x = (50 + 20 * rng.randn(n, STEPS, FEATURES) + 15 * k[:, None, None]).astype(np.float32)
    y = np.array([names[i] for i in k])
    lengths = rng.randint(2, STEPS + 1, size=n) if variable else None
    if lengths is not None:
        lengths[0] = STEPS  # the longest sets L
        x[np.arange(STEPS)[None, :] >= lengths[:, None]] = 0.0
    return x, y, lengths


def _nan_padded(x, lengths):
    x = x.copy()
    x[np.arange(x.shape[1])[None, :] >= lengths[:, None]] = np.nan
    return x


def _train(tmp_path, data, *extra):
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), *TINY, *extra, "--out", str(out)]) == 0
    return out


def _expected(out):
    """The class probabilities of the run's model on its own test split, rebuilt from the run's
    configuration as training built it (standardizer refit on the training part), with its names."""
    from squareseq.runs.data import build_data
    from squareseq.runs.inference import class_probabilities, load_run

    run = load_run(out)
    data = build_data(run.config)
    assert data.class_names == run.class_names
    return class_probabilities(run.model, data.test.model_input()).numpy(), run.class_names


def _predict(capsys, out, *argv):
    """predict's JSON records for the inputs ``argv``, checked against its text lines."""
    capsys.readouterr()
    assert main(["predict", str(out), *argv, "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert main(["predict", str(out), *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ", 1)[1].split(" (P(")[0] for line in lines] == [r["name"] for r in records]
    return records


def _check_same(records, expected, names):
    probs = np.array([[r["probabilities"][name] for name in names] for r in records])
    assert [list(r["probabilities"]) for r in records] == [names] * len(records)
    np.testing.assert_array_equal(probs, expected)  # bit for bit: the same code on the same values
    assert [r["class"] for r in records] == expected.argmax(axis=1).tolist()
    assert [r["name"] for r in records] == [names[k] for k in expected.argmax(axis=1)]


def _raw_probabilities(out, x):
    """What the run's model says for ``x`` fed as it is, with no preprocessing (the old bug)."""
    from squareseq.runs.inference import class_probabilities, load_run

    return class_probabilities(load_run(out).model, torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("standardize", [True, False])
def test_npy_predictions_equal_the_models_on_its_test_split(tmp_path, capsys, standardize):
    x, y, _ = _sequences(N_TRAIN, 1)
    xt, yt, _ = _sequences(N_TEST, 2)
    np.savez(tmp_path / "d.npz", X=x, y=y.astype(np.int64), X_test=xt, y_test=yt.astype(np.int64))
    out = _train(tmp_path, tmp_path / "d.npz", "--standardize" if standardize else "--no-standardize")
    np.save(tmp_path / "test.npy", xt)
    expected, names = _expected(out)
    assert names == ["0", "1", "2"]
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "test.npy")), expected, names)
    raw = _raw_probabilities(out, xt)
    if standardize:  # the inputs the model was trained on differ from the raw ones
        assert np.abs(raw - expected).max() > 1e-3
    else:
        np.testing.assert_array_equal(raw, expected)


def test_ncl_layout(tmp_path, capsys):
    """A run trained on (N, C, L) arrays reads predict's .npy in that layout by default."""
    x, y, _ = _sequences(N_TRAIN, 3)
    xt, yt, _ = _sequences(N_TEST, 4)
    np.savez(tmp_path / "d.npz", X=ncl(x), y=y.astype(np.int64), X_test=ncl(xt), y_test=yt.astype(np.int64))
    out = _train(tmp_path, tmp_path / "d.npz", "--layout", "NCL")
    np.save(tmp_path / "test.npy", ncl(xt))
    expected, names = _expected(out)
    records = _predict(capsys, out, "--input", str(tmp_path / "test.npy"))
    _check_same(records, expected, names)
    np.save(tmp_path / "nlf.npy", xt)  # the same sequences as (N, L, F), said so
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "nlf.npy"), "--layout", "NLF"), expected, names)
    _write_csv(tmp_path / "test.csv", xt, yt, [STEPS] * N_TEST)  # a CSV has a column per feature, whatever the run
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "test.csv")), expected, names)
    assert "drop --layout NCL" in _error(capsys, ["predict", str(out), "--input", str(tmp_path / "test.csv"),
                                                  "--layout", "NCL"])


def ncl(a):
    return np.ascontiguousarray(a.transpose(0, 2, 1))


@pytest.mark.parametrize("labels", [("walking", "running", "sitting"), (1, 2, 3)])
def test_labels_keep_their_names(tmp_path, capsys, labels):
    """String labels and 1-based integers: predict names the classes as the file did."""
    x, y, _ = _sequences(N_TRAIN, 5, names=labels)
    xt, yt, _ = _sequences(N_TEST, 6, names=labels)
    np.savez(tmp_path / "d.npz", X=x, y=y, X_test=xt, y_test=yt)
    out = _train(tmp_path, tmp_path / "d.npz")
    np.save(tmp_path / "test.npy", xt)
    expected, names = _expected(out)
    assert sorted(names) == sorted(str(v) for v in labels)
    records = _predict(capsys, out, "--input", str(tmp_path / "test.npy"))
    _check_same(records, expected, names)
    assert json.loads((out / "metrics.json").read_text())["class_names"] == names


def _variable_run(tmp_path, nan=False):
    x, y, lengths = _sequences(N_TRAIN, 7, variable=True)
    xt, yt, lengths_t = _sequences(N_TEST, 8, variable=True)
    if nan:
        np.savez(tmp_path / "d.npz", X=_nan_padded(x, lengths), y=y.astype(np.int64),
                 X_test=_nan_padded(xt, lengths_t), y_test=yt.astype(np.int64))
    else:
        np.savez(tmp_path / "d.npz", X=x, y=y.astype(np.int64), lengths=lengths, X_test=xt,
                 y_test=yt.astype(np.int64), lengths_test=lengths_t)
    return _train(tmp_path, tmp_path / "d.npz"), xt, lengths_t


def test_nan_padding_gives_lengths(tmp_path, capsys):
    out, xt, lengths_t = _variable_run(tmp_path, nan=True)
    np.save(tmp_path / "test.npy", _nan_padded(xt, lengths_t))
    expected, names = _expected(out)
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "test.npy")), expected, names)


def test_npy_with_lengths_and_npz(tmp_path, capsys):
    """Variable-length sequences as .npy + --lengths, and as an .npz with X and lengths (labels
    in it are ignored): the padding never reaches the model."""
    out, xt, lengths_t = _variable_run(tmp_path)
    expected, names = _expected(out)
    noisy = xt.copy()
    noisy[np.arange(STEPS)[None, :] >= lengths_t[:, None]] = 1e3  # padding that would change the answer if read
    np.save(tmp_path / "test.npy", noisy)
    np.save(tmp_path / "lengths.npy", lengths_t)
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "test.npy"), "--lengths",
                         str(tmp_path / "lengths.npy")), expected, names)
    np.savez(tmp_path / "test.npz", X=noisy, lengths=lengths_t, y=np.zeros(N_TEST, dtype=np.int64))
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "test.npz")), expected, names)


def _write_csv(path, x, y, lengths, split=None, ids="s"):
    rows = ["sequence,step,a,b,c,label" + (",split" if split else "")]
    for i in range(len(x)):
        for t in range(lengths[i]):
            values = ",".join(repr(float(v)) for v in x[i, t])
            rows.append(f"{ids}{i},{t},{values},{y[i]}" + (f",{split[i]}" if split else ""))
    path.write_text("\n".join(rows) + "\n")


def test_csv_run_and_csv_input(tmp_path, capsys):
    """A run trained on a long-format CSV (variable lengths, 1-based labels, its own test part)
    predicts a CSV of the test sequences (label column ignored), naming them by their ids."""
    x, y, lengths = _sequences(N_TRAIN, 9, names=(1, 2, 3), variable=True)
    xt, yt, lengths_t = _sequences(N_TEST, 10, names=(1, 2, 3), variable=True)
    both = np.concatenate([x, xt]), np.concatenate([y, yt]), np.concatenate([lengths, lengths_t])
    _write_csv(tmp_path / "d.csv", *both, split=["train"] * N_TRAIN + ["test"] * N_TEST)
    out = _train(tmp_path, tmp_path / "d.csv")
    _write_csv(tmp_path / "test.csv", xt, yt, lengths_t, ids="t")
    expected, names = _expected(out)
    records = _predict(capsys, out, "--input", str(tmp_path / "test.csv"))
    _check_same(records, expected, names)
    assert [r["sequence"] for r in records] == [f"t{i}" for i in range(N_TEST)]
    assert main(["evaluate", str(out)]) == 0
    own = capsys.readouterr().out.splitlines()[1:]
    assert main(["evaluate", str(out), "--data", str(tmp_path / "test.csv")]) == 0  # labels 1..3 by name
    assert capsys.readouterr().out.splitlines()[1:] == own


@pytest.fixture()
def standardized_run(tmp_path):
    x, y, _ = _sequences(N_TRAIN, 11)
    xt, yt, _ = _sequences(N_TEST, 12)
    np.savez(tmp_path / "d.npz", X=x, y=y.astype(np.int64), X_test=xt, y_test=yt.astype(np.int64))
    return _train(tmp_path, tmp_path / "d.npz"), xt, yt


def test_evaluate_and_predict_share_the_stored_path(standardized_run, capsys):
    """evaluate reads the test split raw and applies the stored preprocessing: bit for bit the
    inputs (and answers) of the refit standardizer, and what predict computes."""
    from squareseq.runs.data import build_data
    from squareseq.runs.evaluation import run_test_split
    from squareseq.runs.inference import class_probabilities, load_run, prepared_split

    out, xt, _ = standardized_run
    run = load_run(out)
    stored = run_test_split(run, run.config)
    refit = build_data(run.config).test
    assert torch.equal(stored.x, refit.x) and torch.equal(stored.y, refit.y)
    direct = prepared_split(run, xt)
    assert torch.equal(class_probabilities(run.model, direct.model_input()),
                       class_probabilities(run.model, stored.model_input()))
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    text = capsys.readouterr().out
    assert "accuracy:" in text and all(f"  {name}: " in text for name in run.class_names)


def test_evaluate_on_another_labelled_file(standardized_run, tmp_path, capsys):
    """evaluate --data FILE: the run's counts on FILE's sequences through the stored preprocessing;
    the test part alone gives the run's own test counts."""
    out, xt, yt = standardized_run
    assert main(["evaluate", str(out)]) == 0
    own = capsys.readouterr().out.splitlines()[1:]
    np.savez(tmp_path / "other.npz", X=xt, y=yt.astype(np.int64))
    assert main(["evaluate", str(out), "--data", str(tmp_path / "other.npz")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(f"({N_TEST} sequences)") and lines[1:] == own


def _error(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err.strip()


def test_bad_inputs_get_one_line(standardized_run, tmp_path, capsys):
    out, xt, yt = standardized_run
    np.save(tmp_path / "x.npy", xt)
    np.save(tmp_path / "two.npy", xt[:, :, :2])
    assert "reads 3 features per step, the input has 2" in _error(
        capsys, ["predict", str(out), "--input", str(tmp_path / "two.npy")])
    np.save(tmp_path / "ncl.npy", np.ascontiguousarray(xt.transpose(0, 2, 1)))
    assert "--layout NCL" in _error(capsys, ["predict", str(out), "--input", str(tmp_path / "ncl.npy")])
    for bad in (0, STEPS + 1):
        lengths = np.full(N_TEST, 3)
        lengths[1] = bad
        np.save(tmp_path / "lengths.npy", lengths)
        line = _error(capsys, ["predict", str(out), "--input", str(tmp_path / "x.npy"), "--lengths",
                               str(tmp_path / "lengths.npy")])
        assert str(bad) in line and f"1..{STEPS}" in line, line
    np.savez(tmp_path / "x.npz", X=xt)
    assert "--lengths" in _error(capsys, ["predict", str(out), "--input", str(tmp_path / "x.npz"), "--lengths",
                                          str(tmp_path / "lengths.npy")])
    assert "--layout" in _error(capsys, ["predict", str(out), "--points", "1,2 3,4", "--layout", "NCL"])
    assert "reads 3 features per step, the input has 2" in _error(capsys, ["predict", str(out), "--points", "1,2"])
    np.savez(tmp_path / "odd.npz", X=xt, y=np.full(N_TEST, 7))
    line = _error(capsys, ["evaluate", str(out), "--data", str(tmp_path / "odd.npz")])
    assert "7" in line and "0, 1, 2" in line, line


def test_an_older_unstandardized_run_reads_inputs_as_they_are(tmp_path, capsys):
    """A --data run without standardizing, from before preprocessing was stored: its inputs go in
    as they are (right for it), its class names from metrics.json."""
    x, y, _ = _sequences(N_TRAIN, 13)
    xt, yt, _ = _sequences(N_TEST, 14)
    np.savez(tmp_path / "d.npz", X=x, y=y.astype(np.int64), X_test=xt, y_test=yt.astype(np.int64))
    out = _train(tmp_path, tmp_path / "d.npz", "--no-standardize")
    expected, names = _expected(out)
    saved = torch.load(out / "checkpoint.pt", weights_only=True)
    del saved["preprocessing"]
    torch.save(saved, out / "checkpoint.pt")
    np.save(tmp_path / "x.npy", xt)
    _check_same(_predict(capsys, out, "--input", str(tmp_path / "x.npy")), expected, names)
    assert main(["evaluate", str(out), "--data", str(tmp_path / "d.npz")]) == 0


def test_a_standardized_run_without_stored_preprocessing_is_refused(standardized_run, tmp_path, capsys):
    """A --data run trained with standardize before the statistics were stored cannot be
    predicted right: one line saying to retrain, instead of wrong answers."""
    out, xt, _ = standardized_run
    for name in ("checkpoint.pt", "best.pt"):  # best.pt (early stopping) is what predict and evaluate read
        if not (out / name).exists():
            continue
        saved = torch.load(out / name, weights_only=True)
        assert saved["preprocessing"]["mean"] is not None
        del saved["preprocessing"]
        torch.save(saved, out / name)
    np.save(tmp_path / "x.npy", xt)
    for argv in (["predict", str(out), "--input", str(tmp_path / "x.npy")], ["evaluate", str(out)]):
        assert "predates stored preprocessing" in _error(capsys, argv)
