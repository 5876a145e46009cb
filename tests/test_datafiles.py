"""Tests for squareseq.data.files: the .npz and .csv schemas, every schema error, the split and
the standardisation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from squareseq.data.files import DataFileError, Standardizer, load_csv, load_data, load_npz, stratified_split
from squareseq.data.squares import make_sequences, to_tensors


def _arrays(n=12, variable_len=False, seed=0):
    points, labels = make_sequences(n, variable_len=variable_len, seed=seed)
    x, y, lengths = to_tensors(points, labels, float_labels=False)
    out = {"X": x.numpy(), "y": y.numpy()}
    if lengths is not None:
        out["lengths"] = lengths.numpy()
    return out


def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return path


def _csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


GOOD_CSV = "sequence,step,x,y,label\n" + "".join(
    f"s{i},{t},{0.1 * t},{-0.1 * i},{i % 2}\n" for i in range(6) for t in range(3)
)


# -- every schema error -------------------------------------------------------------------------

def _with(**changes):
    def build(tmp_path):
        arrays = _arrays()
        for key, value in changes.items():
            if value is None:
                arrays.pop(key, None)
            else:
                arrays[key] = value(arrays) if callable(value) else value
        return _npz(tmp_path, **arrays)
    return build


def _nan_at(arrays, key="X"):
    X = arrays[key].copy()
    X[1, 2, 0] = np.nan
    return X


def _test_part(**overrides):
    def build(tmp_path):
        arrays = _arrays()
        test = _arrays(seed=1)
        arrays.update(X_test=test["X"], y_test=test["y"])
        for key, value in overrides.items():
            if value is None:
                arrays.pop(key, None)
            else:
                arrays[key] = value(arrays) if callable(value) else value
        return _npz(tmp_path, **arrays)
    return build


def _write_bytes(data, name="data.npz"):
    def build(tmp_path):
        path = tmp_path / name
        path.write_bytes(data)
        return path
    return build


def _npy_named_npz(tmp_path):
    path = tmp_path / "data.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((2, 4, 2)))
    return path


def _object_array(tmp_path):
    return _npz(tmp_path, X=np.array([np.zeros((4, 2)), np.zeros((3, 2))], dtype=object), y=np.arange(2))


NPZ_ERRORS = {  # the whole message, the file's path as {path}
    "missing file": (lambda p: p / "absent.npz",
                     '{path}: no such file; give a .npz or .csv data file'),
    "a folder": (lambda p: (p / "folder.npz").mkdir() or p / "folder.npz",
                 '{path}: is a directory; give a .npz or .csv data file'),
    "truncated archive": (_write_bytes(b"PK\x03\x04 truncated"),
                          '{path}: is not a readable .npz archive (File is not a zip file); write it with numpy.savez'),
    "pickled objects": (_object_array,
                        "{path}: array 'X' holds Python objects (pickled); save plain numeric arrays"),
    "not an archive": (_write_bytes(b"this is not a zip file"),
                       '{path}: is not a readable .npz archive (no zip header); write it with numpy.savez'),
    "a .npy inside": (_npy_named_npz,
                      '{path}: is a single .npy array, not an .npz archive of named arrays (X, y, ...)'),
    "unknown key": (_with(x=np.zeros(3)),
                    "{path}: unknown array(s) 'x' (allowed: X, y, lengths, X_test, y_test, lengths_test)"),
    "missing X": (_with(X=None),
                  "{path}: missing array 'X' (the sequences, float (N, L, F) or (N, C, L))"),
    "missing y": (_with(y=None),
                  "{path}: missing array 'y' (the labels, integers or text (N,))"),
    "X integer": (_with(X=np.zeros((12, 4, 2), dtype=np.int64)),
                  '{path}: X must be float with shape (N, L, F), got int64 (12, 4, 2)'),
    "X 2-D": (_with(X=np.zeros((12, 4))),
              '{path}: X must be float with shape (N, L, F), got float64 (12, 4)'),
    "X no steps": (_with(X=np.zeros((12, 0, 2))),
                   '{path}: X must be float with shape (N, L, F), got float64 (12, 0, 2)'),
    "X empty": (_with(X=np.zeros((0, 4, 2)), y=np.zeros(0, dtype=np.int64)),
                '{path}: X holds no sequences (N = 0)'),
    "X not finite": (_with(X=_nan_at),
                     '{path}: X has NaN at sequence 1, step 2, feature 0, on a step that is only partly NaN; NaN may '
                     'only pad the end of a sequence as whole steps (every feature NaN): fill or drop the missing '
                     'values'),
    "y float": (_with(y=lambda a: a["y"].astype(float)),
                '{path}: y must be integers or text with shape (N,) = (12,), got float64 (12,)'),
    "y bool": (_with(y=lambda a: a["y"].astype(bool)),
               '{path}: y must be integers or text with shape (N,) = (12,), got bool (12,)'),
    "y wrong length": (_with(y=np.zeros(11, dtype=np.int64)),
                       '{path}: y must be integers or text with shape (N,) = (12,), got int64 (11,)'),
    "y column": (_with(y=lambda a: a["y"][:, None]),
                 '{path}: y must be integers or text with shape (N,) = (12,), got int64 (12, 1)'),
    "y one class": (_with(y=np.zeros(12, dtype=np.int64)),
                    '{path}: y holds a single class (0); a classifier needs at least two'),
    "lengths float": (_with(lengths=np.full(12, 4.0)),
                      '{path}: lengths must be integers with shape (N,) = (12,), got float64 (12,)'),
    "lengths wrong shape": (_with(lengths=np.full(5, 4)),
                            '{path}: lengths must be integers with shape (N,) = (12,), got int64 (5,)'),
    "lengths zero": (_with(lengths=np.r_[0, np.full(11, 4)]),
                     '{path}: lengths must lie in 1..4 (the padded length L), got 0 at index 0'),
    "lengths too long": (_with(lengths=np.r_[np.full(11, 4), 5]),
                         '{path}: lengths must lie in 1..4 (the padded length L), got 5 at index 11'),
    "X_test alone": (_test_part(y_test=None),
                     '{path}: X_test given without y_test (give both or neither)'),
    "y_test alone": (_test_part(X_test=None),
                     '{path}: y_test given without X_test (give both or neither)'),
    "lengths_test alone": (_with(lengths_test=np.full(12, 4)),
                           '{path}: lengths_test given without X_test and y_test'),
    "X_test integer": (_test_part(X_test=np.zeros((12, 4, 2), dtype=np.int32)),
                       '{path}: X_test must be float with shape (N, L, F), got int32 (12, 4, 2)'),
    "X_test features": (_test_part(X_test=np.zeros((12, 5, 3))),
                        '{path}: X_test has 3 feature(s) per step but X has 2'),
    "y_test wrong length": (_test_part(y_test=np.zeros(3, dtype=np.int64)),
                            '{path}: y_test must be integers or text with shape (N,) = (12,), got int64 (3,)'),
    "y_test unknown class": (_test_part(y_test=lambda a: a["y_test"] + 1),
                             "{path}: y_test has label(s) '2' that no training sequence has (y has '0', '1'); every "
                             "test class must also occur in training"),
    "y_test negative": (_test_part(y_test=lambda a: a["y_test"] - 1),
                        "{path}: y_test has label(s) '-1' that no training sequence has (y has '0', '1'); every "
                        "test class must also occur in training"),
    "X_test not finite": (_test_part(X_test=lambda a: _nan_at(a, "X_test")),
                          '{path}: X_test has NaN at sequence 1, step 2, feature 0, on a step that is only partly NaN; '
                          'NaN may only pad the end of a sequence as whole steps (every feature NaN): fill or drop the '
                          'missing values'),
    "lengths_test range": (_test_part(lengths_test=np.full(12, 7)),
                           '{path}: lengths_test must lie in 1..4 (the padded length L), got 7 at index 0'),
    "too few to split": (_with(X=np.zeros((2, 4, 2)), y=np.array([0, 1]), lengths=None),
                         '{path}: 2 sequences are too few to hold out 20% per class for testing; add sequences, raise the '
                         'test fraction, or give a test set'),
    "unsupported suffix": (_write_bytes(b"X", name="data.txt"),
                           "{path}: unsupported file type '.txt'; use .npz, .csv or .ts"),
}


def _csv_error(text):
    return lambda tmp_path: _csv(tmp_path, text)


def _not_utf8(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"sequence,step,x,label\n\xff\xfe,0,1,0\n")
    return path


CSV_ERRORS = {  # the whole message, the file's path as {path}
    "missing file": (lambda p: p / "absent.csv",
                     '{path}: no such file; give a .npz or .csv data file'),
    "not utf-8": (_not_utf8,
                  '{path}: is not UTF-8 text (is it really a .csv file?)'),
    "empty": (_csv_error("\n\n"),
              '{path}: is empty; expected a header row: sequence,step,<features...>,label'),
    "duplicate column": (_csv_error("sequence,step,x,x,label\n"),
                         "{path} line 1: column 'x' appears twice"),
    "missing columns": (_csv_error("id,step,x,y\ns,0,1,2\n"),
                        '{path} line 1: missing column(s) sequence, label; expected a header like sequence,step,x,y,label'),
    "no features": (_csv_error("sequence,step,label,split\ns,0,1,train\n"),
                    '{path} line 1: no feature columns (any columns besides sequence, step, label, split)'),
    "empty column name": (_csv_error("sequence,step,,label\ns,0,1,0\n"),
                          '{path} line 1: a column has an empty name'),
    "header only": (_csv_error("sequence,step,x,label\n"),
                    '{path}: has a header but no data rows'),
    "short row": (_csv_error("sequence,step,x,label\ns,0,1\n"),
                  '{path} line 2: expected 4 fields, got 3'),
    "empty id": (_csv_error("sequence,step,x,label\n ,0,1,0\n"),
                 '{path} line 2: empty sequence id'),
    "step text": (_csv_error("sequence,step,x,label\ns,first,1,0\n"),
                  "{path} line 2: step must be a whole number 0, 1, 2, ... written in plain digits, got 'first'"),
    "empty label": (_csv_error("sequence,step,x,label\ns,0,1, \n"),
                    "{path} line 2: empty label; give each sequence a class (a number or a name)"),
    "feature text": (_csv_error("sequence,step,x,label\ns,0,one,0\n"),
                     "{path} line 2: feature 'x' must be a number, got 'one'"),
    "feature inf": (_csv_error("sequence,step,x,label\ns,0,inf,0\n"),
                    "{path} line 2: feature 'x' must be finite, got 'inf'"),
    "bad split": (_csv_error("sequence,step,x,label,split\ns,0,1,0,valid\n"),
                  "{path} line 2: split must be 'train' or 'test', got 'valid'"),
    "two labels": (_csv_error("sequence,step,x,label\ns,0,1,0\ns,1,1,1\n"),
                   "{path} line 3: sequence 's' has labels 0 and 1 (one label per sequence)"),
    "two splits": (_csv_error("sequence,step,x,label,split\ns,0,1,0,train\ns,1,1,0,test\n"),
                   "{path} line 3: sequence 's' is in both the train and test splits"),
    "repeated step": (_csv_error("sequence,step,x,label\ns,0,1,0\ns,0,2,0\n"),
                      "{path} line 3: sequence 's' has step 0 twice"),
    "gap in steps": (_csv_error("sequence,step,x,label\ns,0,1,0\ns,2,2,0\n"),
                     "{path}: sequence 's' has steps 0, 2; steps must be 0, 1, ..., L-1"),
    "only test": (_csv_error("sequence,step,x,label,split\ns,0,1,0,test\n"),
                  "{path}: every sequence is in the test split; mark some as 'train'"),
    "one class": (_csv_error("sequence,step,x,label\na,0,1,0\nb,0,1,0\n"),
                  '{path}: y holds a single class (0); a classifier needs at least two'),
    "test class unknown": (_csv_error("sequence,step,x,label,split\na,0,1,0,train\nb,0,1,1,train\nc,0,1,3,test\n"),
                           "{path}: y_test has label(s) '3' that no training sequence has (y has '0', '1'); every "
                           "test class must also occur in training"),
}


@pytest.mark.parametrize("build, message", NPZ_ERRORS.values(), ids=list(NPZ_ERRORS))
def test_every_npz_schema_error_is_one_clear_line(tmp_path, build, message):
    """Each .npz schema violation raises DataFileError (a ValueError) with exactly this one line:
    the file, what is wrong, what was expected."""
    path = build(tmp_path)
    with pytest.raises(DataFileError) as info:
        load_data(path)
    assert str(info.value) == message.replace("{path}", str(path))
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("build, message", CSV_ERRORS.values(), ids=list(CSV_ERRORS))
def test_every_csv_schema_error_is_one_clear_line(tmp_path, build, message):
    """Each .csv schema violation raises DataFileError with exactly this one line naming the file
    (and the line, where one line is at fault)."""
    path = build(tmp_path)
    with pytest.raises(DataFileError) as info:
        load_data(path)
    assert str(info.value) == message.replace("{path}", str(path))


# -- loading what is right ----------------------------------------------------------------------

def test_npz_round_trip_with_lengths_and_test_set(tmp_path):
    """A file with lengths and its own test set loads as given: float32, int64, padding zero."""
    train, test = _arrays(20, variable_len=True, seed=1), _arrays(10, variable_len=True, seed=2)
    train["X"][train["lengths"] == 2, 3] = 7.0  # junk in the padding is ignored
    path = _npz(tmp_path, **train, X_test=test["X"], y_test=test["y"], lengths_test=test["lengths"])
    data = load_npz(path)
    assert data.split == "file" and data.n_classes == 2 and data.variable_length
    assert data.X.dtype == np.float32 and data.y.dtype == np.int64
    assert np.array_equal(data.lengths, train["lengths"]) and np.array_equal(data.y_test, test["y"])
    assert (data.X[data.lengths == 2, 2:] == 0).all()
    x, y, lengths = data.tensors("test", float_labels=True)
    assert x.shape == (10, 4, 2) and y.shape == (10, 1) and lengths.shape == (10,)


def test_nan_in_padding_is_fine(tmp_path):
    """Non-finite values in padded steps are not data: they are ignored and zeroed."""
    arrays = _arrays(12, variable_len=True, seed=3)
    short = int(np.flatnonzero(arrays["lengths"] < 4)[0])
    arrays["X"][short, -1] = np.nan
    data = load_npz(_npz(tmp_path, **arrays))
    assert np.isfinite(data.X).all() and np.isfinite(data.X_test).all()


def test_full_lengths_mean_fixed_length(tmp_path):
    """lengths that are all L are dropped: the data is fixed-length."""
    arrays = _arrays(12)
    data = load_npz(_npz(tmp_path, **arrays, lengths=np.full(12, 4)))
    assert data.lengths is None and not data.variable_length


def test_stratified_split_when_no_test_set(tmp_path):
    """Without X_test, a seeded stratified split holds out about test_fraction of every class;
    the same seed gives the same split."""
    arrays = _arrays(40, seed=5)
    path = _npz(tmp_path, **arrays)
    a, b = load_npz(path, test_fraction=0.25, seed=3), load_npz(path, test_fraction=0.25, seed=3)
    assert a.split == "stratified" and len(a.y) + len(a.y_test) == 40
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.X, b.X)
    for cls in (0, 1):
        assert abs((a.y_test == cls).sum() - 0.25 * (arrays["y"] == cls).sum()) <= 0.5


def test_csv_matches_the_same_data_as_npz(tmp_path):
    """The long-format CSV of some sequences loads as the same arrays as their .npz."""
    points, labels = make_sequences(10, variable_len=True, seed=8)
    rows = "".join(f"q{i},{t},{float(v[0])!r},{float(v[1])!r},{lab}\n" for i, (p, lab) in enumerate(zip(points, labels))
                   for t, v in enumerate(p))
    csv_data = load_csv(_csv(tmp_path, "sequence,step,px,py,label\n" + rows), seed=1)
    x, y, lengths = to_tensors(points, labels, float_labels=False)
    npz_data = load_npz(_npz(tmp_path, X=x.numpy(), y=y.numpy(), lengths=lengths.numpy()), seed=1)
    for key in ("X", "y", "lengths", "X_test", "y_test", "lengths_test"):
        assert np.array_equal(getattr(csv_data, key), getattr(npz_data, key)), key


def test_csv_split_column_and_row_order(tmp_path):
    """A split column chooses the test set; rows of a sequence may come in any order."""
    text = ("sequence,label,step,x,split\n"
            "a,0,1,0.5,train\nb,1,0,2.0,train\na,0,0,0.25,train\nc,1,0,3.0,test\nd,0,0,4.0,test\n")
    data = load_csv(_csv(tmp_path, text))
    assert data.split == "file" and data.y.tolist() == [0, 1] and data.y_test.tolist() == [1, 0]
    assert data.X[0, :, 0].tolist() == [0.25, 0.5] and data.lengths.tolist() == [2, 1]
    assert data.lengths_test is None and data.X_test.shape == (2, 1, 1)


def test_good_csv_loads(tmp_path):
    """The documented example layout loads: 6 sequences of 3 steps, 2 features, 2 classes."""
    data = load_csv(_csv(tmp_path, GOOD_CSV), test_fraction=0.34)
    assert data.n_features == 2 and data.seq_len == 3 and data.n_classes == 2
    assert len(data.y) + len(data.y_test) == 6


# -- split and standardiser ---------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(2, 30), min_size=2, max_size=6), frac=st.floats(0.05, 0.6),
       seed=st.integers(0, 100))
def test_stratified_split_properties(counts, frac, seed):
    """The split partitions the indices, keeps every class in training, and takes round(frac *
    count) (at most count - 1) of each class for testing."""
    y = np.repeat(np.arange(len(counts)), counts)
    np.random.RandomState(seed).shuffle(y)
    state = np.random.get_state()[1].copy()
    try:
        train, test = stratified_split(y, frac, seed)
    except ValueError:
        assert all(round(c * frac) == 0 for c in counts)
        return
    assert np.array_equal(np.sort(np.r_[train, test]), np.arange(len(y)))
    for cls, c in enumerate(counts):
        assert (y[test] == cls).sum() == min(int(round(c * frac)), c - 1)
        assert (y[train] == cls).sum() >= 1
    assert np.array_equal(np.random.get_state()[1], state)  # global random state untouched


def test_standardizer_uses_real_training_steps_only(tmp_path):
    """Statistics come from the training part's real steps: padding and the test set do not
    move them; padding stays zero; test data is scaled with the training statistics."""
    arrays = _arrays(30, variable_len=True, seed=4)
    test = _arrays(10, variable_len=True, seed=6)
    test_big = {k: v.copy() for k, v in test.items()}
    test_big["X"] *= 100
    base = dict(arrays, y_test=test["y"], lengths_test=test["lengths"])
    data = load_npz(_npz(tmp_path, **base, X_test=test["X"]), standardize=True)
    data_big = load_npz(_npz(tmp_path, **base, X_test=test_big["X"]), standardize=True)
    real = np.arange(4)[None, :] < arrays["lengths"][:, None]
    steps = arrays["X"][real].astype(np.float64)
    assert np.allclose(data.standardizer.mean, steps.mean(0)) and np.allclose(data.standardizer.std, steps.std(0))
    assert np.allclose(data_big.standardizer.mean, data.standardizer.mean)
    assert (data.X[~real] == 0).all()
    scaled = data.X[real]
    assert np.allclose(scaled.mean(0), 0, atol=1e-5) and np.allclose(scaled.std(0), 1, atol=1e-4)
    expected_test = (test["X"][0, 0] - data.standardizer.mean) / data.standardizer.std
    assert np.allclose(data.X_test[0, 0], expected_test, atol=1e-5)


def test_standardizer_round_trips_through_plain_data():
    """as_dict / from_dict keep the statistics; a constant feature gets std 1, not a division by 0."""
    X = np.stack([np.ones((5, 3)), np.arange(15.0).reshape(5, 3)], axis=-1)
    s = Standardizer().fit(X)
    assert s.std[0] == 1.0
    again = Standardizer.from_dict(s.as_dict())
    assert np.allclose(again.transform(X), s.transform(X))


# -- the readers and their layering -------------------------------------------------------------

def test_readers_hand_on_checked_arrays_without_splitting(tmp_path):
    from squareseq.data.csv_files import read_csv
    from squareseq.data.npz_files import read_npz

    arrays = read_npz(_npz(tmp_path, **_arrays(n=12)))
    assert arrays.X.dtype == np.float32 and arrays.X.shape[0] == 12 and arrays.y.dtype == np.int64
    assert arrays.X_test is None and arrays.y_test is None and arrays.lengths is None
    arrays = read_csv(_csv(tmp_path, GOOD_CSV))
    assert arrays.X.shape == (6, 3, 2) and arrays.y.tolist() == [0, 1, 0, 1, 0, 1] and arrays.X_test is None


def test_old_names_still_import_from_datafiles():
    from squareseq import csv_reader, datafile_checks, datafiles, npz_reader

    assert datafiles.DataFileError is datafile_checks.DataFileError
    assert datafiles.NPZ_KEYS is npz_reader.NPZ_KEYS and datafiles.CSV_REQUIRED is csv_reader.CSV_REQUIRED
    for name in datafiles.__all__:
        assert hasattr(datafiles, name), name
