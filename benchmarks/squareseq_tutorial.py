"""The tutorial's experiment with squareseq, as a learner writes it (Contract 1's imports), without
figures. B2 runs it as a whole process.

    python benchmarks/squareseq_tutorial.py [--epochs 100]
"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset

from squareseq import SquareModel, StepByStep, generate_sequences


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--flat-adam", action="store_true",
                        help="use squareseq's FlatAdam instead of torch.optim.Adam (same numbers; building a "
                             "torch.optim optimizer imports torch._dynamo)")
    parser.add_argument("--report-modules", action="store_true",
                        help="print which heavy modules the process loaded")
    args = parser.parse_args(argv)
    points, directions = generate_sequences(n=128, seed=13)
    test_points, test_directions = generate_sequences(seed=19)
    train_data = TensorDataset(torch.as_tensor(points).float(), torch.as_tensor(directions).view(-1, 1).float())
    test_data = TensorDataset(torch.as_tensor(test_points).float(),
                              torch.as_tensor(test_directions).view(-1, 1).float())
    train_loader = DataLoader(train_data, batch_size=16, shuffle=True)
    test_loader = DataLoader(test_data, batch_size=16)
    torch.manual_seed(21)
    model = SquareModel(n_features=2, hidden_dim=2, n_outputs=1)
    if args.flat_adam:
        from squareseq.training.optim import FlatAdam

        optimizer = FlatAdam(model.parameters(), lr=0.01)
    else:
        optimizer = optim.Adam(model.parameters(), lr=0.01)
    sbs_rnn = StepByStep(model, nn.BCEWithLogitsLoss(), optimizer)
    sbs_rnn.set_loaders(train_loader, test_loader)
    sbs_rnn.train(args.epochs)
    print(StepByStep.loader_apply(test_loader, sbs_rnn.correct))
    if args.report_modules:
        print("loaded:", [m for m in ("torch._dynamo", "matplotlib") if m in sys.modules])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
