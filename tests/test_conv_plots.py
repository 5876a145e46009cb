"""Tests for squareseq.figures.conv: what a Conv1d filter detects, and its figure."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from squareseq.figures.conv import EDGES, edge_responses, plot_conv_filter  # noqa: E402
from squareseq.models.networks import SquareConv1d  # noqa: E402


@pytest.fixture
def ab_detector():
    """A filter built by hand to respond to edge A->B only: -(x0 + y0) + (y1 - x1)."""
    model = SquareConv1d()
    with torch.no_grad():
        model.conv1d.weight.copy_(torch.tensor([[[-1.0, -1.0], [-1.0, 1.0]]]))  # (C, F, K)
        model.conv1d.bias.zero_()
    return model


def test_edges_are_the_eight_directed_edges():
    """EDGES lists four clockwise and four counter-clockwise edges, each pair reversed."""
    names = [name for name, *_ in EDGES]
    assert names[:4] == ["AB", "BC", "CD", "DA"] and sorted(names[4:]) == ["AD", "BA", "CB", "DC"]
    assert [cw for *_, cw in EDGES] == [True] * 4 + [False] * 4


def test_edge_responses_of_a_hand_built_filter(ab_detector):
    """A filter built to detect A->B responds 4 to it and 0 (after ReLU) to every other edge."""
    responses = edge_responses(ab_detector)
    assert responses["AB"] == pytest.approx(4.0)
    assert all(v == 0.0 for name, v in responses.items() if name != "AB")


def test_figure_shows_the_responses_and_names_the_edge(ab_detector):
    """The figure has the square and a bar per edge with the responses as heights, and its title
    names the detected edge and direction; nothing is shown."""
    fig = plot_conv_filter(ab_detector)
    ax_square, ax_bars = fig.axes
    heights = [bar.get_height() for bar in ax_bars.patches]
    assert heights == pytest.approx([edge_responses(ab_detector)[name] for name, *_ in EDGES])
    assert "A\u2192B (clockwise)" in fig._suptitle.get_text()
    assert len(ax_square.texts) >= 4  # the corner names
    plt.close(fig)


def test_edge_responses_need_a_two_by_two_filter():
    """Filters over other shapes are refused with a clear message."""
    with pytest.raises(ValueError, match="2 features and 2 steps"):
        edge_responses(SquareConv1d(n_features=3))
    with pytest.raises(ValueError, match="channel must lie in 0..0"):
        edge_responses(SquareConv1d(), channel=1)
