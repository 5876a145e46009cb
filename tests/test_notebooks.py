"""The notebooks in notebooks/: stored without outputs, run top to bottom in a kernel of this
interpreter, and their key outputs (the counts) equal squareseq's own runs of the same experiments
computed here, on the same kernels. Also the tool that runs the book's chapter notebook on squareseq."""
import functools
import importlib.util
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("tutorial", "chapter", "own_data")
SCRIPT = ROOT / "examples" / "square_model_tutorial.py"
TIMEOUT = 120  # seconds per cell


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _read(name):
    return nbformat.read(str(NOTEBOOKS / f"{name}.ipynb"), as_version=4)


def _tagged(nb, tag):
    cells = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    assert len(cells) == 1, f"one cell tagged {tag!r} expected, found {len(cells)}"
    return cells[0]


def _text(cell):
    """Everything the cell printed or displayed, as text; fails on an error output."""
    parts = []
    for output in cell.outputs:
        assert output.output_type != "error", f"{output.ename}: {output.evalue}"
        parts.append(output.get("text") or output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _counts(cell):
    """``[[correct, total], ...]`` from a cell that displays ``tensor([[50, 53], [75, 75]])``."""
    text = _text(cell)
    assert text.startswith("tensor("), text
    numbers = [int(v) for v in re.findall(r"-?\d+", text)]
    return [numbers[i:i + 2] for i in range(0, len(numbers), 2)]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Runs each notebook once (figures drawn with Agg), as the module's tests need them."""
    run = _tool("run_notebooks")
    done = {}

    def get(name):
        if name not in done:
            nb = _read(name)
            run.execute(nb, tmp_path_factory.mktemp(name), TIMEOUT, mpl_backend="Agg")
            done[name] = nb
        return done[name]

    return get


@functools.lru_cache(maxsize=None)
def _run_once(config):
    from squareseq import RunConfig, RunOptions, StepByStep, run_experiment

    result = run_experiment(RunConfig(**dict(config)), RunOptions(figures=False))
    trainer = result.trainer
    return result.counts.tolist(), StepByStep.loader_apply(trainer.train_loader, trainer.correct).tolist()


def _run(**config):
    """squareseq's own run of an experiment: its test counts and its training set's counts."""
    return _run_once(tuple(sorted(config.items())))


# -- stored notebooks ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_are_valid_and_stored_without_outputs(name):
    nb = _read(name)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


def test_tutorial_notebook_is_the_tutorials_code_cell_by_cell():
    """The notebook's code is the example script's (the tutorial's own code, imports swapped),
    line for line, except that its last cell displays the counts the script prints."""
    lines = [line for c in _read("tutorial").cells if c.cell_type == "code" for line in c.source.splitlines()]
    body = SCRIPT.read_text().split('"""', 2)[2].splitlines()
    script = [line for line in body if line.strip()]
    assert script[-1] == f"print({lines[-1]})"
    assert [line for line in lines if line.strip()] == script[:-1] + [lines[-1]]


def test_book_tool_rewrites_only_the_three_imports_and_the_colab_setup():
    tool = _tool("run_book_notebook")
    source = ("try:\n    import google.colab\nexcept ModuleNotFoundError:\n    pass\nfrom config import *\n"
              "config_chapter8()\nfrom plots.chapter8 import *\nfrom stepbystep.v4 import StepByStep\n"
              "from data_generation.square_sequences import generate_sequences\nimport numpy as np")
    code, changed, left = tool.rewrite_source(source)
    lines = code.splitlines()
    assert lines[6:] == ["from squareseq.plots import *", "from squareseq import StepByStep",
                         "from squareseq import generate_sequences", "import numpy as np"]
    assert lines[:4] == source.splitlines()[:4]
    assert all(line.startswith("#") for line in lines[4:6])
    assert len(changed) == 5 and left == []
    assert tool.rewrite_source("from plots.chapter9 import *")[2] == ["plots"]  # left as it is, and named


def test_book_tool_knows_the_two_cells_the_book_shows_failing():
    tool = _tool("run_book_notebook")
    assert tool.expected_failure("all_seqs = [s0, s1, s2]\ntorch.as_tensor(all_seqs)")[1] == "ValueError"
    loader = "train_var_loader = DataLoader(train_var_data, batch_size=16, shuffle=True)\nnext(iter(train_var_loader))"
    assert tool.expected_failure(loader)[1] == "RuntimeError"
    assert tool.expected_failure(loader.replace("shuffle=True", "collate_fn=pack_collate")) is None
    assert tool.expected_failure("fig = figure8(linear_hidden, linear_input, X)") is None


# -- executed notebooks (a kernel each: slow) ---------------------------------------------------------


@pytest.mark.slow
def test_tutorial_notebook_shows_the_counts_of_squareseqs_tutorial_run(executed):
    """On the reference machine: tensor([[50, 53], [75, 75]]); here, whatever this machine's
    kernels give for the tutorial's run, computed directly."""
    test_counts, _ = _run()
    assert _counts(_tagged(executed("tutorial"), "counts")) == test_counts


CHAPTER_RUNS = {  # tag -> (squareseq's run of the same experiment, which counts the cell shows)
    "counts-rnn": ({}, "test"),
    "counts-gru": ({"model": "gru"}, "test"),
    "counts-lstm": ({"model": "lstm"}, "test"),
    "counts-conv": ({"model": "square-conv1d"}, "test"),
    "counts-packed": ({"model": "lstm", "bidirectional": True, "variable_len": True}, "train"),
    "counts-packed-test": ({"model": "lstm", "bidirectional": True, "variable_len": True}, "test"),
    "counts-one": ({"model": "lstm", "bidirectional": True}, "test"),
}


@pytest.mark.slow
@pytest.mark.parametrize("tag", CHAPTER_RUNS)
def test_chapter_notebook_counts_equal_squareseqs_runs(executed, tag):
    """Each model the chapter trains by hand (StepByStep, its own loaders) gives the counts of
    ``run_experiment`` for the same experiment (the CLI's ``squareseq train`` options)."""
    config, which = CHAPTER_RUNS[tag]
    test_counts, train_counts = _run(**config)
    assert _counts(_tagged(executed("chapter"), tag)) == (test_counts if which == "test" else train_counts)


@pytest.mark.slow
def test_chapter_notebook_checks_come_out_true(executed):
    """The cells that check a claim (by hand equals the layer, packing equals each sequence alone)
    display booleans: all True except the padded batch's (its short sequences read the zeros)."""
    shown = [_text(c) for c in executed("chapter").cells if c.cell_type == "code"]
    checks = [s for s in shown if re.fullmatch(r"\((True|False)(, (True|False))*\)", s)]
    # layer = loop, stacked = two layers, bidirectional = two directions; packed = alone, padded != alone
    assert checks == ["(True, True)"] * 3 + ["(True, False)"]
    assert "(tensor([4, 2, 3]), True)" in shown  # the last real outputs of an unpacked batch are h_n


@pytest.mark.slow
@pytest.mark.parametrize("tag", ["by-hand-rnn", "by-hand-gru", "by-hand-lstm"])
def test_chapter_notebook_cells_by_hand_equal_torchs(executed, tag):
    """Each cell worked by hand shows its numbers next to torch's cell's: the same, as printed."""
    numbers = re.findall(r"-?\d+\.\d+(?:e[-+]\d+)?", _text(_tagged(executed("chapter"), tag)))
    half = len(numbers) // 2
    assert half >= 2 and numbers[:half] == numbers[half:]


@pytest.mark.slow
def test_own_data_notebook_reports_and_predicts_by_class_name(executed):
    nb = executed("own_data")
    names = ["sawtooth", "sine", "square"]
    rows = re.findall(r"^(\w+): (\d+)/(\d+)$", _text(_tagged(nb, "own-metrics")), flags=re.M)
    assert [r[0] for r in rows] == names and all(int(r[2]) == 15 for r in rows)
    correct = [int(r[1]) for r in rows]
    accuracy = float(re.search(r"accuracy: ([\d.]+)", _text(_tagged(nb, "own-metrics"))).group(1))
    assert accuracy == pytest.approx(sum(correct) / 45, abs=1e-4)
    matrix = [line.split("\t") for line in _text(_tagged(nb, "own-confusion")).splitlines()]
    assert matrix[0][1:] == names
    assert [int(row[1 + k]) for k, row in enumerate(matrix[1:])] == correct  # the diagonal
    assert all(sum(map(int, row[1:])) == 15 for row in matrix[1:])
    predictions = re.findall(r"^\s*(\w+) -> (\w+) \(P = ([\d.]+)\)$", _text(_tagged(nb, "own-predictions")), re.M)
    assert len(predictions) == 6 and all(t in names and p in names for t, p, _ in predictions)
    assert all(1 / 3 <= float(p) <= 1 for *_, p in predictions)


@pytest.mark.slow
def test_book_tool_runs_a_chapter_like_notebook_and_reports_each_cell(tmp_path):
    """A notebook written like the book's (its imports, its Colab set-up, a figure squareseq does
    not have, one of its failing demonstrations) runs on squareseq with the statuses it should."""
    tool = _tool("run_book_notebook")
    cells = [
        "try:\n    import google.colab\nexcept ModuleNotFoundError:\n    pass\n\nfrom config import *\n"
        "config_chapter8()\nfrom plots.chapter8 import *",
        "import torch\nfrom data_generation.square_sequences import generate_sequences\n"
        "from stepbystep.v4 import StepByStep",
        "points, directions = generate_sequences(n=8, seed=13)\nfig = plot_data(points, directions)",
        "fig = no_such_figure(points)",
        "s0, s1 = points[0], points[1][2:]\nall_seqs = [s0.tolist(), s1.tolist()]\ntorch.as_tensor(all_seqs)",
        "StepByStep.loader_apply",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    path = tmp_path / "Chapter08.ipynb"
    nbformat.write(nb, str(path))
    reports = tool.run(path, TIMEOUT)
    assert [r.status for r in reports] == ["ok", "ok", "ok", "error", "expected", "ok"]
    assert "NameError" in reports[3].error
    assert [r.fine for r in reports] == [True, True, True, False, True, True]
    summary = tool.format_report(reports).splitlines()[-1]
    assert summary == "6 code cells: 4 ok, 1 failed as the book shows, 1 errors, 0 expected failures that ran"
