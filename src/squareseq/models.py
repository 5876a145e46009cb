"""Models that classify ``(N, L, F)`` batches of sequences."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SquareModel"]


class SquareModel(nn.Module):
    """The tutorial's model: an ``nn.RNN`` whose last output feeds a linear classifier.

    The recurrent layer is created before the classifier, so a model built after
    ``torch.manual_seed(s)`` has exactly the weights of the tutorial's model for the same seed.

    Args:
        n_features: features per step (2 for points in the plane).
        hidden_dim: size of the hidden state.
        n_outputs: logits per sequence (1 for BCE, the number of classes for cross-entropy).
        output_activation: ``None`` for logits, or ``"sigmoid"`` to output probabilities
            (for ``BCELoss``); the activation is the model's last module.
    """

    def __init__(
        self,
        n_features: int,
        hidden_dim: int,
        n_outputs: int,
        output_activation: "str | None" = None,
    ):
        super().__init__()
        self.n_features = n_features
        self.hidden_dim = hidden_dim
        self.n_outputs = n_outputs
        self.hidden = None  # final hidden state (1, N, H) of the last forward pass
        self.basic_rnn = nn.RNN(n_features, hidden_dim, batch_first=True)
        self.classifier = nn.Linear(hidden_dim, n_outputs)
        if output_activation not in (None, "sigmoid"):
            raise ValueError(f"output_activation must be None or 'sigmoid', not {output_activation!r}")
        self.output_activation = nn.Sigmoid() if output_activation == "sigmoid" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, self.hidden = self.basic_rnn(x)  # (N, L, H), (1, N, H)
        logits = self.classifier(output[:, -1])  # the last step's output: (N, n_outputs)
        if self.output_activation is not None:
            return self.output_activation(logits)
        return logits.view(-1, self.n_outputs)

    def config(self) -> dict:
        """The constructor's arguments, enough to rebuild the model from a checkpoint."""
        return {
            "name": "SquareModel",
            "n_features": self.n_features,
            "hidden_dim": self.hidden_dim,
            "n_outputs": self.n_outputs,
            "output_activation": "sigmoid" if self.output_activation is not None else None,
        }
