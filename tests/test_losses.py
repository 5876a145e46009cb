"""The loss variants of the tutorial's "Your Turn" and "Tip": each learns the task."""
import pytest
import torch

from squareseq.config import RunConfig
from squareseq.errors import SquareseqError
from squareseq.models.networks import SquareModel
from squareseq.runs.experiment import run_experiment
from squareseq.training.losses import LOSSES, get_loss_spec

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["bce-logits", "bce", "ce"])
def test_each_variant_reaches_95_percent(loss):
    """100 epochs on the tutorial's data: at least 95% test accuracy."""
    result = run_experiment(RunConfig(loss=loss))
    assert result.metrics["test"]["accuracy"] >= 0.95


def test_reference_logit_softmax_equals_sigmoid():
    """Two logits [0, z]: softmax's class-1 probability is sigmoid(z), so CE == BCE-with-logits."""
    torch.manual_seed(0)
    model = SquareModel(2, 2, 2, reference_logit=True)
    x = torch.randn(10, 4, 2)
    out = model(x)
    assert out.shape == (10, 2) and (out[:, 0] == 0).all()
    y = torch.randint(0, 2, (10,))
    ce = torch.nn.functional.cross_entropy(out, y)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 1], y.float())
    torch.testing.assert_close(ce, bce)


def test_specs_match_model_heads():
    for spec in LOSSES.values():
        model = SquareModel(2, 2, spec.n_outputs, spec.output_activation, reference_logit=spec.reference_logit)
        assert model(torch.zeros(3, 4, 2)).shape == (3, spec.n_outputs)


def test_unknown_loss():
    with pytest.raises(SquareseqError, match="choose one of"):
        get_loss_spec("mse")
