"""Models that classify ``(N, L, F)`` batches of sequences."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SquareModel", "outputs_probabilities"]


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
        reference_logit: if true, the first of the ``n_outputs`` logits is pinned at 0 and the
            classifier learns the other ``n_outputs - 1``. With two outputs, softmax over
            ``[0, z]`` is ``sigmoid(z)``: cross-entropy then trains exactly the tutorial's model.
    """

    def __init__(
        self,
        n_features: int,
        hidden_dim: int,
        n_outputs: int,
        output_activation: "str | None" = None,
        reference_logit: bool = False,
    ):
        super().__init__()
        self.n_features = n_features
        self.hidden_dim = hidden_dim
        self.n_outputs = n_outputs
        self.hidden = None  # final hidden state (1, N, H) of the last forward pass
        self.basic_rnn = nn.RNN(n_features, hidden_dim, batch_first=True)
        if reference_logit and n_outputs < 2:
            raise ValueError("reference_logit needs n_outputs >= 2")
        self.reference_logit = reference_logit
        self.classifier = nn.Linear(hidden_dim, n_outputs - 1 if reference_logit else n_outputs)
        if output_activation not in (None, "sigmoid"):
            raise ValueError(f"output_activation must be None or 'sigmoid', not {output_activation!r}")
        self.output_activation = nn.Sigmoid() if output_activation == "sigmoid" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, self.hidden = self.basic_rnn(x)  # (N, L, H), (1, N, H)
        logits = self.classifier(output[:, -1])  # the last step's output: (N, n_outputs)
        if self.reference_logit:
            logits = torch.cat([logits.new_zeros(len(logits), 1), logits], dim=1)
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
            "reference_logit": self.reference_logit,
        }


def outputs_probabilities(model: nn.Module) -> bool:
    """Whether ``model`` outputs probabilities: its last registered module is a sigmoid (as in
    ``nn.Sequential(..., nn.Sigmoid())`` or ``SquareModel(..., output_activation="sigmoid")``)."""
    last = None
    for module in model.modules():
        last = module
    return isinstance(last, nn.Sigmoid)
