"""The tutorial's model and training loop, written out plainly: the reference squareseq must match."""
import random

import numpy as np
import torch
from torch import nn


class SquareModel(nn.Module):
    """The tutorial's model, as the tutorial (and the book) write it: its own class, not squareseq's."""

    def __init__(self, n_features, hidden_dim, n_outputs):
        super().__init__()
        self.hidden = None
        self.basic_rnn = nn.RNN(n_features, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, n_outputs)

    def forward(self, X):
        batch_first_output, self.hidden = self.basic_rnn(X)
        last_output = batch_first_output[:, -1]
        out = self.classifier(last_output)
        return out.view(-1, 1)


def tutorial_train(model, loss_fn, optimizer, train_loader, val_loader, n_epochs, seed=42):
    """Seeds as ``StepByStep.set_seed`` does, then trains exactly as the tutorial's StepByStep
    (``train()`` each step, ``.item()`` per batch, numpy mean per epoch). Returns the losses."""
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    losses, val_losses = [], []
    for _ in range(n_epochs):
        batch_losses = []
        for x, y in train_loader:
            model.train()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            batch_losses.append(loss.item())
        losses.append(np.mean(batch_losses))
        with torch.no_grad():
            batch_losses = []
            for x, y in val_loader:
                model.eval()
                batch_losses.append(loss_fn(model(x), y).item())
            val_losses.append(np.mean(batch_losses))
    return losses, val_losses
