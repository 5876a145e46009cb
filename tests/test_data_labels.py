"""Labels as they come (any integers, text) mapped to classes with names; the validation split."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squareseq.data.file_checks import MAX_CLASSES, DataFileError
from squareseq.data.files import load_data, stratified_split, validation_split
from squareseq.data.labels import MAX_LABEL_CHARS, check_label_array, encode_labels
from squareseq.errors import DataError


@pytest.mark.parametrize("y, names, classes", [
    (np.array([1, 2, 3, 1]), ["1", "2", "3"], [0, 1, 2, 0]),
    (np.array([10, -5, 3, -5], dtype=np.int8), ["-5", "3", "10"], [2, 0, 1, 0]),
    (np.array([7, 7, 2**63], dtype=np.uint64), ["7", "9223372036854775808"], [0, 0, 1]),
    (np.array(["walking", "sitting", "walking"]), ["sitting", "walking"], [1, 0, 1]),
    (np.array(["10", "2", "1", "2"]), ["1", "2", "10"], [2, 1, 0, 1]),  # integer text: numeric order
    (np.array(["-1", "+1", "1"]), ["-1", "+1", "1"], [0, 1, 2]),  # '+1' and '1' are two labels
    (np.array(["b", "10", "a"]), ["10", "a", "b"], [2, 0, 1]),  # any other text: text order
])
def test_labels_become_classes_in_sorted_order(y, names, classes):
    out, out_test, got = encode_labels("f", y)
    assert got == names and out.tolist() == classes and out.dtype == np.int64 and out_test is None


def test_test_labels_map_as_training_and_unseen_ones_are_named():
    y, y_test, names = encode_labels("f", np.array([3, 1, 3]), np.array(["1", "3"]))  # integers and text agree
    assert names == ["1", "3"] and y.tolist() == [1, 0, 1] and y_test.tolist() == [0, 1]
    with pytest.raises(DataFileError) as info:
        encode_labels("f", np.array(["a", "b"]), np.array(["b", "c", "d", "c"]))
    assert str(info.value) == ("f: y_test has label(s) 'c', 'd' that no training sequence has (y has 'a', 'b'); "
                               "every test class must also occur in training")


def test_label_errors_are_one_line():
    cases = [
        (lambda: encode_labels("f", np.array(["a", "a"])), "f: y holds a single class (a); a classifier needs at "
                                                           "least two"),
        (lambda: encode_labels("f", np.arange(MAX_CLASSES + 1)),
         "f: y has 257 classes; squareseq reads at most 256 (squareseq.data.file_checks.MAX_CLASSES): merge classes"),
        (lambda: check_label_array("f", "y", np.array([0.0, 1.0]), 2),
         "f: y must be integers or text with shape (N,) = (2,), got float64 (2,)"),
        (lambda: check_label_array("f", "y", np.array(["a", " "]), 2),
         "f: y has an empty label at index 1; give every sequence its class"),
        (lambda: check_label_array("f", "y", np.array(["a", "x" * (MAX_LABEL_CHARS + 1)]), 2),
         "f: y has a label of 101 characters at index 1; labels are class names of at most 100 characters"),
    ]
    for call, message in cases:
        with pytest.raises(DataFileError) as info:
            call()
        assert str(info.value) == message


def test_text_labels_in_an_npz_keep_their_names(tmp_path):
    rng = np.random.RandomState(0)
    y = np.array(["1", "2", "3", "10"] * 5)
    np.savez(tmp_path / "d.npz", X=rng.randn(20, 7, 2), y=y, X_test=rng.randn(4, 7, 2), y_test=np.array(["10", "1", "2", "3"]))
    data = load_data(tmp_path / "d.npz")
    assert data.class_names == ["1", "2", "3", "10"] and data.n_classes == 4
    assert data.y_test.tolist() == [3, 0, 1, 2] and data.preprocessing.class_names == data.class_names
    np.savez(tmp_path / "wide.npz", X=rng.randn(4, 7, 2), y=np.array(["a" * 1001] * 4))
    with pytest.raises(DataFileError) as info:
        load_data(tmp_path / "wide.npz")
    assert str(info.value) == (f"{tmp_path / 'wide.npz'}: array 'y' holds text of up to 1,001 characters; labels are "
                               "class names of at most 100 characters")


# -- the validation split -----------------------------------------------------------------------------


def test_validation_split_is_stratified_seeded_and_its_own_stream():
    y = np.repeat([0, 1, 2], [10, 20, 5])
    train, val = validation_split(y, 0.2, seed=7)
    assert np.bincount(y[val]).tolist() == [2, 4, 1] and not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(35))
    again = validation_split(y, 0.2, seed=7)
    assert np.array_equal(again[1], val) and not np.array_equal(validation_split(y, 0.2, seed=8)[1], val)
    assert not np.array_equal(stratified_split(y, 0.2, 7)[1], val)  # not the test split's draw
    with pytest.raises(DataError) as info:
        validation_split(y, 0.0)
    assert str(info.value) == "val_fraction must lie strictly between 0 and 1, got 0.0"


def test_a_validation_split_that_empties_a_class_says_how_to_fix_it():
    with pytest.raises(DataFileError) as info:
        validation_split(np.array([0, 0, 1, 0]), 0.2, class_names=["walk", "run"], name="f")
    assert str(info.value) == ("f: class 'run' has 1 training sequence, too few to hold one out for validation; add "
                               "sequences of it, or pass --val-fraction 0 to validate on the test set")
    with pytest.raises(DataFileError) as info:
        validation_split(np.array([0, 0, 1, 1, 1, 1]), 0.9, class_names=["walk", "run"], name="f")
    assert str(info.value) == ("f: a validation fraction of 0.9 leaves class 'walk' (2 training sequences) none for "
                               "training; lower --val-fraction")


@pytest.mark.parametrize("standardize", [False, True])
def test_load_data_carves_validation_from_training_only(tmp_path, standardize):
    """The test set is the one without validation; the standardizer sees only what training keeps."""
    rng = np.random.RandomState(2)
    X = rng.randn(40, 6, 3) * 4 + 1
    lengths = rng.randint(2, 7, size=40)
    y = np.array(["a", "b"])[np.arange(40) % 2]
    np.savez(tmp_path / "d.npz", X=X, y=y, lengths=lengths)
    plain = load_data(tmp_path / "d.npz", seed=5)
    data = load_data(tmp_path / "d.npz", seed=5, standardize=standardize, val_fraction=0.25)
    assert data.y_test.tolist() == plain.y_test.tolist() and data.lengths_test.tolist() == plain.lengths_test.tolist()
    assert (len(data.y), len(data.y_val), len(data.y_test)) == (24, 8, 8)
    assert np.bincount(data.y_val).tolist() == [4, 4]
    train, val = validation_split(plain.y, 0.25, 5)
    assert data.lengths_val.tolist() == plain.lengths[val].tolist()
    assert data.summary()["n_val"] == 8 and data.summary()["n_train"] == 24
    x, yv, lv = data.tensors("val")
    assert x.shape == (8, 6, 3) and yv.tolist() == data.y_val.tolist() and lv.tolist() == data.lengths_val.tolist()
    if standardize:
        real = plain.X[train][np.arange(6)[None, :] < plain.lengths[train][:, None]]
        assert np.allclose(data.standardizer.mean, real.mean(axis=0)) and np.allclose(data.standardizer.std,
                                                                                      real.std(axis=0))
        assert not data.X_val[~(np.arange(6)[None, :] < data.lengths_val[:, None])].any()
    else:
        assert np.array_equal(data.X_val, plain.X[val])


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(-10**12, 10**12), min_size=2, max_size=30).filter(lambda v: len(set(v)) > 1),
       st.booleans())
def test_any_integers_map_in_order_and_back_through_their_names(values, as_text):
    """Classes keep the labels' numeric order, as integers or as integer text, and a class's name
    reads back as its label."""
    y = np.array([str(v) for v in values]) if as_text else np.array(values, dtype=np.int64)
    classes, _, names = encode_labels("f", y)
    assert [int(names[k]) for k in classes] == values
    assert [int(n) for n in names] == sorted(set(values))
