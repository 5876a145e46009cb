"""squareseq.training.loop: the loop, tested with stub steps and scripted losses."""
import numpy as np
import pytest
import torch
from torch import nn

from squareseq.training.callbacks import EarlyStopping, LRSchedulerCallback
from squareseq.training.loop import Callback, FitState, History, fit, make_train_step, run_epoch

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


class Recorder(Callback):
    """Records every event in order."""

    def __init__(self):
        self.events = []

    def on_fit_start(self, loop):
        self.events.append("fit_start")

    def on_epoch_start(self, loop):
        self.events.append(f"epoch_start {loop.epoch}")

    def on_batch_end(self, loop, batch, n_batches, loss):
        self.events.append(f"batch {batch}/{n_batches}")

    def on_epoch_end(self, loop, logs):
        self.events.append(f"epoch_end {logs['epoch']}")

    def on_fit_end(self, loop):
        self.events.append("fit_end")


def _batches(values):
    return [(torch.tensor([v]), torch.tensor([v])) for v in values]


def _state():
    model = nn.Linear(1, 1)
    return FitState(model, torch.optim.SGD(model.parameters(), lr=0.1), History())


def test_event_order_and_mean_losses():
    """Events fire in order; the epoch loss is the mean of the step's batch losses."""
    stub = lambda x, y: x.float().sum()  # noqa: E731
    rec = Recorder()
    state = _state()
    history = fit(state, stub, stub, _batches([1, 2, 6]), _batches([10, 20]), 2, [rec])
    assert rec.events == [
        "fit_start",
        "epoch_start 1", "batch 0/3", "batch 1/3", "batch 2/3", "epoch_end 1",
        "epoch_start 2", "batch 0/3", "batch 1/3", "batch 2/3", "epoch_end 2",
        "fit_end",
    ]
    assert history.losses == [3.0, 3.0] and history.val_losses == [15.0, 15.0]


def test_stop_flag_ends_after_current_epoch():
    """A callback that sets loop.stop ends training after that epoch; fit_end still fires."""

    class StopAtTwo(Callback):
        def on_epoch_end(self, loop, logs):
            loop.stop = logs["epoch"] == 2

    rec = Recorder()
    stub = lambda x, y: x.float().sum()  # noqa: E731
    history = fit(_state(), stub, None, _batches([1]), None, 10, [StopAtTwo(), rec])
    assert history.epochs == 2 and rec.events[-1] == "fit_end"
    assert history.val_losses == [None, None]


def test_early_stopping_on_scripted_losses():
    """EarlyStopping stops after `patience` epochs without improvement, without training."""
    cb = EarlyStopping(patience=2)
    state = _state()
    for epoch, val in enumerate([1.0, 0.5, 0.6, 0.55, 0.4], start=1):
        cb.on_epoch_end(state, {"epoch": epoch, "loss": 0.0, "val_loss": val})
        if state.stop:
            break
    assert state.stop and epoch == 4


def test_fit_end_fires_on_error():
    """A failing step still closes callbacks (progress bars, files)."""

    def broken(x, y):
        raise RuntimeError("boom")

    rec = Recorder()
    with pytest.raises(RuntimeError):
        fit(_state(), broken, None, _batches([1]), None, 3, [rec])
    assert rec.events == ["fit_start", "epoch_start 1", "fit_end"]


def test_no_training_loader_is_an_error():
    """A forgotten loader fails clearly instead of recording None losses."""
    with pytest.raises(ValueError, match="set_loaders"):
        fit(_state(), None, None, None, None, 1)


def test_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        run_epoch(lambda x, y: x, [], "cpu")


def test_run_epoch_mean_equals_numpy_mean_of_items():
    """The epoch loss equals the tutorial's np.mean over per-batch .item() values."""
    torch.manual_seed(0)
    values = torch.rand(37)
    batches = [(v.view(1), v.view(1)) for v in values]
    ours = run_epoch(lambda x, y: x[0], batches)
    assert ours == np.mean([v.item() for v in values])


def test_one_sgd_step_matches_hand_computation():
    """Golden: one SGD step on w*x with MSE moves w by lr * 2 * (w*x - y) * x."""
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(2.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = make_train_step(model, nn.MSELoss(), opt)
    loss = step(torch.tensor([[3.0]]), torch.tensor([[1.0]]))
    assert loss.item() == 25.0  # (2*3 - 1)^2
    assert model.weight.item() == pytest.approx(2.0 - 0.1 * 2 * 5 * 3)
    assert model.weight.grad is None  # zeroed after the step


def test_scheduler_callback_steps_per_epoch_and_records():
    model = nn.Linear(1, 1)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    cb = LRSchedulerCallback(sched)
    state = FitState(model, opt, History())
    for epoch in (1, 2):
        opt.step()
        cb.on_batch_end(state, 0, 1, torch.tensor(0.0))
        cb.on_epoch_end(state, {"epoch": epoch, "loss": 0.0, "val_loss": 0.0})
    assert cb.learning_rates == [[0.5], [0.25]]
