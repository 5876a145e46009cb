"""Layouts (N, L, F) and (N, C, L), told apart by evidence, and NaN padding turned into lengths."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squareseq.data.file_checks import DataFileError
from squareseq.data.files import load_data
from squareseq.data.layout import model_array, resolve_layout


def _save(tmp_path, **arrays):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    return path


def _labels(n):
    return np.arange(n) % 2


def test_channels_first_is_read_from_the_shape_with_a_notice(tmp_path):
    """(N, 6, 100): 100 steps of 6 channels, not 6 steps of 100 features; the run can say so."""
    X = np.random.RandomState(0).randn(20, 6, 100)
    data = load_data(_save(tmp_path, X=X, y=_labels(20)))
    assert data.layout == "NCL" and data.X.shape == (16, 100, 6) and data.X_test.shape == (4, 100, 6)
    assert data.meta["layout_note"] == ("read X (20, 6, 100) as 100 steps of 6 channel(s) ((N, C, L), more steps "
                                        "than features); pass --layout NLF if it is 6 steps of 100 features")
    assert data.summary()["layout"] == "NCL"
    raw = X.transpose(0, 2, 1).astype(np.float32)
    assert any(np.array_equal(data.X[0], raw[i]) for i in range(20))
    steps_first = load_data(_save(tmp_path, X=X.transpose(0, 2, 1), y=_labels(20)))
    assert steps_first.layout == "NLF" and "layout_note" not in steps_first.meta
    assert np.array_equal(steps_first.X, data.X)
    told = load_data(_save(tmp_path, X=X, y=_labels(20)), layout="NLF")
    assert told.X.shape == (16, 6, 100) and "layout_note" not in told.meta


def test_as_many_steps_as_features_needs_to_be_told(tmp_path):
    X = np.random.RandomState(1).randn(10, 4, 4)
    path = _save(tmp_path, X=X, y=_labels(10))
    with pytest.raises(DataFileError) as info:
        load_data(path)
    assert str(info.value) == (f"{path}: X (10, 4, 4) has as many rows as columns per sequence, so its layout "
                               "cannot be told; pass --layout NLF for 4 steps of 4 features (N, L, F) or --layout "
                               "NCL for 4 channels of 4 steps (N, C, L)")
    nlf, ncl = load_data(path, layout="NLF"), load_data(path, layout="NCL")
    assert np.array_equal(nlf.X, ncl.X.transpose(0, 2, 1))
    assert load_data(_save(tmp_path, X=X[:, :1, :1], y=_labels(10))).layout == "NLF"  # one step of one feature


def test_lengths_say_which_axis_is_time(tmp_path):
    rng = np.random.RandomState(2)
    # 5 steps of 8 features: the shape alone would say 8 steps of 5 channels; the lengths end at 5
    data = load_data(_save(tmp_path, X=rng.randn(10, 5, 8), y=_labels(10), lengths=np.r_[5, np.full(9, 3)]))
    assert data.layout == "NLF" and data.n_features == 8
    # lengths up to 10 fit only the last axis
    data = load_data(_save(tmp_path, X=rng.randn(10, 3, 10), y=_labels(10), lengths=np.r_[10, np.full(9, 7)]))
    assert data.layout == "NCL" and data.n_features == 3 and data.seq_len == 10
    # a test set shares the feature axis: (10, 4, 6) and (6, 4, 9) can only be 4 channels
    data = load_data(_save(tmp_path, X=rng.randn(10, 4, 6), y=_labels(10), X_test=rng.randn(6, 4, 9),
                           y_test=_labels(6)))
    assert data.layout == "NCL" and data.X_test.shape == (6, 9, 4)


def test_a_layout_the_lengths_contradict_is_refused(tmp_path):
    path = _save(tmp_path, X=np.zeros((10, 3, 10)), y=_labels(10), lengths=np.r_[10, np.full(9, 7)])
    with pytest.raises(DataFileError) as info:
        load_data(path, layout="NLF")
    assert str(info.value) == (f"{path}: the lengths go up to 10 steps, but X (10, 3, 10) read as NLF (N, L, F) has "
                               "3; pass --layout NCL (or --layout auto)")
    with pytest.raises(DataFileError) as info:
        resolve_layout("f", np.zeros((2, 3, 3)), layout="LNF")
    assert str(info.value) == "f: unknown layout 'LNF'; use NLF, NCL or auto"


def _nan_pad(X, lengths, layout):
    X = X.copy()
    for i, k in enumerate(lengths):
        if layout == "NLF":
            X[i, k:, :] = np.nan
        else:
            X[i, :, k:] = np.nan
    return X


def test_nan_padding_gives_lengths_and_decides_a_square_layout(tmp_path):
    """(N, 6, 6) cannot be told from its shape, but NaN padding runs along the step axis only."""
    rng = np.random.RandomState(3)
    lengths = np.r_[6, rng.randint(1, 7, size=11)]
    values = rng.randn(12, 6, 6)
    X = _nan_pad(values, lengths, "NCL")
    data = load_data(_save(tmp_path, X=X, y=_labels(12), X_test=X[:4], y_test=_labels(4)))
    assert data.layout == "NCL" and data.lengths.tolist() == lengths.tolist()
    assert data.lengths_test.tolist() == lengths[:4].tolist()
    assert np.isfinite(data.X).all() and not data.X[1, lengths[1]:].any()
    assert np.array_equal(data.X[0], X[0].T.astype(np.float32))
    assert load_data(_save(tmp_path, X=_nan_pad(values, lengths, "NLF"), y=_labels(12))).layout == "NLF"


@pytest.mark.parametrize("where, message", [
    ((1, 2, slice(None)), "X has NaN at sequence 1, step 2, feature 0, inside the sequence"),
    ((1, 2, 0), "X has NaN at sequence 1, step 2, feature 0, on a step that is only partly NaN"),
    ((1, slice(None), slice(None)), "X has sequence 1 is NaN at every step (no data)"),
])
def test_nan_other_than_trailing_padding_is_refused(tmp_path, where, message):
    X = np.random.RandomState(4).randn(10, 5, 2)
    X[where] = np.nan
    path = _save(tmp_path, X=X, y=_labels(10))
    with pytest.raises(DataFileError) as info:
        load_data(path)
    assert str(info.value) == (f"{path}: {message}; NaN may only pad the end of a sequence as whole steps (every "
                               "feature NaN): fill or drop the missing values")


def test_nan_in_padding_past_given_lengths_is_ignored(tmp_path):
    X = np.random.RandomState(5).randn(10, 5, 2)
    X[1, 3:, 0] = np.nan  # past lengths[1] = 3: padding may hold anything
    data = load_data(_save(tmp_path, X=X, y=_labels(10), lengths=np.r_[5, 3, np.full(8, 5)]), test_fraction=0.2)
    assert np.isfinite(data.X).all() and np.isfinite(data.X_test).all()


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.integers(2, 9), st.sampled_from(["NLF", "NCL"]), st.data())
def test_nan_padded_arrays_round_trip_to_their_lengths(n, F, L, layout, draw):
    """Any NaN-padded array gives back its lengths and values, zero-padded; when some sequence is
    padded, "auto" finds the layout from the padding alone."""
    lengths = np.array(draw.draw(st.lists(st.integers(1, L), min_size=n, max_size=n)))
    values = np.random.RandomState(n * 100 + F * 10 + L).randn(n, L, F)
    X = values if layout == "NLF" else values.transpose(0, 2, 1)
    X = _nan_pad(X, lengths, layout)
    out, got = model_array("f", "X", X, layout)
    assert out.shape == (n, L, F) and out.dtype == np.float32 and out.flags.c_contiguous
    expected = np.where(np.arange(L)[None, :, None] < lengths[:, None, None], values, 0.0).astype(np.float32)
    assert np.array_equal(out, expected)
    assert (got is None) == bool((lengths == L).all())
    if got is not None:
        assert got.tolist() == lengths.tolist()
        assert resolve_layout("f", X)[0] == layout


def test_a_csv_has_no_layout_to_choose(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sequence,step,x,label\na,0,1,0\nb,0,2,1\nc,0,3,0\nd,0,4,1\n")
    assert load_data(path, layout="NLF", test_fraction=0.5).layout == "NLF"
    with pytest.raises(DataFileError) as info:
        load_data(path, layout="NCL")
    assert str(info.value) == (f"{path}: the file gives its sequences step by step, so it has no array layout; drop "
                               "--layout NCL")
