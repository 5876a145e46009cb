"""Tiny trained models and data shared by the figure, replay and report tests."""
from __future__ import annotations

import torch
from torch import nn

from squareseq import SquareModel, make_sequences, to_tensors
from squareseq.figures.replay import SnapshotRecorder
from squareseq.training.loop import FitState, History, fit, make_train_step, make_val_step


def batches(x, y, batch_size=16):
    """A fixed, unshuffled list of mini-batches (enough for a loader in these tests)."""
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)]


def tiny_run(n_epochs=6, hidden_dim=2, n_train=64, n_test=32, recorder=True, seed=21):
    """Trains ``SquareModel(2, hidden_dim, 1)`` for a few epochs; returns a dict with the model,
    the raw and tensor data, the history and the recorder's snapshots (or None)."""
    train = make_sequences(n_train, seed=13)
    test = make_sequences(n_test, seed=19)
    x, y, _ = to_tensors(*train)
    tx, ty, _ = to_tensors(*test)
    torch.manual_seed(seed)
    model = SquareModel(2, hidden_dim, 1)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    state = FitState(model, optimizer, History())
    callbacks = [SnapshotRecorder(tx, ty)] if recorder else []
    fit(state, make_train_step(model, loss_fn, optimizer), make_val_step(model, loss_fn),
        batches(x, y), batches(tx, ty), n_epochs, callbacks)
    model.eval()
    return {
        "model": model, "train": train, "test": test, "x": tx, "y": ty.reshape(-1),
        "history": state.history, "snapshots": callbacks[0].snapshots if recorder else None,
    }
