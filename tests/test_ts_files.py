"""The .ts reader (aeon's loader, an optional extra): aeon's (N, C, L) arrays and lists of (C, L_i)
arrays become (N, L, F) float32 zero-padded with lengths, labels stay text, a _TRAIN file takes its
_TEST sibling, and every problem (aeon missing included) is one line."""
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from squareseq.data import file_checks, ts_files
from squareseq.data.file_checks import DataFileError
from squareseq.data.ts_files import AEON_MISSING, read_ts

TINY = """@problemName tiny
@timeStamps false
@missing true
@univariate false
@dimensions 2
@equalLength true
@seriesLength 3
@classLabel true walk run
@data
1,2,3:4,5,6:walk
1,2,?:3,4,?:run
1,2.5,3:3,4,5:run
"""


def _ts(tmp_path, text=TINY, name="tiny.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _archive(name: str) -> Path:
    aeon_datasets = pytest.importorskip("aeon.datasets")
    return Path(aeon_datasets.__file__).parent / "data" / name


def test_without_aeon_a_ts_file_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch):
    path = _ts(tmp_path)
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(DataFileError) as info:
        read_ts(path)
    assert str(info.value) == f"{path}: reading .ts files needs the optional aeon extra: pip install 'squareseq[aeon]'"
    assert AEON_MISSING in str(info.value)


def test_trailing_missing_steps_are_padding_and_labels_stay_text(tmp_path):
    pytest.importorskip("aeon.datasets")
    arrays = read_ts(_ts(tmp_path))
    assert arrays.X.dtype == np.float32 and arrays.X.shape == (3, 3, 2)
    assert arrays.X[0].tolist() == [[1, 4], [2, 5], [3, 6]] and arrays.X[2, 1].tolist() == [2.5, 4]
    assert arrays.lengths.tolist() == [3, 2, 3] and arrays.X[1, 2].tolist() == [0, 0]
    assert arrays.y.dtype.kind == "U" and arrays.y.tolist() == ["walk", "run", "run"]
    assert arrays.X_test is None and arrays.y_test is None and arrays.lengths_test is None


def test_a_train_file_takes_its_test_sibling_from_the_archive(tmp_path):
    """BasicMotions (6 channels, 100 steps, equal length): each value where aeon put it, transposed."""
    load_from_ts_file = pytest.importorskip("aeon.datasets").load_from_ts_file

    train = _archive("BasicMotions/BasicMotions_TRAIN.ts")
    arrays = read_ts(train)
    raw, labels = load_from_ts_file(str(train))
    assert arrays.X.shape == (40, 100, 6) and arrays.X_test.shape == (40, 100, 6)
    assert arrays.X.tobytes() == raw.transpose(0, 2, 1).astype(np.float32).tobytes()
    assert arrays.y.tolist() == labels.tolist() and arrays.lengths is None and arrays.lengths_test is None
    assert set(arrays.y_test.tolist()) == {"standing", "running", "walking", "badminton"}
    alone = tmp_path / "BasicMotions_TRAIN.ts"  # no _TEST beside it: training data only
    shutil.copy(train, alone)
    assert read_ts(alone).X_test is None


def test_variable_length_series_get_lengths():
    """JapaneseVowels: 12 channels, 7 to 29 steps, aeon's list of (C, L_i) arrays."""
    load_from_ts_file = pytest.importorskip("aeon.datasets").load_from_ts_file

    train = _archive("JapaneseVowels/JapaneseVowels_TRAIN.ts")
    arrays = read_ts(train)
    raw, _ = load_from_ts_file(str(train))
    assert isinstance(raw, list) and arrays.X.shape == (270, max(a.shape[1] for a in raw), 12)
    assert arrays.lengths.tolist() == [a.shape[1] for a in raw]
    for i in (0, 100, 269):
        n = arrays.lengths[i]
        assert np.array_equal(arrays.X[i, :n], raw[i].T.astype(np.float32)) and not arrays.X[i, n:].any()
    assert arrays.X_test.shape[0] == 370 and arrays.y_test.dtype.kind == "U"


def test_a_test_file_alone_is_read_as_training_data():
    arrays = read_ts(_archive("ItalyPowerDemand/ItalyPowerDemand_TEST.ts"))
    assert arrays.X.shape == (1029, 24, 1) and arrays.X_test is None and sorted(set(arrays.y.tolist())) == ["1", "2"]


#: Broken .ts texts (from TINY) and the one line each gets, after "<path>: ".
TS_PROBLEMS = [
    (TINY.replace("@classLabel true walk run", "@classLabel false").replace(":walk", "").replace(":run", ""),
     "has no class labels (@classLabel false); squareseq classifies sequences, so give a classification .ts file"),
    ("not a ts file\n", "holds no series (is it really a .ts file, with an @data section?)"),
    (TINY.replace("2.5", "x"), "is not a readable .ts file (could not convert string to float: 'x')"),
    (TINY.replace("3,4,5:run", "3,4,5:jump"),
     "series 2 has label 'jump', not one of the @classLabel values (walk, run)"),
    (TINY.encode().replace(b"walk\n", b"w\xffalk\n"), "is not UTF-8 text (is it really a .ts file?)"),
    (TINY.replace("2.5", "1e39"),
     "X has 1e+39 at series 2, step 1, channel 0, beyond float32 (|x| <= 3.403e+38); rescale the data"),
    (TINY.replace("1,2,?:3,4,?:run", "?,?,?:?,?,?:run"), "X series 1 has no values (every step is missing)"),
]


def test_a_missing_ts_file_is_one_line(tmp_path):
    pytest.importorskip("aeon.datasets")
    missing = tmp_path / "absent.ts"
    with pytest.raises(DataFileError) as info:
        read_ts(missing)
    assert str(info.value) == f"{missing}: no such file; give a .npz or .csv data file"


@pytest.mark.parametrize("content, expected", TS_PROBLEMS)
def test_every_ts_problem_is_one_line(tmp_path, content, expected):
    pytest.importorskip("aeon.datasets")
    path = tmp_path / "tiny.ts"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataFileError) as info:
        read_ts(path)
    assert str(info.value) == f"{path}: {expected}"


def test_ts_sizes_are_bounded_before_padding(tmp_path, monkeypatch):
    pytest.importorskip("aeon.datasets")
    path = _ts(tmp_path)
    monkeypatch.setattr(ts_files, "MAX_TS_BYTES", 100)
    with pytest.raises(DataFileError) as info:
        read_ts(path)
    assert str(info.value) == (f"{path}: is {path.stat().st_size:,} bytes; squareseq reads .ts files of at most 100 "
                               "(squareseq.data.ts_files.MAX_TS_BYTES): split the series over several files")
    monkeypatch.undo()
    monkeypatch.setattr(file_checks, "MAX_PADDED_VALUES", 17)
    with pytest.raises(DataFileError) as info:
        read_ts(path)
    assert str(info.value) == (f"{path}: the series pad to 3 x 3 x 2 = 18 values; squareseq reads at most 17 "
                               "(squareseq.data.file_checks.MAX_PADDED_VALUES): the longest has 3 steps; shorten "
                               "or drop the longest series")
    monkeypatch.setattr(file_checks, "MAX_PADDED_VALUES", 18)
    assert read_ts(path).X.size == 18
    monkeypatch.setattr(ts_files, "MAX_SEQUENCES", 2)
    with pytest.raises(DataFileError) as info:
        read_ts(path)
    assert str(info.value) == (f"{path}: holds 3 series; squareseq reads at most 2 (squareseq.config.MAX_SEQUENCES): "
                               "split them over several files")


def test_train_and_test_files_must_have_the_same_channels(tmp_path):
    pytest.importorskip("aeon.datasets")
    train = _ts(tmp_path, name="pair_TRAIN.ts")
    one_channel = TINY.replace("@dimensions 2", "@dimensions 1").replace("@univariate false", "@univariate true")
    one_channel = "\n".join(line.split(":")[0] + ":" + line.split(":")[-1] if ":" in line else line
                            for line in one_channel.splitlines()) + "\n"
    test = _ts(tmp_path, one_channel, name="pair_TEST.ts")
    with pytest.raises(DataFileError) as info:
        read_ts(train)
    assert str(info.value) == (f"{test}: its series have 1 channels, but {train} has 2; give a matching pair of "
                               "_TRAIN and _TEST files")
