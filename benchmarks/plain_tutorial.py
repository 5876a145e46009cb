"""The tutorial's experiment written plainly: DataLoader over TensorDataset, the tutorial
StepByStep's semantics in an explicit loop (train() every step, .item() per batch, numpy mean per
epoch, eval() per validation batch). B1 imports it; B2 runs it as a whole process.

    python benchmarks/plain_tutorial.py [--epochs 100]
"""
from __future__ import annotations

import argparse
import random

import numpy as np
import torch
from torch import nn, optim
from torch.utils.data import DataLoader, TensorDataset


def generate_sequences(n=128, variable_len=False, seed=13):
    """The tutorial's data generator, as printed in the tutorial."""
    basic_corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]])
    np.random.seed(seed)
    bases = np.random.randint(4, size=n)
    if variable_len:
        lengths = np.random.randint(3, size=n) + 2
    else:
        lengths = [4] * n
    directions = np.random.randint(2, size=n)
    points = [basic_corners[[(b + i) % 4 for i in range(4)]][slice(None, None, d * 2 - 1)][:l]
              + np.random.randn(l, 2) * 0.1 for b, d, l in zip(bases, directions, lengths)]
    return points, directions


class SquareModel(nn.Module):
    """The tutorial's model."""

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


def make_objects(model_cls=SquareModel):
    """The tutorial's loaders, model (seed 21), loss and optimizer."""
    points, directions = generate_sequences(n=128, seed=13)
    test_points, test_directions = generate_sequences(seed=19)
    train_data = TensorDataset(torch.as_tensor(np.array(points)).float(),
                               torch.as_tensor(directions).view(-1, 1).float())
    test_data = TensorDataset(torch.as_tensor(np.array(test_points)).float(),
                              torch.as_tensor(test_directions).view(-1, 1).float())
    train_loader = DataLoader(train_data, batch_size=16, shuffle=True)
    test_loader = DataLoader(test_data, batch_size=16)
    torch.manual_seed(21)
    model = model_cls(n_features=2, hidden_dim=2, n_outputs=1)
    loss = nn.BCEWithLogitsLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.01)
    return model, loss, optimizer, train_loader, test_loader


def plain_train(model, loss_fn, optimizer, train_loader, val_loader, n_epochs, seed=42):
    """The tutorial StepByStep's train(n_epochs, seed) as a plain loop; returns the losses."""
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
        losses.append(float(np.mean(batch_losses)))
        with torch.no_grad():
            batch_losses = []
            for x, y in val_loader:
                model.eval()
                batch_losses.append(loss_fn(model(x), y).item())
            val_losses.append(float(np.mean(batch_losses)))
    return losses, val_losses


def correct_counts(model, loader):
    """Per-class [correct, total] as the tutorial's loader_apply(test_loader, sbs.correct)."""
    model.eval()
    counts = torch.zeros(2, 2, dtype=torch.long)
    with torch.no_grad():
        for x, y in loader:
            predicted = (torch.sigmoid(model(x)) > 0.5).long().view(-1)
            labels = y.view(-1).long()
            for c in (0, 1):
                counts[c, 0] += ((predicted == labels) & (labels == c)).sum()
                counts[c, 1] += (labels == c).sum()
    return counts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args(argv)
    model, loss_fn, optimizer, train_loader, test_loader = make_objects()
    plain_train(model, loss_fn, optimizer, train_loader, test_loader, args.epochs)
    print(correct_counts(model, test_loader))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
