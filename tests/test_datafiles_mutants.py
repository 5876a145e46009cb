"""Data files: the behaviour mutation testing found unasserted (tools/mutate.py on
squareseq.data.files, npz_files, csv_files and file_checks): the split's defaults and edges, the
standardizer, the dataset's tensors, the readers' arrays and the checks' boundaries."""
from pathlib import Path

import numpy as np
import pytest
import torch

from squareseq.data.file_checks import (
    DataFileError,
    check_ints,
    check_is_file,
    check_labels,
    check_lengths,
    check_X,
    first_line,
    real_steps,
)
from squareseq.data.files import Standardizer, load_csv, load_data, load_npz, stratified_split
from squareseq.data.npz_files import read_npz
from squareseq.errors import DataError

Y20 = np.array([0] * 5 + [1] * 5 + [2] * 10)


# -- the split ------------------------------------------------------------------------------------


def test_split_defaults_are_a_fifth_held_out_with_seed_zero():
    """The documented defaults (test_fraction 0.2, seed 0) give this split, the same every time."""
    train, test = stratified_split(Y20)
    assert test.tolist() == [2, 5, 11, 13]
    assert train.tolist() == sorted(set(range(20)) - {2, 5, 11, 13})
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert [a.tolist() for a in stratified_split(Y20, 0.2, 0)] == [train.tolist(), test.tolist()]
    assert stratified_split(Y20, seed=1)[1].tolist() == [2, 5, 13, 18]


def test_split_holds_out_the_rounded_share_of_every_class():
    train, test = stratified_split(Y20, 0.5, 0)
    assert test.tolist() == [0, 2, 5, 7, 11, 13, 17, 18, 19]  # round(2.5) = 2, 2 and 5
    assert len(train) + len(test) == 20 and not set(train) & set(test)


def test_split_keeps_a_training_sequence_of_every_class():
    train, test = stratified_split([0, 0, 1, 1], 0.9)
    assert train.tolist() == [0, 3] and test.tolist() == [1, 2]


@pytest.mark.parametrize("fraction", [0, 1, -0.1, 1.5])
def test_split_fraction_must_lie_strictly_between_0_and_1(fraction):
    with pytest.raises(DataError) as info:
        stratified_split(Y20, fraction)
    assert str(info.value) == f"test_fraction must lie strictly between 0 and 1, got {fraction}"


def test_split_of_too_few_sequences_says_what_to_do():
    with pytest.raises(DataError) as info:
        stratified_split([0, 1, 1], 0.2)
    assert str(info.value) == ("3 sequences are too few to hold out 20% per class for testing; "
                               "add sequences, raise the test fraction, or give a test set")


# -- the standardizer -----------------------------------------------------------------------------


def test_standardizer_statistics_and_padding():
    X = np.array([[[1.0, 5.0], [3.0, 5.0], [100.0, 100.0]],
                  [[5.0, 5.0], [9.0, 9.0], [7.0, 5.0]]], dtype=np.float32)
    lengths = np.array([2, 3])
    s = Standardizer().fit(X, lengths)
    steps = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0], [9.0, 9.0], [7.0, 5.0]])
    assert np.allclose(s.mean, steps.mean(axis=0)) and np.allclose(s.std, steps.std(axis=0))
    out = s.transform(X, lengths)
    assert out.dtype == np.float32 and out[0, 2].tolist() == [0.0, 0.0]
    assert np.allclose(out[1], (X[1] - steps.mean(axis=0)) / steps.std(axis=0), atol=1e-6)
    full = Standardizer().fit(X)  # no lengths: every step counts
    assert np.allclose(full.mean, X.reshape(-1, 2).mean(axis=0))


def test_standardizer_centres_a_constant_feature_without_scaling():
    X = np.array([[[2.0, 1.0]], [[2.0, 3.0]]], dtype=np.float32)
    s = Standardizer().fit(X)
    assert s.std.tolist() == [1.0, 1.0] and s.mean.tolist() == [2.0, 2.0]
    assert s.transform(X).tolist() == [[[0.0, -1.0]], [[0.0, 1.0]]]


def test_standardizer_needs_fit_first():
    with pytest.raises(DataError) as info:
        Standardizer().transform(np.zeros((1, 1, 1)))
    assert str(info.value) == "call fit() before transform()"
    s = Standardizer.from_dict({"mean": [1.0], "std": [2.0]})
    assert s.as_dict() == {"mean": [1.0], "std": [2.0]}
    assert s.transform(np.array([[[5.0]]])).tolist() == [[[2.0]]]


# -- the dataset and loading ----------------------------------------------------------------------


def _npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _arrays(n=10, L=3, F=2, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, L, F).astype(np.float32), np.arange(n) % 2


def test_dataset_tensors_default_to_integer_labels(tmp_path):
    X, y = _arrays()
    lengths = np.array([3, 2] * 5)
    data = load_npz(_npz(tmp_path, X=X, y=y, lengths=lengths, X_test=X[:4], y_test=y[:4]))
    x, yt, lt = data.tensors()
    assert x.shape == (10, 3, 2) and yt.dtype == torch.int64 and yt.tolist() == y.tolist()
    assert lt.tolist() == lengths.tolist()
    x, yt, lt = data.tensors("test", float_labels=True)
    assert x.shape == (4, 3, 2) and lt is None and yt.dtype == torch.float32 and yt.shape == (4, 1)
    assert data.variable_length and data.n_features == 2
    with pytest.raises(DataError) as info:
        data.tensors("val")
    assert str(info.value) == "this dataset has no validation part; load it with val_fraction > 0"
    with pytest.raises(DataError) as info:
        data.tensors("valid")
    assert str(info.value) == "part must be 'train', 'val' or 'test', not 'valid'"


def test_loaders_default_to_the_seeded_fifth_and_no_standardizing(tmp_path):
    X, y = _arrays(20)
    path = _npz(tmp_path, X=X, y=y)
    for load in (load_npz, load_data):
        data = load(path)
        assert data.split == "stratified" and data.standardizer is None
        assert len(data.y) == 16 and len(data.y_test) == 4
        train, test = stratified_split(y, 0.2, 0)
        assert np.array_equal(data.X, X[train]) and np.array_equal(data.X_test, X[test])
        assert np.array_equal(data.y_test, y[test])
    data = load_data(path, test_fraction=0.5, seed=3, standardize=True)
    train, test = stratified_split(y, 0.5, 3)
    assert np.array_equal(data.y, y[train]) and data.standardizer is not None
    assert np.allclose(data.X.reshape(-1, 2).mean(axis=0), 0.0, atol=1e-6)


def test_split_lengths_follow_their_sequences(tmp_path):
    X, y = _arrays(20, L=4)
    lengths = np.arange(20) % 4 + 1
    data = load_npz(_npz(tmp_path, X=X, y=y, lengths=lengths))
    train, test = stratified_split(y)
    assert data.lengths.tolist() == lengths[train].tolist()
    assert data.lengths_test.tolist() == lengths[test].tolist()
    assert not data.X[~real_steps(data.X, data.lengths)].any()  # padding zeroed


def test_file_test_set_keeps_its_lengths_and_drops_full_ones(tmp_path):
    X, y = _arrays(6, L=3)
    full = np.full(6, 3)
    data = load_npz(_npz(tmp_path, X=X, y=y, lengths=full, X_test=X, y_test=y, lengths_test=np.array([1, 2, 3] * 2)))
    assert data.split == "file" and data.lengths is None
    assert data.lengths_test.tolist() == [1, 2, 3] * 2
    assert data.X_test[0, 1:].tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_load_data_goes_by_the_suffix_in_any_case(tmp_path):
    X, y = _arrays(10)
    path = _npz(tmp_path, X=X, y=y)
    upper = path.rename(tmp_path / "DATA.NPZ")
    assert load_data(upper).source == str(upper)
    csv = tmp_path / "d.CSV"
    csv.write_text("sequence,step,x,label\na,0,1,0\nb,0,2,1\nc,0,3,1\nd,0,4,0\ne,0,5,0\nf,0,6,1\n")
    assert len(load_data(csv, test_fraction=0.4).y_test) == 2
    bare = tmp_path / "data"
    bare.write_bytes(b"x")
    with pytest.raises(DataFileError) as info:
        load_data(bare)
    assert str(info.value) == f"{bare}: unsupported file type '(no suffix)'; use .npz, .csv or .ts"


# -- the readers ----------------------------------------------------------------------------------


def test_read_npz_keeps_x_as_stored_and_load_hands_on_float32_and_int64(tmp_path):
    """read_npz casts only what the layout does not decide (lengths to int64); X and the labels
    become float32 and class indices once the layout is known, in load_npz."""
    X, y = _arrays(4)
    path = _npz(tmp_path, X=X.astype(np.float64), y=y.astype(np.uint8), lengths=np.array([1, 2, 3, 3], dtype=np.int16))
    arrays = read_npz(path)
    assert arrays.X.dtype == np.float64 and arrays.y.dtype == np.uint8 and arrays.lengths.dtype == np.int64
    assert arrays.X_test is None and arrays.y_test is None and arrays.lengths_test is None
    data = load_npz(path, test_fraction=0.5)
    assert data.X.dtype == np.float32 and data.y.dtype == np.int64 and data.lengths.dtype == np.int64


@pytest.mark.parametrize("arrays,message", [
    (dict(lengths_test=np.ones(2, dtype=np.int64)), "lengths_test given without X_test and y_test"),
    (dict(X_test=np.zeros((2, 3, 2))), "X_test given without y_test (give both or neither)"),
    (dict(y_test=np.zeros(2, dtype=np.int64)), "y_test given without X_test (give both or neither)"),
    (dict(X_test=np.zeros((2, 3, 1)), y_test=np.zeros(2, dtype=np.int64)),
     "X_test has 1 feature(s) per step but X has 2"),
    (dict(X_test=np.zeros((2, 3, 2)), y_test=np.zeros(3, dtype=np.int64)),
     "y_test must be integers or text with shape (N,) = (2,), got int64 (3,)"),
    (dict(X_test=np.zeros((2, 3, 2)), y_test=np.zeros(2, dtype=np.int64), lengths_test=np.array([1, 4])),
     "lengths_test must lie in 1..3 (the padded length L), got 4 at index 1"),
    (dict(extra=np.zeros(1), other=np.zeros(1)), "unknown array(s) 'extra', 'other' (allowed: X, y, lengths, X_test, y_test, lengths_test)"),
])
def test_read_npz_test_part_messages(tmp_path, arrays, message):
    X, y = _arrays(4)
    path = _npz(tmp_path, X=X, y=y, **arrays)
    with pytest.raises(DataFileError) as info:
        load_npz(path, layout="NLF")  # the feature and length checks need the layout
    assert str(info.value) == f"{path}: {message}"


def test_read_npz_missing_arrays_say_what_they_hold(tmp_path):
    X, y = _arrays(4)
    for arrays, message in ((dict(y=y), "missing array 'X' (the sequences, float (N, L, F) or (N, C, L))"),
                            (dict(X=X), "missing array 'y' (the labels, integers or text (N,))")):
        path = _npz(tmp_path, **arrays)
        with pytest.raises(DataFileError) as info:
            read_npz(path)
        assert str(info.value) == f"{path}: {message}"


# -- the shared checks ----------------------------------------------------------------------------


def test_check_is_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    check_is_file("f", f)
    with pytest.raises(DataFileError) as info:
        check_is_file("d", tmp_path)
    assert str(info.value) == "d: is a directory; give a .npz or .csv data file"
    with pytest.raises(DataFileError) as info:
        check_is_file("m", tmp_path / "missing")
    assert str(info.value) == "m: no such file; give a .npz or .csv data file"


def test_check_X_bounds():
    assert check_X("f", "X", np.zeros((1, 1, 1))).shape == (1, 1, 1)  # cast later, once lengths are known
    for bad, shown in ((np.zeros((2, 1, 0)), "float64 (2, 1, 0)"), (np.zeros((2, 3)), "float64 (2, 3)"),
                       (np.zeros((1, 1, 1), dtype=np.int32), "int32 (1, 1, 1)")):
        with pytest.raises(DataFileError) as info:
            check_X("f", "X", bad)
        assert str(info.value) == f"f: X must be float with shape (N, L, F), got {shown}"
    with pytest.raises(DataFileError) as info:
        check_X("f", "X", np.zeros((0, 1, 1)))
    assert str(info.value) == "f: X holds no sequences (N = 0)"


def test_check_ints_and_lengths_bounds():
    assert check_ints("f", "y", np.array([1, 2], dtype=np.uint16), 2).dtype == np.int64
    with pytest.raises(DataFileError) as info:
        check_ints("f", "y", np.array([1.0, 2.0]), 2)
    assert str(info.value) == "f: y must be integers with shape (N,) = (2,), got float64 (2,)"
    X = np.zeros((3, 4, 1))
    assert check_lengths("f", "lengths", np.array([1, 4, 2]), X).tolist() == [1, 4, 2]
    for lengths, shown in (([1, 5, 0], "5 at index 1"), ([0, 4, 4], "0 at index 0")):
        with pytest.raises(DataFileError) as info:
            check_lengths("f", "lengths", np.array(lengths), X)
        assert str(info.value) == f"f: lengths must lie in 1..4 (the padded length L), got {shown}"


def test_check_labels_counts_and_bounds():
    assert check_labels("f", "y", np.array([1, 0, 2, 1])) == 3
    assert check_labels("f", "y_test", np.array([0, 2]), 3) == 3
    assert check_labels("f", "y_test", np.array([], dtype=np.int64), 3) == 3
    cases = [
        (np.array([1, 0, -2]), None, "f: y must hold class indices 0, 1, ..., C-1, got -2 at index 2"),
        (np.array([0, 3]), 3,
         "f: y has class 3, but the training labels are 0..2; every test class must also occur in training"),
        (np.array([0, -1]), 3, "f: y must hold class indices 0, 1, ..., C-1, got -1 at index 1"),
        (np.array([1, 1]), None, "f: y holds a single class (1); a classifier needs at least two"),
        (np.array([0, 1, 3]), None,
         "f: y has no sequence of class 2 (labels must be 0..C-1 with every class present; found 0, 1, 3)"),
        (np.arange(12) + np.array([0] * 11 + [1]), None,
         "f: y has no sequence of class 11 (labels must be 0..C-1 with every class present; found "
         "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...)"),
    ]
    cases += [  # ten labels are shown whole; from eleven, the first ten and "..."
        (np.r_[np.arange(9), 10], None,
         "f: y has no sequence of class 9 (labels must be 0..C-1 with every class present; found "
         "0, 1, 2, 3, 4, 5, 6, 7, 8, 10)"),
        (np.r_[np.arange(10), 11], None,
         "f: y has no sequence of class 10 (labels must be 0..C-1 with every class present; found "
         "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...)"),
    ]
    for y, n_classes, message in cases:
        with pytest.raises(DataFileError) as info:
            check_labels("f", "y", y, n_classes)
        assert str(info.value) == message


def test_first_line_and_real_steps():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("  ")) == "ValueError"
    X = np.zeros((2, 3, 1))
    assert real_steps(X, None).tolist() == [[True] * 3] * 2
    assert real_steps(X, np.array([1, 3])).tolist() == [[True, False, False], [True, True, True]]


# -- csv ------------------------------------------------------------------------------------------


def test_csv_pads_and_keeps_first_row_order(tmp_path):
    path = Path(tmp_path) / "d.csv"
    path.write_text("sequence,step,a,b,label,split\n"
                    "q,1,3,4,1,train\nq,0,1,2,1,train\np,0,5,6,0,train\n"
                    "r,0,7,8,0,test\nr,1,9,10,0,test\ns,0,0,0,1,test\ns,1,1,1,1,test\n")
    data = load_csv(path)
    assert data.split == "file" and data.y.tolist() == [1, 0] and data.y_test.tolist() == [0, 1]
    assert data.X.tolist() == [[[1, 2], [3, 4]], [[5, 6], [0, 0]]] and data.lengths.tolist() == [2, 1]
    assert data.lengths_test is None and data.X_test.shape == (2, 2, 2)


@pytest.mark.parametrize("last,shown", [(6, "1, 2, 3, 4, 5, 6"), (7, "1, 2, 3, 4, 5, 6, ..."),
                                         (8, "1, 2, 3, 4, 5, 6, ...")])
def test_csv_gap_message_shows_six_steps(tmp_path, last, shown):
    path = Path(tmp_path) / "d.csv"
    path.write_text("sequence,step,x,label\n" + "".join(f"s,{t},1,0\n" for t in range(1, last + 1)))
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: sequence 's' has steps {shown}; steps must be 0, 1, ..., L-1"


def _zip(path, members):
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def test_read_npz_names_an_unreadable_array(tmp_path):
    """A member whose .npy header is torn, or whose bytes fail the archive's checksum, is named."""
    import io

    path = _zip(tmp_path / "torn.npz", {"X.npy": b"\x93NUMPY\x01\x00garbagegarbage", "y.npy": b""})
    with pytest.raises(DataFileError) as info:
        read_npz(str(path))
    assert str(info.value) == (f"{path}: array 'X' is not a readable .npy array (EOF: reading array header, expected 24935 bytes "
                               "got 12)")
    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((4, 3, 2)), y=np.arange(4))
    data = bytearray(buf.getvalue())
    data[data.find(b"\x00" * 40) + 20] = 1  # one flipped bit in X's values
    (tmp_path / "crc.npz").write_bytes(bytes(data))
    with pytest.raises(DataFileError) as info:
        read_npz(tmp_path / "crc.npz")
    assert str(info.value) == (f"{tmp_path / 'crc.npz'}: is not a readable .npz archive (Bad CRC-32 for file 'X.npy'); "
                               "write it with numpy.savez")


def test_read_npz_takes_str_paths(tmp_path):
    X, y = _arrays(4)
    arrays = read_npz(str(_npz(tmp_path, X=X, y=y)))
    assert np.array_equal(arrays.X, X) and arrays.y.tolist() == y.tolist()


def test_read_npz_refuses_a_zip_lookalike(tmp_path):
    """A file starting with "PK" that is neither a zip nor an .npy is refused as unreadable, not
    unpickled."""
    path = tmp_path / "fake.npz"
    path.write_bytes(b"PK\x00\x00 not a zip at all")
    with pytest.raises(DataFileError) as info:
        read_npz(path)
    assert str(info.value).startswith(f"{path}: is not a readable .npz archive (")


def test_csv_header_names_may_carry_spaces(tmp_path):
    path = Path(tmp_path) / "d.csv"
    path.write_text(" sequence , step ,x, label\na,0,1,0\nb,0,2,1\nc,0,3,0\nd,0,4,1\ne,0,5,0\n")
    data = load_csv(path)
    assert len(data.y) + len(data.y_test) == 5 and data.n_features == 1


def test_csv_that_the_csv_module_cannot_parse_is_named(tmp_path):
    path = Path(tmp_path) / "d.csv"
    path.write_text("sequence,step,x,label\na,0," + "1" * 200_000 + ",0\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value).startswith(f"{path}: is not valid CSV (field larger than field limit")


def test_read_csv_gives_lengths_only_to_a_part_that_needs_them(tmp_path):
    """read_csv hands on lengths for a part whose sequences differ in length, None for a part
    of full-length ones (three sequences of two steps of one feature: N, L and F all differ)."""
    from squareseq.data.csv_files import read_csv

    path = Path(tmp_path) / "d.csv"
    path.write_text("sequence,step,x,label,split\n"
                    + "".join(f"{s},{t},{t},{s % 2},train\n" for s in range(3) for t in range(2))
                    + "t0,0,1,0,test\nt1,0,1,1,test\nt1,1,1,1,test\nt1,2,1,1,test\n")
    arrays = read_csv(str(path))
    assert arrays.X.shape == (3, 2, 1) and arrays.lengths is None
    assert arrays.X_test.shape == (2, 3, 1) and arrays.lengths_test.tolist() == [1, 3]
    assert arrays.y.tolist() == [0, 1, 0] and arrays.y_test.tolist() == [0, 1]


def test_split_takes_labels_in_any_shape():
    """Labels as a list, a column (N, 1) or a row (1, N) split as the flat array does."""
    flat = [a.tolist() for a in stratified_split(Y20)]
    for y in (Y20.tolist(), Y20[:, None], Y20[None, :], torch.from_numpy(Y20)):
        assert [a.tolist() for a in stratified_split(y)] == flat


def test_datasets_carry_their_own_meta_dict(tmp_path):
    X, y = _arrays(10)
    first, second = load_npz(_npz(tmp_path, X=X, y=y)), load_npz(_npz(tmp_path, X=X, y=y))
    assert first.meta == {} and second.meta == {}
    first.meta["note"] = "mine"
    assert second.meta == {}


def test_load_csv_defaults_to_the_seeded_fifth(tmp_path):
    path = Path(tmp_path) / "d.csv"
    labels = Y20.tolist()
    path.write_text("sequence,step,x,label\n" + "".join(f"s{i},0,{i},{c}\n" for i, c in enumerate(labels)))
    data = load_csv(path)
    train, test = stratified_split(Y20, 0.2, 0)
    assert data.split == "stratified" and data.standardizer is None
    assert data.X[:, 0, 0].tolist() == train.tolist() and data.X_test[:, 0, 0].tolist() == test.tolist()


def test_npy_headers_of_format_1_and_2_are_read_and_3_is_refused():
    """numpy writes format 2.0 for headers over 64 KB (many fields); 3.0 (UTF-8 names) is refused."""
    import io

    from squareseq.data.file_checks import npy_header

    for version in ((1, 0), (2, 0)):
        buf = io.BytesIO()
        np.lib.format.write_array(buf, np.zeros((2, 3, 1), np.float32), version=version)
        buf.seek(0)
        assert npy_header("w", buf) == ((2, 3, 1), np.dtype(np.float32))
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros((2, 3, 1), np.float32), version=(3, 0))
    buf.seek(0)
    with pytest.raises(DataFileError) as info:
        npy_header("w", buf)
    assert str(info.value) == "w is a .npy array of format version 3.0, which squareseq does not read; save it with numpy.save"


def test_the_documented_file_bounds():
    """README names these bounds; a changed value must change the README too."""
    from squareseq.data.csv_files import MAX_LINE_CHARS
    from squareseq.data.file_checks import MAX_CLASSES, MAX_PADDED_VALUES

    assert (MAX_PADDED_VALUES, MAX_CLASSES, MAX_LINE_CHARS) == (100_000_000, 256, 1_000_000)


def test_csv_line_numbers_count_from_one(tmp_path):
    """A repeated step is named at its later line; an overlong line by its physical number."""
    from squareseq.data.csv_files import read_csv

    path = tmp_path / "dup.csv"
    path.write_text("sequence,step,x,label\ns,0,1,0\ns,1,1,0\ns,0,2,0\nt,0,1,1\n")
    with pytest.raises(DataFileError) as info:
        read_csv(path)
    assert str(info.value) == f"{path} line 4: sequence 's' has step 0 twice"
    path = tmp_path / "long.csv"
    path.write_text("x" * 1_000_001 + "\n")
    with pytest.raises(DataFileError) as info:
        read_csv(path)
    assert str(info.value) == (f"{path}: physical line 1 is longer than 1,000,000 characters "
                               "(squareseq.data.csv_files.MAX_LINE_CHARS); is it really a long-format .csv file?")
