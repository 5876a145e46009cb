"""User data files (``--data`` .npz/.csv, ``predict --input`` .npy) are bounded and strict: sizes are
checked from a header or the sequence lengths before anything is allocated, CSV labels are any text
of bounded length (whole numbers read as numbers), a byte-order mark is no column, and what is not a regular file is
refused before it is opened. Also pins what a dataset reports (``summary()``, ``seq_len``,
``standardized``), since it goes into metrics.json and the model's configuration."""
import json
import os
import signal
import struct
import warnings
import zipfile

import numpy as np
import pytest
import torch

from squareseq.cli import main
from squareseq.data.csv_files import read_csv
from squareseq.data.file_checks import MAX_CLASSES, MAX_PADDED_VALUES, check_padded_size
from squareseq.data.files import (
    DataFileError,
    SequenceData,
    Standardizer,
    load_csv,
    load_data,
    load_npz,
    stratified_split,
)
from squareseq.errors import DataError, SquareseqError
from test_bounds import _capped

pytestmark = pytest.mark.hardening

HEADER = "sequence,step,x,label\n"
FOUR = "a,0,1,0\nb,0,2,1\nc,0,3,0\nd,0,4,1\ne,0,5,0\nf,0,6,1\n"


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _npy_bytes(shape, descr="<f4"):
    """A .npy file's bytes whose header declares ``shape`` (with only a few bytes of data)."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    header += " " * (117 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + b"\0" * 48


@pytest.fixture
def alarm():
    """Fails a test that would block (opening a FIFO) instead of hanging the suite."""
    def expired(*_):
        raise TimeoutError("blocked: the FIFO was opened")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# -- item 7: sizes bounded before allocating ----------------------------------------------------------

@pytest.mark.slow
def test_sizes_from_files_are_bounded_before_allocating(tmp_path):
    """Under a 1 GB address-space cap: a CSV with one 20000-step sequence and 19999 one-step ones
    (it padded to gigabytes), an .npz and a .npy whose headers declare 10**12 rows (MemoryError)
    are each one line naming the bound, from the lengths or the header alone."""
    rows = [f"long,{t},0.5,0" for t in range(20000)] + [f"s{i},0,0.5,{i % 2}" for i in range(19999)]
    _csv(tmp_path, HEADER + "\n".join(rows) + "\n", "pad.csv")
    (tmp_path / "huge.npy").write_bytes(_npy_bytes((10**12, 3, 2)))
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        archive.writestr("X.npy", _npy_bytes((10**12, 3, 2)))
        archive.writestr("y.npy", _npy_bytes((10**12,), "<i8"))
    proc = _capped(f"""
        import json
        from pathlib import Path
        from squareseq.data.files import load_data
        from squareseq.data.inputs import read_inputs
        from squareseq.errors import SquareseqError
        out = []
        for load, name in ((load_data, "pad.csv"), (load_data, "huge.npz"), (read_inputs, "huge.npy")):
            try:
                load(Path({str(tmp_path)!r}) / name)
            except SquareseqError as exc:
                out.append(str(exc))
        print(json.dumps(out))
    """, cap_gb=1.0)
    assert proc.returncode == 0, proc.stderr
    bound = f"squareseq reads at most {MAX_PADDED_VALUES:,} (squareseq.data.file_checks.MAX_PADDED_VALUES)"
    assert json.loads(proc.stdout) == [
        f"{tmp_path / 'pad.csv'}: the training sequences pad to 20,000 x 20,000 x 1 = 400,000,000 values; {bound}: "
        "the longest has 20,000 steps; shorten or drop the longest sequences, or split them over several files",
        f"{tmp_path / 'huge.npz'}: array 'X' has shape 1,000,000,000,000 x 3 x 2 = 6,000,000,000,000 values; "
        f"{bound}: use fewer or shorter sequences, or split them over several files",
        f"{tmp_path / 'huge.npy'}: has shape 1,000,000,000,000 x 3 x 2 = 6,000,000,000,000 values; {bound}: "
        "use fewer or shorter sequences, or split them over several files",
    ]


def test_the_padded_bound_is_exact_and_counts_the_test_part_too(tmp_path, monkeypatch):
    """MAX_PADDED_VALUES values pass, one more is refused; the test part is bounded on its own."""
    import squareseq.data.file_checks as checks

    check_padded_size("x has shape", (2, 5, MAX_PADDED_VALUES // 10), "fix")  # exactly the bound: fine
    with pytest.raises(DataFileError) as info:
        check_padded_size("x has shape", (MAX_PADDED_VALUES + 1,), "fix")
    assert str(info.value) == (f"x has shape {MAX_PADDED_VALUES + 1:,} = {MAX_PADDED_VALUES + 1:,} values; squareseq "
                               f"reads at most {MAX_PADDED_VALUES:,} (squareseq.data.file_checks.MAX_PADDED_VALUES): "
                               "fix")
    monkeypatch.setattr(checks, "MAX_PADDED_VALUES", 6)
    train = "".join(f"{row},train\n" for row in FOUR.splitlines())
    path = _csv(tmp_path, "sequence,step,x,label,split\n" + train + "t,0,1,0,test\nt,1,1,0,test\nt,2,1,0,test\n"
                "u,0,1,1,test\nv,0,1,0,test\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)  # 5 real test values, but padded 3 x 3
    assert str(info.value) == (f"{path}: the test sequences pad to 3 x 3 x 1 = 9 values; squareseq reads at most 6 "
                               "(squareseq.data.file_checks.MAX_PADDED_VALUES): the longest has 3 steps; shorten or "
                               "drop the longest sequences, or split them over several files")
    path = _csv(tmp_path, "sequence,step,x,label,split\n" + train + "w,0,1,1,train\n" + "t,0,1,0,test\n" * 99)
    with pytest.raises(DataFileError) as info:
        load_csv(path)  # reading stops at the first value past the bound
    assert str(info.value) == (f"{path} line 8: the training sequences hold more than 6 values; squareseq reads at "
                               "most 6 (squareseq.data.file_checks.MAX_PADDED_VALUES): split the sequences over "
                               "several files")
    np.savez(tmp_path / "seven.npz", X=np.zeros((7, 1, 1)), y=np.arange(7) % 2)
    with pytest.raises(DataFileError, match=r"array 'X' has shape 7 x 1 x 1 = 7 values; squareseq reads at most 6 "):
        load_npz(tmp_path / "seven.npz")


def test_npz_arrays_are_checked_from_their_headers(tmp_path):
    """Pickled objects are refused from the header (never loaded); a member that is not .npy is
    an unreadable array, not an internal error."""
    with zipfile.ZipFile(tmp_path / "obj.npz", "w") as archive:
        archive.writestr("X.npy", _npy_bytes((2, 1, 1), "|O"))
        archive.writestr("y.npy", _npy_bytes((2,), "<i8"))
    with pytest.raises(DataFileError) as info:
        load_npz(tmp_path / "obj.npz")
    assert str(info.value) == f"{tmp_path / 'obj.npz'}: array 'X' holds Python objects (pickled); save plain numeric arrays"
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as archive:
        archive.writestr("X", b"raw bytes, no header")
        archive.writestr("y.npy", _npy_bytes((2,), "<i8"))
    with pytest.raises(DataFileError) as info:
        load_npz(tmp_path / "raw.npz")
    assert str(info.value).startswith(f"{tmp_path / 'raw.npz'}: array 'X' is not a readable .npy array (")
    with zipfile.ZipFile(tmp_path / "many.npz", "w") as archive:  # names are checked before any header is read
        for k in range(12):
            archive.writestr(f"a{k:02d}.npy", b"not read")
    with pytest.raises(DataFileError) as info:
        load_npz(tmp_path / "many.npz")
    assert str(info.value) == (f"{tmp_path / 'many.npz'}: unknown array(s) 'a00', 'a01', 'a02', 'a03', 'a04', 'a05', "
                               "'a06', 'a07', 'a08', 'a09', ... (allowed: X, y, lengths, X_test, y_test, lengths_test)")


# -- items 8, 9 and 2: labels are any text (whole numbers read as numbers), of bounded length --------

@pytest.mark.parametrize("label, expected", [
    ("1" + "0" * 30, ["0", "1" + "0" * 30]),  # a whole number beyond int64: kept as text
    ("256", [0, 256]),
    ("+1", [0, 1]),
    ("-1", [0, -1]),
    (" 007 ", [0, 7]),
    ("-0", [0, 0]),
    ("1_0", ["0", "1_0"]),
    ("1.0", ["0", "1.0"]),
    ("\u0661", ["0", "\u0661"]),
    ("walking", ["0", "walking"]),
])
def test_csv_labels_may_be_any_text(tmp_path, label, expected):
    """The reader gives int64 labels when every label is a whole number int64 holds, else their text."""
    y = read_csv(_csv(tmp_path, HEADER + f"a,0,1,0\nb,0,1,{label}\n")).y
    assert y.tolist() == expected
    assert y.dtype == (np.int64 if isinstance(expected[0], int) else np.dtype(f"U{max(map(len, expected))}"))


def test_an_overlong_csv_label_is_one_line(tmp_path):
    path = _csv(tmp_path, HEADER + "a,0,1,0\nb,0,1," + "9" * 5000 + "\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == (f"{path} line 3: label '9999999999999999999999999999999999999999...' is longer than "
                               "100 characters (squareseq.data.csv_schema.MAX_LABEL_CHARS); use shorter class names")


def test_csv_steps_are_plain_indices_and_labels_may_have_spaces_and_zeros(tmp_path):
    path = _csv(tmp_path, HEADER + "a,1_0,1,0\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == f"{path} line 2: step must be a whole number 0, 1, 2, ... written in plain digits, got '1_0'"
    path = _csv(tmp_path, HEADER + f"a,{MAX_PADDED_VALUES},1,0\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == (f"{path} line 2: step '{MAX_PADDED_VALUES}' is too large; a sequence has at most "
                               f"{MAX_PADDED_VALUES:,} steps")
    data = load_csv(_csv(tmp_path, HEADER + FOUR.replace(",1\n", ", 001 \n")), test_fraction=0.34)
    assert sorted(np.r_[data.y, data.y_test].tolist()) == [0, 0, 0, 1, 1, 1]


def test_an_overlong_csv_label_is_exit_2_and_leaves_no_run_folder(tmp_path, capsys):
    path = _csv(tmp_path, HEADER + "a,0,1,0\nb,0,1," + "x" * 101 + "\n")
    assert main(["train", "--data", str(path), "--out", str(tmp_path / "run"), "--quiet", "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert err == (f"squareseq: error: {path} line 3: label '{'x' * 40}...' is longer than 100 characters "
                   "(squareseq.data.csv_schema.MAX_LABEL_CHARS); use shorter class names\n")
    assert not (tmp_path / "run").exists()


def test_the_class_count_is_bounded(tmp_path):
    """MAX_CLASSES classes load; one more is refused (counted from the distinct labels, never sized
    by a label's value)."""
    X = np.zeros((2 * MAX_CLASSES, 1, 1), dtype=np.float32)
    data = load_npz(_savez(tmp_path, X=X, y=np.arange(2 * MAX_CLASSES) % MAX_CLASSES), test_fraction=0.5)
    assert data.n_classes == MAX_CLASSES
    X = np.zeros((MAX_CLASSES + 1, 1, 1), dtype=np.float32)
    path = _savez(tmp_path, X=X, y=np.arange(MAX_CLASSES + 1))
    with pytest.raises(DataFileError) as info:
        load_npz(path)
    assert str(info.value) == (f"{path}: y has 257 classes; squareseq reads at most 256 "
                               "(squareseq.data.file_checks.MAX_CLASSES): merge classes")


def _savez(tmp_path, name="data.npz", **arrays):
    np.savez(tmp_path / name, **arrays)
    return tmp_path / name


def test_unsigned_labels_beyond_int64_are_not_wrapped(tmp_path):
    """A uint64 label 2**64-1 once became -1; any integer is a label now, kept whole as its class's
    name (in numeric order). Lengths beyond int64 are refused, not wrapped."""
    y = np.array([0, 1, 0, 1, 0, 2**64 - 1, 2**64 - 1, 1], dtype=np.uint64)
    data = load_npz(_savez(tmp_path, X=np.zeros((8, 2, 1)), y=y), test_fraction=0.4)
    assert data.class_names == ["0", "1", "18446744073709551615"]
    path = _savez(tmp_path, X=np.zeros((6, 2, 1)), y=np.arange(6) % 2, lengths=np.array([1, 2, 1, 2, 1, 2**63],
                                                                                          dtype=np.uint64))
    with pytest.raises(DataFileError) as info:
        load_npz(path)
    assert str(info.value) == (f"{path}: lengths has 9223372036854775808 at index 5, beyond a 64-bit integer; "
                               "give lengths 1..L")


def test_values_beyond_float32_are_one_line_without_numpy_warnings(tmp_path):
    """1e300 became inf with a numpy RuntimeWarning printed above the one-line error; now it is the
    error, and in padding (which is ignored) it passes silently."""
    path = _csv(tmp_path, HEADER + "a,0,1e300,0\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DataFileError) as info:
            load_csv(path)
        assert str(info.value) == (f"{path} line 2: feature 'x' is 1e300, beyond float32 (|x| <= 3.403e+38); "
                                   "rescale the data")
        X = np.zeros((6, 3, 1))
        X[2, 1, 0] = -1e300
        path = _savez(tmp_path, X=X, y=np.arange(6) % 2)
        with pytest.raises(DataFileError) as info:
            load_npz(path)
        assert str(info.value) == (f"{path}: X has -1e+300 at sequence 2, step 1, feature 0, beyond float32 "
                                   "(|x| <= 3.403e+38); rescale the data")
        data = load_npz(_savez(tmp_path, "pad.npz", X=X, y=np.arange(6) % 2, lengths=np.array([3, 3, 1, 3, 3, 3])),
                        test_fraction=0.34)
        assert np.isfinite(data.X).all() and np.isfinite(data.X_test).all()


# -- item 10: byte-order marks, FIFOs, directories, an .npz given to --input ---------------------------

def test_a_csv_with_a_byte_order_mark_loads_like_one_without(tmp_path):
    plain = load_csv(_csv(tmp_path, HEADER + FOUR, "plain.csv"), test_fraction=0.34)
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (HEADER + FOUR).encode())
    bom = load_csv(path, test_fraction=0.34)
    for key in ("X", "y", "X_test", "y_test"):
        assert np.array_equal(getattr(bom, key), getattr(plain, key)), key


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_data_files_that_are_not_regular_files(tmp_path, alarm, suffix):
    fifo, folder = tmp_path / f"fifo{suffix}", tmp_path / f"folder{suffix}"
    os.mkfifo(fifo)
    folder.mkdir()
    for path, problem in ((fifo, "is not a regular file (a pipe, socket or device)"), (folder, "is a directory"),
                          (tmp_path / f"absent{suffix}", "no such file")):
        with pytest.raises(DataFileError) as info:
            load_data(path)
        assert str(info.value) == f"{path}: {problem}; give a .npz or .csv data file"


def test_predict_input_says_what_the_path_is(tmp_path, alarm, capsys):
    """predict --input: a FIFO (it would block), a folder, a missing file or an unknown kind is one
    line before any run is read; pickled or text arrays and junk are one line from the reader."""
    from squareseq.cli import main

    fifo, folder = tmp_path / "fifo.npy", tmp_path / "folder.npy"
    os.mkfifo(fifo)
    folder.mkdir()
    (tmp_path / "x.txt").write_text("1 2\n")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "text.npy", np.array(["ab"]))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    fix = "give a .npy array (N, L, F), an .npz with X[, lengths] or a long-format .csv"
    absent = tmp_path / "absent.npy"
    before_the_run = {
        fifo: f"--input {fifo} is not a regular file (a pipe, socket or device); {fix}",
        folder: f"--input {folder} is a directory; {fix}",
        absent: f"--input {absent} does not exist; {fix}",
        tmp_path / "x.txt": f"--input {tmp_path / 'x.txt'}: unsupported file type '.txt'; {fix}",
    }
    for path, message in before_the_run.items():
        assert main(["predict", str(tmp_path / "no-run"), "--input", str(path)]) == 2
        assert capsys.readouterr().err == f"squareseq: error: {message}\n"
    from squareseq.data.inputs import read_inputs

    expected = {
        tmp_path / "obj.npy": f"{tmp_path / 'obj.npy'} holds Python objects (pickled); save plain numeric arrays",
        tmp_path / "text.npy": f"{tmp_path / 'text.npy'}: X must be float with shape (N, L, F), got <U2 (1,)",
        tmp_path / "junk.npy": f"{tmp_path / 'junk.npy'} is not a readable .npy array (EOF: reading magic "
                               "string, expected 8 bytes got 4)",
    }
    for path, message in expected.items():
        with pytest.raises(SquareseqError) as info:
            read_inputs(path)
        assert str(info.value) == message
    np.save(tmp_path / "good.npy", np.ones((2, 3, 2), dtype=np.float64))
    good, lengths = read_inputs(tmp_path / "good.npy")
    assert good.dtype == np.float32 and good.shape == (2, 3, 2) and lengths is None


# -- item 11: what a dataset reports --------------------------------------------------------------------

def _dataset(tmp_path, standardize):
    """5 training sequences of 3 steps and 4 test sequences of 7 (one shorter), 2 features, 3 classes."""
    rng = np.random.RandomState(0)
    return load_npz(_savez(tmp_path, X=rng.randn(5, 3, 2), y=np.array([0, 1, 2, 0, 1]),
                           X_test=rng.randn(4, 7, 2), y_test=np.array([2, 1, 0, 0]),
                           lengths_test=np.array([7, 7, 2, 7])), standardize=standardize)


@pytest.mark.parametrize("standardize", [False, True])
def test_summary_and_shape_facts_are_exact(tmp_path, standardize):
    """seq_len is the longest sequence of either part (7 here: not N, not the training L);
    summary() is exactly what metrics.json records."""
    data = _dataset(tmp_path, standardize)
    assert (data.n_features, data.seq_len, data.n_classes, data.variable_length) == (2, 7, 3, True)
    assert (data.standardizer is not None) is standardize
    assert data.summary() == {
        "source": str(tmp_path / "data.npz"), "n_train": 5, "n_test": 4, "n_features": 2, "seq_len": 7,
        "n_classes": 3, "variable_length": True, "split": "file", "standardized": standardize,
        "n_val": 0, "layout": "NLF", "class_names": ["0", "1", "2"],
    }
    longer_train = SequenceData(np.zeros((2, 9, 1), np.float32), np.array([0, 1]), None,
                                np.zeros((3, 4, 1), np.float32), np.array([0, 1, 1]), None, 2)
    assert longer_train.seq_len == 9 and not longer_train.variable_length
    assert longer_train.summary() == {
        "source": "", "n_train": 2, "n_test": 3, "n_features": 1, "seq_len": 9, "n_classes": 2,
        "variable_length": False, "split": "file", "standardized": False, "n_val": 0, "layout": "NLF",
        "class_names": [],
    }


def test_stratified_summary_and_the_smaller_messages(tmp_path):
    path = _csv(tmp_path, HEADER + FOUR)
    data = load_data(path, test_fraction=0.34, seed=0)
    assert data.summary() == {
        "source": str(path), "n_train": 4, "n_test": 2, "n_features": 1, "seq_len": 1, "n_classes": 2,
        "variable_length": False, "split": "stratified", "standardized": False, "n_val": 0, "layout": "NLF",
        "class_names": ["0", "1"],
    }
    with pytest.raises(DataError) as info:
        data.tensors("valid")
    assert str(info.value) == "part must be 'train', 'val' or 'test', not 'valid'"
    for fraction in (0, 1):
        with pytest.raises(DataError) as info:
            stratified_split([0, 1, 0, 1], fraction)
        assert str(info.value) == f"test_fraction must lie strictly between 0 and 1, got {fraction}"
    with pytest.raises(DataError) as info:
        Standardizer().transform(np.zeros((1, 1, 1)))
    assert str(info.value) == "call fit() before transform()"
    with pytest.raises(DataFileError) as info:
        load_data(tmp_path / "data")
    assert str(info.value) == f"{tmp_path / 'data'}: unsupported file type '(no suffix)'; use .npz, .csv or .ts"


# -- boundaries and defaults, one by one ----------------------------------------------------------------

def test_check_boundaries():
    from squareseq.data.file_checks import as_float32, check_labels, check_lengths, first_line, real_steps

    top = float(np.finfo(np.float32).max)
    X = np.array([[[top], [-top]]])
    assert as_float32("f", "X", X, None).tolist() == [[[top], [-top]]]  # float32's largest value itself: fine
    with pytest.raises(DataFileError) as info:
        as_float32("f", "X", np.array([[[0.0], [np.nextafter(top, np.inf)]]]), None)
    assert str(info.value) == ("f: X has 3.40282e+38 at sequence 0, step 1, feature 0, beyond float32 "
                               "(|x| <= 3.403e+38); rescale the data")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the padding's overflow is silent: padding is zeroed later
        assert as_float32("f", "X", np.array([[[0.0], [1e300]]]), np.array([1])).tolist() == [[[0.0], [np.inf]]]
    with pytest.raises(DataFileError):
        as_float32("f", "X", np.array([[[0.0], [1e300]]]), np.array([2]))
    assert check_lengths("f", "lengths", np.array([1, 3]), np.zeros((2, 3, 1))).tolist() == [1, 3]
    assert real_steps(np.zeros((2, 3, 1)), None).all()
    assert real_steps(np.zeros((2, 3, 1)), np.array([1, 3])).tolist() == [[True, False, False], [True, True, True]]
    assert first_line(ValueError("one\ntwo")) == "one" and first_line(KeyError()) == "KeyError"
    assert check_labels("f", "y", np.array([1, 0, 1])) == 2 and check_labels("f", "y", np.array([1, 1]), 3) == 3
    with pytest.raises(DataFileError) as info:
        check_labels("f", "y", np.r_[np.arange(10), 11])
    assert str(info.value) == ("f: y has no sequence of class 10 (labels must be 0..C-1 with every class present; "
                               "found 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, ...)")
    with pytest.raises(DataFileError) as info:
        check_labels("f", "y", np.r_[np.arange(9), 10])
    assert str(info.value) == ("f: y has no sequence of class 9 (labels must be 0..C-1 with every class present; "
                               "found 0, 1, 2, 3, 4, 5, 6, 7, 8, 10)")


def test_csv_field_boundaries(tmp_path):
    """The largest class index parses (sparse labels are classes now; three of one sequence each
    are too few to split); long text is cut."""
    path = _csv(tmp_path, HEADER + "a,0,1,0\nb,0,1,1\nc,0,1,0255\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == (f"{path}: 3 sequences are too few to hold out 20% per class for testing; add "
                               "sequences, raise the test fraction, or give a test set")
    for text, shown in (("x" * 40, "'" + "x" * 40 + "'"), ("x" * 41, "'" + "x" * 40 + "...'")):
        path = _csv(tmp_path, HEADER + f"a,0,{text},0\n")
        with pytest.raises(DataFileError) as info:
            load_csv(path)
        assert str(info.value) == f"{path} line 2: feature 'x' must be a number, got {shown}"
    path = _csv(tmp_path, HEADER + "a,0,1,0\na,1,1,0\na,1,2,0\na,0,3,0\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == f"{path} line 4: sequence 'a' has step 1 twice"
    path = _csv(tmp_path, HEADER + "".join(f"a,{t},1,0\n" for t in (0, 1, 2, 3, 4, 5, 7)))
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: sequence 'a' has steps 0, 1, 2, 3, 4, 5, ...; steps must be 0, 1, ..., L-1"


def test_public_defaults(tmp_path):
    """tensors() gives class indices unless asked for float labels; the split's defaults are a
    fifth held out with seed 0; loading does not standardise unless asked."""
    data = load_csv(_csv(tmp_path, HEADER + FOUR + "g,0,7,0\nh,0,8,1\ni,0,9,0\nj,0,10,1\n"))
    x, y, lengths = data.tensors()
    assert y.dtype == torch.int64 and y.shape == (8,) and lengths is None and x.shape == (8, 1, 1)
    assert data.tensors("test", float_labels=True)[1].dtype == torch.float32
    assert data.standardizer is None and data.split == "stratified"
    train, test = stratified_split(np.arange(10) % 2)
    assert (train.tolist(), test.tolist()) == (stratified_split(np.arange(10) % 2, 0.2, 0)[0].tolist(), [1, 4])
    assert data.y_test.tolist() == [1, 0] and data.X_test[:, 0, 0].tolist() == [2.0, 5.0]  # sequences b and e


def test_csv_gaps_are_named_in_the_first_sequence_that_has_one(tmp_path):
    path = _csv(tmp_path, HEADER + "b,1,1,0\nb,0,1,0\na,0,1,1\na,2,1,1\nc,1,1,0\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == f"{path}: sequence 'a' has steps 0, 2; steps must be 0, 1, ..., L-1"


def test_csv_lines_and_sequences_are_bounded_while_reading(tmp_path, monkeypatch):
    """A file without line breaks is refused before it is held whole; so is the sequence past
    MAX_SEQUENCES, at its line."""
    import squareseq.data.csv_files as csv_files

    monkeypatch.setattr(csv_files, "MAX_LINE_CHARS", 30)
    path = _csv(tmp_path, HEADER + "a,0," + "1" * 30 + ",0\n")
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == (f"{path}: physical line 2 is longer than 30 characters "
                               "(squareseq.data.csv_files.MAX_LINE_CHARS); is it really a long-format .csv file?")
    path = _csv(tmp_path, HEADER + "z,0," + "1" * 23 + ",0\n" + FOUR)  # 30 characters with the line break
    assert load_csv(path, test_fraction=0.34).n_classes == 2
    monkeypatch.setattr(csv_files, "MAX_SEQUENCES", 5)
    path = _csv(tmp_path, HEADER + FOUR)
    with pytest.raises(DataFileError) as info:
        load_csv(path)
    assert str(info.value) == (f"{path} line 7: more than 5 sequences; squareseq reads at most 5 "
                               "(squareseq.config.MAX_SEQUENCES): split them over several files")
    assert load_csv(_csv(tmp_path, HEADER + FOUR.replace("f,0,6,1\n", "e,1,6,0\n")), test_fraction=0.4).n_classes == 2


def test_the_cli_says_what_a_path_is_and_exits_2(tmp_path, alarm, capsys):
    """--data and --input on a FIFO (it would block), a directory, a file of unknown kind for
    --input: one line, exit 2, checked before any model or run folder exists."""
    os.mkfifo(tmp_path / "fifo.csv")
    (tmp_path / "dir.npy").mkdir()
    (tmp_path / "x.npx").write_bytes(b"")
    out = str(tmp_path / "run")
    cases = [
        (["train", "--data", str(tmp_path / "fifo.csv"), "--out", out, "--quiet", "--no-figures"],
         f"{tmp_path / 'fifo.csv'}: is not a regular file (a pipe, socket or device); give a .npz or .csv data file"),
        (["predict", out, "--input", str(tmp_path / "dir.npy")],
         f"--input {tmp_path / 'dir.npy'} is a directory; give a .npy array (N, L, F), an .npz with X[, lengths] or "
         "a long-format .csv"),
        (["predict", out, "--input", str(tmp_path / "x.npx")],
         f"--input {tmp_path / 'x.npx'}: unsupported file type '.npx'; give a .npy array (N, L, F), an .npz with "
         "X[, lengths] or a long-format .csv"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert capsys.readouterr().err == f"squareseq: error: {message}\n"
    assert not (tmp_path / "run").exists()


def test_unsigned_integers_up_to_int64_are_read_as_given(tmp_path):
    path = _savez(tmp_path, X=np.zeros((6, 2, 1)), y=(np.arange(6) % 2).astype(np.uint64),
                  lengths=np.array([1, 2, 1, 2, 1, 2**63 - 1], dtype=np.uint64))
    with pytest.raises(DataFileError) as info:
        load_npz(path)
    assert str(info.value) == (f"{path}: lengths must lie in 1..2 (the padded length L), got 9223372036854775807 at "
                               "index 5")
    data = load_npz(_savez(tmp_path, X=np.zeros((6, 2, 1)), y=(np.arange(6) % 2).astype(np.uint8)), test_fraction=0.34)
    assert data.y.dtype == np.int64 and data.n_classes == 2


def test_an_archive_with_an_unsupported_zip_feature_is_one_line(tmp_path):
    """zipfile raises NotImplementedError for a compression method it does not know: a one-line
    refusal, not an internal error (random byte changes to an .npz once found such a path)."""
    import io

    from squareseq.data.npz_files import read_npz
    from squareseq.errors import SquareseqError

    buf = io.BytesIO()
    np.savez(buf, X=np.zeros((4, 3, 2), np.float32), y=np.arange(4) % 2)
    data = bytearray(buf.getvalue())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local and central headers
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + offset:start + offset + 2] = (99).to_bytes(2, "little")  # compression method 99
            start += 4
    path = tmp_path / "odd.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(SquareseqError) as info:
        read_npz(path)
    assert str(info.value) == (f"{path}: is not a readable .npz archive (That compression method is not supported); "
                               "write it with numpy.savez")
