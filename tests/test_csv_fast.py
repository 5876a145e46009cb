"""The fast CSV reader gives exactly the strict reader's answer: on a few hundred seeded random
files (well-formed ones and ones with every kind of oddity), the arrays are identical bit for bit,
or both readers raise the same one-line error; and the fast reader takes the well-formed ones."""
import numpy as np
import pytest

from squareseq.data import csv_fast, csv_files, file_checks
from squareseq.data.csv_files import read_csv, read_csv_inputs
from squareseq.data.file_checks import MAX_PADDED_VALUES, DataFileError

FLOATS = ["1", "-2.5", "0.1", "1e3", "-1E-5", ".5", "5.", "+3", "0", "-0", "123456789.123456789", "3.4028234e38",
          "1e-320", "0.30000000000000004", "2.5e+2"]
ODD_FLOATS = [" 1.5", "2 ", "1_0", "nan", "inf", "-inf", "1e39", "3.4028235e38", "", "x", "1.2.3", "1e", "\u0661",
              "0x10", "1\t", "Infinity", "+-1"]
LABELS = ["0", "1", "2", "walking", "running", "-1", "+1", "007", "7", " 3 ", "1.0", "a b"]
ODD_LABELS = ["", " ", "x" * 101, "caf\u00e9", '"q"']
STEPS_ODD = [" 1", "1 ", "+1", "1_0", "-0", "", "x", "\u0661", "01", "00", "1e1", "99999999999999999999"]
SPLITS = ["train", "test", "TRAIN", " test", "Test "]
ODD_SPLITS = ["valid", "", "tr ain"]


def _file(rng: np.random.Generator) -> bytes:
    """A random long-format file: mostly well-formed, each oddity with a small probability."""
    n_features = int(rng.integers(1, 4))
    with_split = rng.random() < 0.4
    labelled = rng.random() < 0.9
    columns = ["sequence", "step"] + [f"f{k}" for k in range(n_features)] + (["label"] if labelled else [])
    columns += ["split"] if with_split else []
    order = rng.permutation(len(columns)) if rng.random() < 0.3 else np.arange(len(columns))
    header = [columns[i] for i in order]
    odd = rng.random() < 0.5  # half the files carry oddities
    p = 0.04 if odd else 0.0

    def pick(common, rare):
        return str(rng.choice(rare)) if rng.random() < p else str(rng.choice(common))

    label_pool = list(rng.choice(LABELS, size=int(rng.integers(1, 4)), replace=False))
    rows = []
    for s in range(int(rng.integers(1, 7))):
        seq_id = f"s{s}" if rng.random() >= p else f" s{s} "
        label = str(rng.choice(label_pool))
        split = str(rng.choice(SPLITS[:2])) if s else "train"
        length = int(rng.integers(1, 6))
        steps = [str(t) for t in range(length)]
        if rng.random() < p * 3:
            steps[int(rng.integers(length))] = pick(["0"], STEPS_ODD)
        for t in steps:
            row = {"sequence": seq_id, "step": t,
                   "label": label if rng.random() >= p else pick(LABELS, ODD_LABELS),
                   "split": split if rng.random() >= p else pick(SPLITS, ODD_SPLITS)}
            for k in range(n_features):
                row[f"f{k}"] = pick(FLOATS, ODD_FLOATS)
            rows.append(",".join(f'"{row[h]}"' if rng.random() < p else row[h] for h in header))  # quoted
    if odd:
        rng.shuffle(rows)
    lines = [",".join(header)] + rows
    if rng.random() < p * 3:  # a short or long row
        k = int(rng.integers(1, len(lines)))
        lines[k] = lines[k] + ",1" if rng.random() < 0.5 else lines[k].rsplit(",", 1)[0]
    if rng.random() < p * 5:  # blank lines, or lines of spaces and commas
        for _ in range(int(rng.integers(1, 3))):
            lines.insert(int(rng.integers(0, len(lines) + 1)), str(rng.choice(["", "  ", ",,", "\t"])))
    newline = "\r\n" if rng.random() < 0.2 else "\n"
    text = newline.join(lines) + (newline if rng.random() < 0.9 else "")
    if rng.random() < p * 3:
        text = text.replace(newline, "\r", 1)
    data = text.encode("utf-8")
    if rng.random() < 0.1:
        data = b"\xef\xbb\xbf" + data
    return data


def _outcome(read, path):
    try:
        return read(path)
    except DataFileError as exc:
        return str(exc)


def _same(a, b) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
        return
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, list):
            assert x == y
        elif x is None or y is None:
            assert x is None and y is None
        else:
            assert x.dtype == y.dtype and x.shape == y.shape
            assert x.tobytes() == y.tobytes()  # bit for bit (float32 values, int64 or 'U' labels)


def _strict(monkeypatch, read, path):
    with monkeypatch.context() as m:
        m.setattr(csv_fast, "read_table", lambda *args: None)
        return _outcome(read, path)


@pytest.mark.parametrize("block_bytes, n_files", [(csv_fast.BLOCK_BYTES, 200), (40, 100)])
def test_the_fast_reader_gives_the_strict_readers_answer(tmp_path, monkeypatch, block_bytes, n_files):
    """200 seeded random files (and 100 in 40-byte blocks, so ids, labels and splits meet across
    blocks): read_csv and read_csv_inputs give what the strict reader gives, array for array or
    message for message; where the fast reader takes a file, its table is the strict one's."""
    monkeypatch.setattr(csv_fast, "BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(20261203)
    taken = clean = 0
    for i in range(n_files):
        path = tmp_path / f"f{i}.csv"
        path.write_bytes(_file(rng))
        for read, labelled in ((read_csv, True), (read_csv_inputs, False)):
            _same(_outcome(read, path), _strict(monkeypatch, read, path))
            table = csv_fast.read_table(path, labelled, csv_files.MAX_LINE_CHARS, csv_files.MAX_SEQUENCES)
            if table is not None:
                taken += 1
                strict = csv_files._read_rows(str(path), path, labelled)
                _same(tuple(table), tuple(strict))
        clean += not isinstance(_outcome(read_csv, path), str)
    assert clean > n_files / 2 and taken > 0.8 * n_files  # most files load; the fast reader takes most clean ones


def test_well_formed_files_take_the_fast_path(tmp_path, monkeypatch):
    """A plain file (CRLF, a byte-order mark, blank lines, spaces around labels) is read by the fast
    reader; quotes or non-ASCII text send it to the strict reader, which reads it the same."""
    text = "sequence,step,x,y,label,split\r\n\r\na,0,1.5,2,walking ,train\r\na,1,2.5,3,walking,train\r\n" \
           "b,0,-1,0,  7,test\r\nc,0,1e3,0,7,train\r\n"
    path = tmp_path / "plain.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert csv_fast.read_table(path, True, csv_files.MAX_LINE_CHARS, csv_files.MAX_SEQUENCES) is not None
    arrays = read_csv(path)
    assert arrays.y.tolist() == ["walking", "7"] and arrays.y_test.tolist() == ["7"]
    assert arrays.lengths.tolist() == [2, 1] and arrays.X[0, 1].tolist() == [2.5, 3.0]
    for odd in (text.replace("walking ", '"walking"'), text.replace("walking", "caf\u00e9")):
        path.write_bytes(odd.encode())
        assert csv_fast.read_table(path, True, csv_files.MAX_LINE_CHARS, csv_files.MAX_SEQUENCES) is None
        _same(read_csv(path), _strict(monkeypatch, read_csv, path))


def test_labels_that_disagree_are_an_error_from_both_readers(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sequence,step,x,label\ns,0,1,walking\ns,1,1,running\n")
    with pytest.raises(DataFileError) as info:
        read_csv(path)
    assert str(info.value) == f"{path} line 3: sequence 's' has labels 'walking' and 'running' (one label per sequence)"
    path.write_text("sequence,step,x,label\ns,0,1,07\ns,1,1,+7\nt,0,1,-3\n")  # one whole number, written twice
    assert read_csv(path).y.tolist() == [7, -3]


def test_inputs_need_no_label_and_keep_ids(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("step,sequence,x,label,split\n0,b,1,walking,test\n1,b,2,running,train\n0,a,3,,\n")
    X, lengths, ids = read_csv_inputs(path)
    assert ids == ["b", "a"] and lengths.tolist() == [2, 1] and X[:, :, 0].tolist() == [[1, 2], [3, 0]]
    path.write_text("sequence,step,x\na,0,1\na,1,2\n")
    X, lengths, ids = read_csv_inputs(path)
    assert ids == ["a"] and lengths is None and X.dtype == np.float32 and X.shape == (1, 2, 1)
    path.write_text("sequence,x\na,1\n")
    with pytest.raises(DataFileError) as info:
        read_csv_inputs(path)
    assert str(info.value) == f"{path} line 1: missing column(s) step; expected a header like sequence,step,x,y"


def _taken(path) -> bool:
    return csv_fast.read_table(path, True, csv_files.MAX_LINE_CHARS, csv_files.MAX_SEQUENCES) is not None


def test_the_fast_reader_keeps_the_bounds_and_takes_what_lies_within(tmp_path, monkeypatch):
    """Exactly MAX_PADDED_VALUES values per part are read fast; one more in the test part alone is
    the strict reader's error at its line. Steps with leading zeros are read fast, steps past
    int64 or empty by the strict reader, with its answer."""
    monkeypatch.setattr(file_checks, "MAX_PADDED_VALUES", 6)
    path = tmp_path / "d.csv"
    rows = "".join(f"s{i},0,1,{i % 2},train\n" for i in range(6)) + "".join(f"t{i},0,1,0,test\n" for i in range(6))
    path.write_text("sequence,step,x,label,split\n" + rows)
    assert _taken(path) and read_csv(path).X_test.shape == (6, 1, 1)
    path.write_text("sequence,step,x,label,split\n" + rows + "t6,0,1,0,test\n")
    assert not _taken(path)
    with pytest.raises(DataFileError) as info:
        read_csv(path)
    assert str(info.value) == (f"{path} line 14: the test sequences hold more than 6 values; squareseq reads at most 6 "
                               "(squareseq.data.file_checks.MAX_PADDED_VALUES): split the sequences over several files")
    monkeypatch.undo()
    path.write_text("sequence,step,x,label\na,0,1,0\na," + "0" * 30 + "1,2,0\n")
    assert _taken(path) and read_csv(path).X[0, :, 0].tolist() == [1, 2]
    for step, message in (("9" * 19, f"step '{'9' * 19}' is too large; a sequence has at most {MAX_PADDED_VALUES:,} "
                                     "steps"),
                          ("", "step must be a whole number 0, 1, 2, ... written in plain digits, got ''")):
        path.write_text(f"sequence,step,x,label\na,0,1,0\na,{step},2,0\n")
        assert not _taken(path)
        with pytest.raises(DataFileError) as info:
            read_csv(path)
        assert str(info.value) == f"{path} line 3: {message}"


def test_the_fast_reader_takes_values_and_lines_up_to_their_bounds(tmp_path, monkeypatch):
    """float32's largest value and a line two characters short of MAX_LINE_CHARS (room for CRLF)
    are read fast; a row with one field too many, even where every column still parses, is the
    strict reader's error."""
    path = tmp_path / "d.csv"
    path.write_text(f"sequence,step,x,label\na,0,{float(np.finfo(np.float32).max)!r},0\n")
    assert _taken(path) and read_csv(path).X[0, 0, 0] == np.finfo(np.float32).max
    monkeypatch.setattr(csv_files, "MAX_LINE_CHARS", 30)
    path.write_text("sequence,step,x,label\na,0," + "1" * 22 + ",0\n")  # 28 characters
    assert _taken(path)
    path.write_text("sequence,step,x,label\na,0," + "1" * 23 + ",0\n")
    assert not _taken(path) and read_csv(path).X.shape == (1, 1, 1)
    monkeypatch.undo()
    path.write_text("sequence,step,x,label\n1,0,1,0\n1,1,2,0,0\n")
    assert not _taken(path)
    with pytest.raises(DataFileError) as info:
        read_csv(path)
    assert str(info.value) == f"{path} line 3: expected 4 fields, got 5"
