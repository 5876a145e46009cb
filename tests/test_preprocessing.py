"""Preprocessing kept with a run, and predict's inputs: what the model sees at prediction time
is bit for bit what it saw in training."""
import json

import numpy as np
import pytest

from squareseq.data import file_checks
from squareseq.data.file_checks import DataFileError
from squareseq.data.files import load_data, stratified_split
from squareseq.data.inputs import read_inputs, read_prepared
from squareseq.data.preprocessing import Preprocessing


def _nan_padded(n=24, C=3, L=9, seed=0):
    """(N, C, L) float64 with NaN padding (aeon's convention), classes as text."""
    rng = np.random.RandomState(seed)
    X = rng.randn(n, C, L) * 5 + 3
    lengths = rng.randint(2, L + 1, size=n)
    lengths[0] = L
    for i, k in enumerate(lengths):
        X[i, :, k:] = np.nan
    y = np.array(["walk", "run", "sit"])[np.arange(n) % 3]
    return X, y, lengths


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("val_fraction", [0.0, 0.25])
def test_prepare_repeats_training_bit_for_bit(tmp_path, standardize, val_fraction):
    """A file test set run through the stored preprocessing equals what training evaluated on."""
    X, y, lengths = _nan_padded()
    Xt, yt, lengths_t = _nan_padded(12, seed=1)
    path = tmp_path / "d.npz"
    np.savez(path, X=X, y=y, X_test=Xt, y_test=yt)
    data = load_data(path, standardize=standardize, val_fraction=val_fraction)
    assert data.layout == "NCL" and data.class_names == ["run", "sit", "walk"]
    stored = json.loads(json.dumps(data.preprocessing.to_dict()))
    prep = Preprocessing.from_dict(stored, "run")
    assert prep == data.preprocessing
    out, out_lengths = prep.prepare(Xt)
    assert out.dtype == np.float32 and out.tobytes() == data.X_test.tobytes()
    assert out_lengths.tolist() == data.lengths_test.tolist() == lengths_t.tolist()
    np.save(tmp_path / "in.npy", Xt)
    again, again_lengths = read_prepared(tmp_path / "in.npy", prep)
    assert again.tobytes() == data.X_test.tobytes() and again_lengths.tolist() == lengths_t.tolist()


def test_prepare_repeats_a_stratified_split(tmp_path):
    """Without a file test set the held-out sequences are the stratified split's rows."""
    X, y, lengths = _nan_padded(30)
    path = tmp_path / "d.npz"
    np.savez(path, X=X.transpose(0, 2, 1), y=np.arange(30) % 3 + 1, lengths=lengths)
    data = load_data(path, standardize=True, seed=4)
    assert data.layout == "NLF" and data.class_names == ["1", "2", "3"]
    _, test = stratified_split(np.arange(30) % 3, 0.2, 4)
    out, out_lengths = data.preprocessing.prepare(X.transpose(0, 2, 1)[test], lengths[test])
    assert out.tobytes() == data.X_test.tobytes() and out_lengths.tolist() == data.lengths_test.tolist()


def _prep(**changes):
    d = Preprocessing("NLF", 2, ["a", "b"], [0.5, -1.0], [1.0, 2.0]).to_dict()
    d.update(changes)
    return d


@pytest.mark.parametrize("d, message", [
    ("nope", "must be a dict with keys ['class_names', 'layout', 'mean', 'n_features', 'std'], got str"),
    ({"layout": "NLF"}, "must be a dict with keys ['class_names', 'layout', 'mean', 'n_features', 'std'], got "
                        "['layout']"),
    (_prep(layout="LNF"), "layout must be one of NLF, NCL, got 'LNF'"),
    (_prep(n_features=0), "n_features must be a positive integer, got 0"),
    (_prep(n_features=True), "n_features must be a positive integer, got True"),
    (_prep(class_names=["a", "a"]), "class_names must be a list of distinct strings"),
    (_prep(class_names=["a", 1]), "class_names must be a list of distinct strings"),
    (_prep(mean=None), "mean and std must be given together or both be null"),
    (_prep(mean=[0.0]), "mean must be a list of 2 numbers (one per feature)"),
    (_prep(mean=[0.0, float("nan")]), "mean holds nan; expected finite numbers"),
    (_prep(std=[1.0, 0.0]), "std holds 0.0; expected finite positive numbers"),
    (_prep(std=[1.0, "2"]), "std holds '2'; expected finite positive numbers"),
])
def test_from_dict_refuses_a_damaged_record_in_one_line(d, message):
    with pytest.raises(DataFileError) as info:
        Preprocessing.from_dict(d, "run/checkpoint.pt")
    assert str(info.value) == (f"run/checkpoint.pt: preprocessing {message}; the run's record is damaged: train the "
                               "run again")


def test_from_dict_takes_an_unstandardized_record():
    d = _prep(mean=None, std=None)
    prep = Preprocessing.from_dict(d)
    assert prep.standardizer is None and prep.to_dict() == d
    X = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
    out, lengths = prep.prepare(X)
    assert lengths is None and out.tolist() == X.tolist() and out.dtype == np.float32


def test_prepare_refuses_inputs_unlike_the_training_data():
    prep = Preprocessing("NCL", 3, ["a", "b"])
    with pytest.raises(DataFileError) as info:
        prep.prepare(np.zeros((2, 4, 5)))
    assert str(info.value) == ("input: has 4 feature(s) per step in layout NCL, but the model was trained on 3; give "
                               "inputs shaped like the training data")
    with pytest.raises(DataFileError) as info:
        prep.prepare(np.zeros((2, 3)))
    assert str(info.value) == ("input: expected a numeric array of shape (N, C, L) with at least one sequence, step "
                               "and feature, got float64 (2, 3)")
    with pytest.raises(DataFileError) as info:
        prep.prepare(np.zeros((2, 3, 5)), np.array([5, 6]))
    assert str(info.value) == "input: lengths must lie in 1..5 (the padded length L), got 6 at index 1"
    out, lengths = prep.prepare(np.ones((2, 5, 3)), np.array([5, 2]), layout="NLF")
    assert lengths.tolist() == [5, 2] and out[1, 2:].sum() == 0 and out[1, :2].sum() == 6


# -- predict's inputs -----------------------------------------------------------------------------


def test_read_inputs_npy_with_a_lengths_file(tmp_path):
    X = np.random.RandomState(0).randn(4, 6, 2)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "n.npy", np.array([6, 3, 1, 6]))
    out, lengths = read_inputs(tmp_path / "x.npy", lengths_path=tmp_path / "n.npy")
    assert out.shape == (4, 6, 2) and out.dtype == np.float32 and lengths.tolist() == [6, 3, 1, 6]
    assert out[1, 3:].sum() == 0 and np.array_equal(out[0], X[0].astype(np.float32))
    out, lengths = read_inputs(tmp_path / "x.npy", layout="NCL")  # 2 channels of 6 steps, read as given
    assert out.shape == (4, 2, 6) and lengths is None


def test_read_inputs_npz_and_csv_ignore_labels(tmp_path):
    X = np.random.RandomState(1).randn(3, 2, 7)  # (N, C, L): 7 steps of 2 channels
    np.savez(tmp_path / "x.npz", X=X, y=np.array(["a", "b", "a"]), lengths=np.array([7, 2, 5]))
    out, lengths = read_inputs(tmp_path / "x.npz")
    assert out.shape == (3, 7, 2) and lengths.tolist() == [7, 2, 5]
    assert np.array_equal(out[0], X[0].T.astype(np.float32))
    csv = tmp_path / "x.csv"
    csv.write_text("sequence,step,x,label\na,0,1,0\nb,0,3,1\na,1,2,0\n")
    out, lengths = read_inputs(csv)
    assert out[:, :, 0].tolist() == [[1, 2], [3, 0]] and lengths.tolist() == [2, 1] and out.dtype == np.float32


def test_read_inputs_errors_are_one_line(tmp_path, monkeypatch):
    np.save(tmp_path / "x.npy", np.zeros((2, 5, 3)))
    np.savez(tmp_path / "both.npz", X=np.zeros((2, 5, 3)), lengths=np.array([5, 5]))
    np.save(tmp_path / "obj.npy", np.array([{}, 1], dtype=object))
    np.save(tmp_path / "n.npy", np.array([5.0, 5.0]))
    cases = {
        (tmp_path / "x.txt", None): f"{tmp_path / 'x.txt'}: unsupported input type '.txt'; use .npy, .npz, .csv",
        (tmp_path / "gone.npy", None): f"{tmp_path / 'gone.npy'}: no such file; give a .npy, .npz, .csv file",
        (tmp_path / "obj.npy", None): f"{tmp_path / 'obj.npy'} holds Python objects (pickled); save plain numeric "
                                      "arrays",
        (tmp_path / "both.npz", tmp_path / "n.npy"): f"{tmp_path / 'both.npz'}: holds lengths and a lengths file was "
                                                     "given too; give one of them",
        (tmp_path / "x.npy", tmp_path / "n.npy"): f"{tmp_path / 'n.npy'}: the lengths must be integers with shape "
                                                  "(N,) = (2,), got float64 (2,)",
    }
    for (path, lengths_path), message in cases.items():
        with pytest.raises(DataFileError) as info:
            read_inputs(path, lengths_path=lengths_path)
        assert str(info.value) == message
    monkeypatch.setattr(file_checks, "MAX_PADDED_VALUES", 29)
    with pytest.raises(DataFileError) as info:
        read_inputs(tmp_path / "x.npy")
    assert str(info.value) == (f"{tmp_path / 'x.npy'}: has shape 2 x 5 x 3 = 30 values; squareseq reads at most 29 "
                               "(squareseq.data.file_checks.MAX_PADDED_VALUES): use fewer or shorter sequences, or "
                               "split them over several files")


# -- a file run keeps its preprocessing -----------------------------------------------------------------


def test_a_file_run_has_a_validation_split_names_and_stored_preprocessing(tmp_path):
    from squareseq.cli import main
    from squareseq.config import RunConfig
    from squareseq.runs.data import build_data
    from squareseq.training import checkpoint

    X, y, _ = _nan_padded(40, C=2, L=7)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    data = build_data(RunConfig(data=str(tmp_path / "d.npz")))
    assert data.class_names == ["run", "sit", "walk"] and data.summary["layout"] == "NCL"
    assert "layout_note" not in data.summary  # the NaN padding told the layout: nothing to notice
    assert data.summary["n_val"] == len(data.val) == 6 and len(data.train) == 25 and len(data.test) == 9
    assert data.val.x.shape[1:] == (7, 2) and data.preprocessing["layout"] == "NCL"
    assert data.preprocessing["mean"] is not None  # --data standardizes by default
    assert data.with_float_labels().val.y.shape == (6, 1)
    assert build_data(RunConfig(data=str(tmp_path / "d.npz"), val_fraction=0.0, early_stopping=0)).val is None
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--hidden-dim", "4", "--no-figures",
                 "--quiet", "--out", str(run)]) == 0
    stored = checkpoint.load(run / "checkpoint.pt")["preprocessing"]
    assert Preprocessing.from_dict(stored).to_dict() == data.preprocessing


def test_ts_files_go_to_the_ts_reader(tmp_path):
    pytest.importorskip("squareseq.data.ts_files")
    pytest.importorskip("aeon")
    from aeon.datasets import save_to_ts_file

    X = np.random.RandomState(0).randn(12, 2, 9)
    y = np.array(["a", "b", "c"])[np.arange(12) % 3]
    save_to_ts_file(X, y=y, label_type="classification", path=str(tmp_path), problem_name="toy")
    data = load_data(tmp_path / "toy.ts")
    assert data.class_names == ["a", "b", "c"] and data.n_features == 2 and data.seq_len == 9
