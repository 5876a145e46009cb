"""squareseq.data.squares: the tutorial-exact generator, the side-effect-free one, tensors."""
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import tutorial_generate_sequences
from squareseq.data.squares import CORNERS, SequenceList, generate_sequences, make_sequences, make_tensors, to_tensors

CASES = [(n, v, s) for n in (1, 2, 7, 128, 333) for v in (False, True) for s in (0, 13, 19, 42, 2**31 - 1)]


@pytest.mark.parametrize("n,variable_len,seed", CASES)
def test_generate_sequences_equals_tutorial_bit_for_bit(n, variable_len, seed):
    """Same arrays (dtype, shape, every bit), same labels, same global RNG state afterwards."""
    ref_points, ref_dirs = tutorial_generate_sequences(n, variable_len, seed)
    ref_next = np.random.rand()
    points, dirs = generate_sequences(n, variable_len, seed)
    our_next = np.random.rand()
    assert len(points) == len(ref_points) == n
    for ours, theirs in zip(points, ref_points):
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)
    assert dirs.dtype == ref_dirs.dtype and np.array_equal(dirs, ref_dirs)
    assert our_next == ref_next


def test_default_arguments_match_tutorial():
    """generate_sequences() with no arguments is the tutorial's n=128, seed=13 training set."""
    ref_points, ref_dirs = tutorial_generate_sequences()
    points, dirs = generate_sequences()
    assert np.array_equal(np.stack(points), np.stack(ref_points)) and np.array_equal(dirs, ref_dirs)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 64), seed=st.integers(0, 2**32 - 1), variable_len=st.booleans())
def test_make_sequences_is_side_effect_free_and_equal(n, seed, variable_len):
    """make_sequences draws the same data as the tutorial for the same seed, without touching
    numpy's global state."""
    np.random.seed(123)
    before = np.random.get_state()
    points, dirs = make_sequences(n, variable_len=variable_len, seed=seed)
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]
    ref_points, ref_dirs = tutorial_generate_sequences(n, variable_len, seed)
    assert all(np.array_equal(a, b) for a, b in zip(points, ref_points))
    assert np.array_equal(dirs, ref_dirs)


def test_sequences_visit_corners_in_labelled_direction():
    """Without noise, each sequence walks the square's corners clockwise when y=1."""
    points, dirs = make_sequences(200, seed=1, noise=0.0)
    for seq, d in zip(points, dirs):
        idx = [int(np.flatnonzero((CORNERS == p).all(axis=1))[0]) for p in seq]
        steps = {(b - a) % 4 for a, b in zip(idx, idx[1:])}
        assert steps == ({1} if d == 1 else {3})


def test_variable_lengths_are_two_to_four():
    points, _ = make_sequences(500, variable_len=True, seed=3)
    assert {len(p) for p in points} == {2, 3, 4}


def test_as_tensor_on_sequences_is_fast_path_without_warning():
    """torch.as_tensor(points), as the tutorial writes it, stacks once and does not warn that
    a list of arrays is extremely slow."""
    points, _ = generate_sequences(64, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = torch.as_tensor(points)
    assert x.shape == (64, 4, 2) and x.dtype == torch.float64
    assert torch.equal(x, torch.from_numpy(np.stack(points)))


def test_as_tensor_on_variable_length_says_how_to_fix():
    points, _ = generate_sequences(64, variable_len=True, seed=5)
    assert isinstance(points, SequenceList)
    with pytest.raises(ValueError, match="different lengths"):
        torch.as_tensor(points)


def test_to_tensors_shapes_and_padding():
    """Fixed length: (N, 4, 2) and no lengths; variable: zero-padded with true lengths."""
    x, y, lengths = make_tensors(10, seed=2)
    assert x.shape == (10, 4, 2) and x.dtype == torch.float32 and lengths is None
    assert y.shape == (10, 1) and y.dtype == torch.float32
    points, dirs = make_sequences(10, variable_len=True, seed=2)
    x, y, lengths = to_tensors(points, dirs, float_labels=False)
    assert y.dtype == torch.int64 and y.shape == (10,)
    assert lengths.tolist() == [len(p) for p in points]
    for i, p in enumerate(points):
        assert torch.equal(x[i, : len(p)], torch.from_numpy(p).float())
        assert (x[i, len(p):] == 0).all()
