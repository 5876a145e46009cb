"""The Square Model tutorial's code, run on squareseq: only the import lines are changed.

(In the notebook, the last line's value is displayed; as a script, it is printed.)
Run: python examples/square_model_tutorial.py  ->  tensor([[50, 53], [75, 75]])
"""
import numpy as np
import torch
import torch.optim as optim
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, random_split, TensorDataset
from torch.nn.utils import rnn as rnn_utils
from squareseq import StepByStep, SquareModel, generate_sequences
from squareseq.plots import *

fig = counter_vs_clock(draw_arrows=False)
fig = counter_vs_clock()
fig = plot_sequences()
points, directions = generate_sequences(n=128, seed=13)
fig = plot_data(points, directions)

test_points, test_directions = generate_sequences(seed=19)

train_data = TensorDataset(torch.as_tensor(points).float(),
                           torch.as_tensor(directions).view(-1, 1).float())
test_data = TensorDataset(torch.as_tensor(test_points).float(),
                          torch.as_tensor(test_directions).view(-1, 1).float())
train_loader = DataLoader(train_data, batch_size=16, shuffle=True)
test_loader = DataLoader(test_data, batch_size=16)

torch.manual_seed(21)
model = SquareModel(n_features=2, hidden_dim=2, n_outputs=1)
loss = nn.BCEWithLogitsLoss()
optimizer = optim.Adam(model.parameters(), lr=0.01)

sbs_rnn = StepByStep(model, loss, optimizer)
sbs_rnn.set_loaders(train_loader, test_loader)
sbs_rnn.train(100)

fig = sbs_rnn.plot_losses()

print(StepByStep.loader_apply(test_loader, sbs_rnn.correct))
