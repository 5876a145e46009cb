"""SequenceClassifier: the scikit-learn estimator on squareseq's training core. Inputs (3-D in
either layout, 2-D univariate, lists of variable-length sequences, NaN padding), labels of any
type, exact reproducibility and warm starts, pickling and safe files, bad input in one line."""
import pickle
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from squareseq import SequenceClassifier  # noqa: E402
from squareseq.config import DATA_DEFAULTS, DEFAULT_LAYERS  # noqa: E402
from squareseq.data.squares import make_sequences  # noqa: E402
from squareseq.errors import ConfigError, DataError, SquareseqError  # noqa: E402
from squareseq.training.checkpoint import CheckpointError  # noqa: E402

#: Small and fast: a few epochs of a small GRU on the CPU.
FAST = dict(model="gru", hidden_dim=6, epochs=3, lr=0.05, val_fraction=0.0, early_stopping=0, device="cpu",
            threads=1)


def squares(n=64, variable_len=True, task="corner-direction", seed=3):
    points, labels = make_sequences(n, variable_len=variable_len, seed=seed, task=task)
    return points, np.asarray(labels)


def series(n=40, channels=2, steps=12, seed=0):
    """(N, C, L) series whose class is the sign of the first channel's mean (learnable)."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    X = rng.normal(size=(n, channels, steps))
    X[:, 0] += np.where(y == 1, 1.0, -1.0)[:, None]
    return X, y


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text and "Traceback" not in text
    return text


# -- parameters ---------------------------------------------------------------------------------


def test_constructor_only_stores_hyperparameters_and_defaults_are_the_data_defaults():
    clf = SequenceClassifier(hidden_dim=-5, model="nonsense")  # no validation in __init__ (sklearn's rule)
    assert clf.get_params()["hidden_dim"] == -5 and clf.get_params()["model"] == "nonsense"
    defaults = SequenceClassifier().get_params()
    assert {k: defaults[k] for k in DATA_DEFAULTS} == DATA_DEFAULTS
    assert defaults["num_layers"] is None and DEFAULT_LAYERS["conv1d"] == 3
    copy = clone(SequenceClassifier(**FAST))
    assert copy.get_params() == SequenceClassifier(**FAST).get_params()
    assert copy.set_params(hidden_dim=9).hidden_dim == 9


def test_a_bad_hyperparameter_is_one_line_naming_it():
    X, y = series()
    with pytest.raises(ConfigError, match="hidden_dim must be") as info:
        SequenceClassifier(**{**FAST, "hidden_dim": 0}).fit(X, y)
    one_line(info.value)
    with pytest.raises(ConfigError, match="early_stopping") as info:
        SequenceClassifier(**{**FAST, "early_stopping": 5}).fit(X, y)  # needs a validation split
    one_line(info.value)


# -- inputs -------------------------------------------------------------------------------------


def test_ncl_layout_gives_the_same_model_as_the_same_data_in_nlf():
    X, y = series()
    a = SequenceClassifier(**FAST, layout="NCL").fit(X, y)
    b = SequenceClassifier(**FAST, layout="NLF").fit(X.transpose(0, 2, 1), y)
    assert a.layout_ == "NCL" and b.layout_ == "NLF" and a.n_features_in_ == b.n_features_in_ == 2
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X.transpose(0, 2, 1)))
    auto = SequenceClassifier(**FAST).fit(X, y)  # (40, 2, 12): more steps than channels reads as NCL
    assert auto.layout_ == "NCL"


def test_variable_length_lists_multiclass_probabilities_and_labels():
    points, labels = squares()
    clf = SequenceClassifier(**FAST).fit(points, labels)
    assert clf.classes_.tolist() == list(range(8)) and clf.n_features_in_ == 2
    proba = clf.predict_proba(points)
    assert proba.shape == (64, 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert set(clf.predict(points)) <= set(clf.classes_)
    assert 0.0 <= clf.score(points, labels) <= 1.0


def test_nan_padding_reads_as_the_list_of_sequences_it_pads():
    points, labels = squares()
    padded = np.full((len(points), 4, 2), np.nan)
    for i, p in enumerate(points):
        padded[i, : len(p)] = p
    a = SequenceClassifier(**FAST).fit(points, labels)
    b = SequenceClassifier(**FAST, layout="NLF").fit(padded, labels)
    np.testing.assert_array_equal(a.predict_proba(points), b.predict_proba(padded))


def test_two_d_input_is_univariate_sequences():
    X, y = series(channels=1)
    a = SequenceClassifier(**FAST).fit(X[:, 0, :], y)
    b = SequenceClassifier(**FAST, layout="NLF").fit(X.transpose(0, 2, 1), y)
    assert a.n_features_in_ == 1
    np.testing.assert_array_equal(a.predict_proba(X[:, 0, :]), b.predict_proba(X.transpose(0, 2, 1)))
    assert a.predict(X[:5, 0, :7]).shape == (5,)  # any length: a sequence model


@pytest.mark.parametrize("labels, classes", [
    (["walk", "run", "sit"], ["run", "sit", "walk"]),
    (["10", "2", "1"], ["1", "2", "10"]),  # integer text in numeric order, as a file's labels
    ([-1, 7, 3], [-1, 3, 7]),
    ([2.0, 0.0, 1.0], [0.0, 1.0, 2.0]),
])
def test_any_label_type_is_kept_in_squareseqs_class_order(labels, classes):
    X, _ = series(n=30)
    y = np.array(labels * 10)
    clf = SequenceClassifier(**FAST).fit(X, y)
    assert clf.classes_.tolist() == classes
    assert set(clf.predict(X).tolist()) <= set(classes)
    assert clf.predict_proba(X).shape == (30, 3)


def test_binary_probabilities_have_two_columns_in_class_order():
    X, y = series()
    clf = SequenceClassifier(**{**FAST, "epochs": 20}).fit(X, np.where(y == 1, "pos", "neg"))
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 2) and clf.classes_.tolist() == ["neg", "pos"]
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    assert clf.score(X, np.where(y == 1, "pos", "neg")) > 0.8  # the first channel's sign is learnt
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("X, y, error, match", [
    (np.zeros(10), np.arange(10) % 2, DataError, "Reshape your data"),
    (np.zeros((2, 3, 4, 5)), [0, 1], DataError, "4-D"),
    (np.zeros((6, 4, 2)), [0, 1, 0], DataError, "6 sequence.* but y holds 3"),
    (np.zeros((6, 4, 2)), [1] * 6, DataError, "one class"),
    (np.zeros((6, 4, 2)), [0.5, 1.5, 0.5, 1.5, 0.5, 1.5], DataError, "continuous"),
    ([np.zeros((3, 2)), np.zeros((2, 3))], [0, 1], DataError, "features"),
    (np.zeros((6, 0, 2)), [0, 1] * 3, DataError, "no sequences, steps or features"),
    (np.array([["a", "b"], ["c", "d"]]), [0, 1], TypeError, "must hold numbers"),
])
def test_bad_input_is_one_line(X, y, error, match):
    with pytest.raises(error, match=match) as info:
        SequenceClassifier(**FAST, layout="NLF").fit(X, y)
    one_line(info.value)


def test_nan_inside_a_sequence_is_refused():
    X, y = series()
    X[3, 1, 4] = np.nan
    with pytest.raises(DataError, match="NaN") as info:
        SequenceClassifier(**FAST, layout="NCL").fit(X, y)
    one_line(info.value)


def test_predict_before_fit_and_with_other_features():
    X, y = series()
    with pytest.raises(NotFittedError):
        SequenceClassifier(**FAST).predict(X)
    clf = SequenceClassifier(**FAST, layout="NCL").fit(X, y)
    with pytest.raises(DataError, match="3 feature.*fitted on 2") as info:
        clf.predict(np.zeros((4, 3, 12)))
    one_line(info.value)


def test_devices_cpu_and_auto_and_an_unavailable_cuda():
    X, y = series()
    cpu = SequenceClassifier(**FAST).fit(X, y)
    auto = SequenceClassifier(**{**FAST, "device": "auto"}).fit(X, y)
    assert next(auto.model_.parameters()).device.type == "cpu"  # kept on the CPU whatever it trained on
    if not torch.cuda.is_available():
        np.testing.assert_array_equal(cpu.predict_proba(X), auto.predict_proba(X))
        with pytest.raises(ConfigError, match="no CUDA device") as info:
            SequenceClassifier(**{**FAST, "device": "cuda"}).fit(X, y)
        one_line(info.value)
    with pytest.raises(ConfigError, match="device must be cpu, cuda, cuda:N, mps or auto, got 'tpu'") as info:
        SequenceClassifier(**{**FAST, "device": "tpu"}).fit(X, y)
    one_line(info.value)
    with pytest.raises(ConfigError, match="threads must be"):
        SequenceClassifier(**{**FAST, "threads": 0}).fit(X, y)


# -- reproducibility and warm starts ------------------------------------------------------------


def test_two_fits_with_one_seed_are_bit_identical_and_the_callers_random_state_is_kept():
    points, labels = squares()
    np.random.seed(5)
    random.seed(5)
    torch.manual_seed(5)
    expected = (np.random.rand(), random.random(), torch.rand(1))
    np.random.seed(5)
    random.seed(5)
    torch.manual_seed(5)
    a = SequenceClassifier(**FAST).fit(points, labels)
    assert (np.random.rand(), random.random(), torch.rand(1)) == expected
    b = SequenceClassifier(**FAST).fit(points, labels)
    assert a.losses_ == b.losses_
    np.testing.assert_array_equal(a.predict_proba(points), b.predict_proba(points))
    c = SequenceClassifier(**{**FAST, "seed": 1}).fit(points, labels)
    assert c.losses_ != a.losses_


@pytest.mark.parametrize("extra", [
    {},
    {"model": "conv1d", "val_fraction": 0.25, "early_stopping": 2, "standardize": True, "scheduler": "plateau"},
    {"model": "lstm", "val_fraction": 0.25, "weight_decay": 0.01, "clip_grad": 1.0},
])
def test_warm_start_continues_exactly_as_one_longer_fit(extra):
    points, labels = squares()
    params = {**FAST, **extra}
    whole = SequenceClassifier(**{**params, "epochs": 6}).fit(points, labels)
    parts = SequenceClassifier(**{**params, "epochs": 3}, warm_start=True).fit(points, labels)
    parts.set_params(epochs=6).fit(points, labels)
    assert parts.n_epochs_ == whole.n_epochs_ and parts.losses_ == whole.losses_
    assert parts.val_losses_ == whole.val_losses_ and parts.best_epoch_ == whole.best_epoch_
    np.testing.assert_array_equal(parts.predict_proba(points), whole.predict_proba(points))


def test_warm_start_refuses_fewer_epochs_and_new_classes_and_without_it_fit_starts_afresh():
    X, y = series()
    clf = SequenceClassifier(**FAST, warm_start=True).fit(X, y)
    with pytest.raises(ConfigError, match="already trained 3 epochs") as info:
        clf.set_params(epochs=2).fit(X, y)
    one_line(info.value)
    with pytest.raises(DataError, match="did not see"):
        clf.set_params(epochs=4).fit(X, np.where(y == 1, 1, 5))
    again = clf.set_params(warm_start=False, epochs=3).fit(X, y)
    assert again.n_epochs_ == 3


# -- pickling and files -------------------------------------------------------------------------


def test_pickle_round_trip_predicts_identically():
    points, labels = squares()
    clf = SequenceClassifier(**FAST).fit(points, np.array([f"c{k}" for k in labels]))
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(points), clf.predict_proba(points))
    assert copy.classes_.tolist() == clf.classes_.tolist()


def test_save_and_load_round_trip_and_continue(tmp_path):
    points, labels = squares()
    params = {**FAST, "model": "conv1d", "val_fraction": 0.25, "early_stopping": 1, "standardize": True}
    clf = SequenceClassifier(**params, warm_start=True).fit(points, labels)
    clf.save(tmp_path / "clf.pt")
    loaded = SequenceClassifier.load(tmp_path / "clf.pt")
    assert loaded.get_params() == clf.get_params() and loaded.classes_.tolist() == clf.classes_.tolist()
    assert loaded.best_epoch_ == clf.best_epoch_
    np.testing.assert_array_equal(loaded.predict_proba(points), clf.predict_proba(points))
    whole = SequenceClassifier(**{**params, "epochs": 5}).fit(points, labels)
    loaded.set_params(epochs=5).fit(points, labels)
    assert loaded.losses_ == whole.losses_


def test_the_saved_file_is_a_checkpoint_squareseq_predict_reads_with_the_estimators_answers(tmp_path):
    from squareseq.runs.inference import class_probabilities, load_run, prepared_split

    X, y = series(n=48)
    params = {**FAST, "model": "conv1d", "val_fraction": 0.25, "early_stopping": 2, "standardize": True,
              "epochs": 12, "lr": 0.2}
    clf = SequenceClassifier(**params, layout="NCL").fit(X, np.where(y == 1, "up", "down"))
    assert clf.best_epoch_ is not None and clf.best_epoch_ < clf.n_epochs_  # the best epoch is not the last
    clf.save(tmp_path / "clf.pt")
    run = load_run(tmp_path / "clf.pt")  # what `squareseq predict` loads
    assert run.class_names == ["down", "up"]
    split = prepared_split(run, X, layout="NCL")
    np.testing.assert_array_equal(class_probabilities(run.model, split.model_input()).double().numpy(),
                                  clf.predict_proba(X))
    loaded = SequenceClassifier.load(tmp_path / "clf.pt")
    assert loaded.best_epoch_ == clf.best_epoch_ and loaded.losses_ == clf.losses_
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    saved = torch.load(tmp_path / "clf.pt", weights_only=True)
    for change, match in [(lambda d: d["training_state"].update(loss=[]), "training_state.*loss"),
                          (lambda d: d.pop("training_state"), "best_epoch must be None")]:
        data = pickle.loads(pickle.dumps(saved))
        change(data)
        torch.save(data, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=match) as info:
            SequenceClassifier.load(tmp_path / "bad.pt")
        one_line(info.value)


def test_load_refuses_bad_files_in_one_line(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError) as info:
        SequenceClassifier.load(garbage)
    one_line(info.value)
    X, y = series()
    clf = SequenceClassifier(**FAST).fit(X, y)
    path = tmp_path / "clf.pt"
    clf.save(path)
    saved = torch.load(path, weights_only=True)
    for change, match in [
        (lambda d: d.pop("estimator"), "holds no estimator"),
        (lambda d: d["estimator"].update(classes=["a"]), "at least two"),
        (lambda d: d["estimator"]["params"].update(hidden_dim=7), "different runs|does not fit"),
        (lambda d: d["estimator"]["params"].update(bogus=1), "parameter names"),
        (lambda d: d["estimator"].update(best_epoch=99), "best_epoch"),
    ]:
        data = pickle.loads(pickle.dumps(saved))
        change(data)
        torch.save(data, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=match) as info:
            SequenceClassifier.load(tmp_path / "bad.pt")
        one_line(info.value)


# -- optional packages --------------------------------------------------------------------------


@pytest.mark.parametrize("name, module, extra", [
    ("squareseq.SequenceClassifier", "sklearn", "sklearn"),
    ("squareseq.estimators.AeonSequenceClassifier", "aeon", "aeon"),
])
def test_without_the_optional_package_one_line_says_how_to_install_it(name, module, extra):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "import squareseq, squareseq.estimators\n"
            "try:\n"
            f"    {name}\n"
            "except squareseq.SquareseqError as exc:\n"
            "    print('ERR', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ERR ") and f"pip install 'squareseq[{extra}]'" in out.stdout
    assert out.stdout.count("\n") == 1


def test_errors_are_squareseq_errors():
    assert issubclass(DataError, SquareseqError) and issubclass(SquareseqError, ValueError)


def test_a_plateau_schedule_needs_a_validation_split():
    X, y = series()
    with pytest.raises(ConfigError, match="plateau.*val_fraction") as info:
        SequenceClassifier(**{**FAST, "scheduler": "plateau"}).fit(X, y)
    one_line(info.value)
    SequenceClassifier(**{**FAST, "scheduler": "plateau", "val_fraction": 0.25}).fit(X, y)
