"""squareseq.training.state: a trainer's state captured as copies and restored all or nothing,
without the StepByStep facade (its save/load round trips live in test_stepbystep, test_resume
and test_checkpoint)."""
import pytest
import torch
from torch import nn, optim

from squareseq.training.checkpoint import CheckpointError
from squareseq.training.loop import History
from squareseq.training.state import capture_state, check_optimizer_state, clone_tensors, restore_state


class _Bare:
    """The least a trainer needs: the attributes :class:`squareseq.training.state.Trainer` names."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.model = nn.Linear(3, 2)
        self.optimizer = optim.SGD(self.model.parameters(), lr=0.1, momentum=0.9)
        self.scheduler = None
        self.history = History()
        self.train_loader = None
        self.total_epochs = 0
        self.device = "cpu"

    losses = property(lambda self: self.history.losses, lambda self, v: setattr(self.history, "losses", list(v)))
    val_losses = property(lambda self: self.history.val_losses,
                          lambda self, v: setattr(self.history, "val_losses", list(v)))
    learning_rates = property(lambda self: self.history.learning_rates)

    def step(self):
        self.optimizer.zero_grad()
        self.model(torch.randn(4, 3)).sum().backward()
        self.optimizer.step()
        self.history.append(1.5, None)
        self.history.learning_rates.append([0.1])
        self.total_epochs = self.history.epochs


def test_clone_tensors_copies_every_tensor_and_keeps_containers():
    t = torch.ones(2)
    copy = clone_tensors({"a": [t, (t, 3)], "b": "x"})
    assert isinstance(copy["a"][1], tuple) and copy["b"] == "x" and copy["a"][1][1] == 3
    t.add_(1)
    assert torch.equal(copy["a"][0], torch.ones(2)) and torch.equal(copy["a"][1][0], torch.ones(2))


def test_captured_state_is_a_copy_and_restores_exactly():
    trainer = _Bare()
    trainer.step()
    state = capture_state(trainer)
    assert state["epoch"] == 1 and capture_state(trainer, epoch=7)["epoch"] == 7
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.step()  # moves weights, momentum buffers and history on
    assert state["loss"] == [1.5] and not torch.equal(state["model_state_dict"]["weight"], trainer.model.weight)
    other = _Bare(seed=1)
    restore_state(other, state, restore_rng=False)
    assert other.total_epochs == 1 and other.losses == [1.5] and other.val_losses == [None]
    assert other.learning_rates == [[0.1]]
    assert all(torch.equal(weights[k], v) for k, v in other.model.state_dict().items())
    assert torch.equal(other.optimizer.state_dict()["state"][0]["momentum_buffer"],
                       state["optimizer_state_dict"]["state"][0]["momentum_buffer"])


def test_restore_is_all_or_nothing():
    trainer = _Bare()
    trainer.step()
    state = capture_state(trainer)
    state["model_state_dict"] = {k: v + 1 for k, v in state["model_state_dict"].items()}
    state["optimizer_state_dict"]["state"][0]["momentum_buffer"] = torch.zeros(5)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"ck\.pt's optimizer state does not fit this model: "
                                              r"momentum_buffer has shape \(5,\)"):
        restore_state(trainer, state, where="ck.pt")
    assert all(torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.optimizer.state_dict()["state"][0]["momentum_buffer"].shape == (2, 3)
    check_optimizer_state(trainer.optimizer, "here")  # the trainer's own state fits again
