"""Shared fixtures: a headless matplotlib, pinned seeds, no leaked figures, tiny data."""
import os
import random

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded_and_clean():
    """Every test starts from the same global RNG state and leaves no figure open."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
    plt.close("all")


def tutorial_generate_sequences(n=128, variable_len=False, seed=13):
    """An independent copy of the tutorial's generator, the reference for squareseq's."""
    basic_corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]])
    np.random.seed(seed)
    bases = np.random.randint(4, size=n)
    if variable_len:
        lengths = np.random.randint(3, size=n) + 2
    else:
        lengths = [4] * n
    directions = np.random.randint(2, size=n)
    points = [
        basic_corners[[(b + i) % 4 for i in range(4)]][slice(None, None, d * 2 - 1)][:l]
        + np.random.randn(l, 2) * 0.1
        for b, d, l in zip(bases, directions, lengths)
    ]
    return points, directions
