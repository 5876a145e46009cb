"""Many models at once: train K copies of the tutorial's model that differ only in their seed.

One run of the tutorial tells little about the recipe: its test accuracy depends a lot on the
seed the weights were drawn with. :func:`train_many` trains K models in one batched pass, on the
same data and the same shuffles as K separate runs (``torch.manual_seed(seed)``, build the model,
``StepByStep.train(seed=fit_seed)``), and reports every seed's test counts and accuracy.

How it batches: each seed's :class:`~squareseq.models.networks.SquareModel` is built as a separate run
builds it, and its parameters are stacked on a leading model axis ``(K, ...)``; the recurrent
cell runs on ``(K, N, H)`` hidden states with batched matrix products; the K losses are summed,
so one backward pass gives every model its own gradient; one Adam updates the stacked parameters
(Adam is elementwise, so this is K Adams). Batched kernels round differently in the last bit from
the single-model ones, and in a few seeds those differences grow chaotically over 100 epochs:
compare runs by counts and with tolerances, not bit for bit.

A seed **converges** when its test accuracy is at least :data:`CONVERGED_ACCURACY` (0.9): the
tutorial's own seed reaches 0.977, while seeds that get stuck sit near 0.5-0.7.

Seed lists are parsed by :func:`squareseq.config.parse_seeds`; a sweep's files (JSON, CSV, histogram) are
written by :mod:`squareseq.runs.sweep`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch.nn import functional as F

from squareseq.config import MAX_PARAMETERS, RunConfig, check_activation_memory, parameter_count, parse_seeds
from squareseq.data.loaders import FastLoader
from squareseq.data.squares import make_tensors
from squareseq.errors import ConfigError, DataError, literal
from squareseq.models.networks import build_model
from squareseq.training.many_step import make_step
from squareseq.training.metrics import accuracy, correct_per_class_stacked
from squareseq.training.optim import FlatAdam
from squareseq.training.threads import Threads, intra_op_threads, resolve_threads

__all__ = [
    "BATCHED_CELLS", "CONVERGED_ACCURACY", "ManyResults", "batchable", "check_many",
    "initial_parameters", "shuffle_orders", "batched_logits", "train_many",
]

#: Test accuracy from which a seed counts as converged.
CONVERGED_ACCURACY = 0.9

#: Recurrent cells :func:`train_many` can batch (one layer, one direction, one output).
BATCHED_CELLS = ("rnn", "gru", "lstm")

#: Each stacked parameter, and the one-layer ``SquareModel`` parameter it stacks.
_STACKED = {
    "weight_ih": "basic_rnn.weight_ih_l0",
    "weight_hh": "basic_rnn.weight_hh_l0",
    "bias_ih": "basic_rnn.bias_ih_l0",
    "bias_hh": "basic_rnn.bias_hh_l0",
    "weight_c": "classifier.weight",
    "bias_c": "classifier.bias",
}


def _check_cell(model: str) -> None:
    if model not in BATCHED_CELLS:
        raise ConfigError(f"{{model}} must be one of: {', '.join(BATCHED_CELLS)} to train many models at once, "
                          f"got {literal(repr(model))}", ("model",))


def initial_parameters(seeds: Sequence[int], hidden_dim: int = 2, model: str = "rnn",
                       n_features: int = 2, n_outputs: int = 1) -> Dict[str, torch.Tensor]:
    """Each seed's initial weights, stacked on a leading model axis.

    For every seed, as a separate run gets them: ``torch.manual_seed(seed)``, then
    ``build_model(model, ...)``, whose parameters are stacked by name (so they cannot drift from
    :mod:`squareseq.models.networks`). The global generator is left as it was.
    """
    _check_cell(model)
    state = torch.get_rng_state()
    stacks: Dict[str, List[torch.Tensor]] = {name: [] for name in _STACKED}
    try:
        for seed in seeds:
            torch.manual_seed(seed)
            net = build_model(model, n_features=n_features, hidden_dim=hidden_dim, n_outputs=n_outputs)
            params = dict(net.named_parameters())
            if set(params) != set(_STACKED.values()):
                raise RuntimeError(f"{type(net).__name__} has parameters {sorted(params)}, but the batched "
                                   f"model computes one with {sorted(_STACKED.values())}: update "
                                   "squareseq.training.many")
            for name, key in _STACKED.items():
                stacks[name].append(params[key].detach())
    finally:
        torch.set_rng_state(state)
    return {name: torch.stack(values) for name, values in stacks.items()}


def shuffle_orders(n_samples: int, batch_size: int, n_epochs: int, fit_seed: int = 42,
                   validation: bool = True) -> torch.Tensor:
    """The sample order of every epoch of ``StepByStep.train(n_epochs, seed=fit_seed)`` with a
    shuffled training ``DataLoader`` (and an unshuffled validation one, whose base seed draw
    moves the global generator too): ``(n_epochs, n_samples)`` indices. The global generator
    is left as it was."""
    state = torch.get_rng_state()
    index = torch.arange(n_samples)
    train = FastLoader(index, index, batch_size=batch_size, shuffle=True)
    val = FastLoader(index[:1], index[:1], batch_size=1)
    orders = []
    try:
        torch.manual_seed(fit_seed)
        for _ in range(n_epochs):
            orders.append(torch.cat([batch[0] for batch in train]))
            if validation:
                iter(val)
    finally:
        torch.set_rng_state(state)
    return torch.stack(orders) if orders else torch.empty(0, n_samples, dtype=torch.long)


#: Up to this many recurrent weights per model (``H * G*H``), the models sit on the *last* axis
#: and each matrix product is a broadcast multiply and a sum, vectorised across models: for tiny
#: matrices that is several times faster than one BLAS call per model. Larger ones use ``bmm``.
_SMALL_MATMUL = 64


class _Stack:
    """K recurrent classifiers with stacked parameters, in one of two layouts.

    ``models_last``: parameters ``(..., K)`` and activations ``(N, features, K)``, products as
    broadcast multiply-and-sum; otherwise parameters ``(K, ...)`` and activations
    ``(K, N, features)`` with batched matrix products.
    """

    def __init__(self, params: Dict[str, torch.Tensor], model: str, models_last: Optional[bool] = None):
        """``params`` are K-first, as :func:`initial_parameters` returns them."""
        self.model = model
        w_hh = params["weight_hh"]
        if models_last is None:
            models_last = w_hh.shape[1] * w_hh.shape[2] <= _SMALL_MATMUL
        self.models_last = models_last
        self.gate_dim = 1 if models_last else 2
        if models_last:
            self.params = {
                "weight_ih": params["weight_ih"].permute(1, 2, 0),  # (G*H, F, K)
                "weight_hh": params["weight_hh"].permute(2, 1, 0),  # (H, G*H, K)
                "bias_ih": params["bias_ih"].t(),  # (G*H, K)
                "bias_hh": params["bias_hh"].t(),
                "weight_c": params["weight_c"].permute(2, 1, 0),  # (H, O, K)
                "bias_c": params["bias_c"].t(),  # (O, K)
            }
        else:
            self.params = dict(params)
        self.params = {name: t.detach().contiguous().clone() for name, t in self.params.items()}

    def leaves(self) -> List[torch.Tensor]:
        return [t.requires_grad_() for t in self.params.values()]

    def _mm(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.models_last:  # (N, I, K) x (I, O, K) -> (N, O, K)
            return (h.unsqueeze(2) * w).sum(dim=1)
        return torch.bmm(h, w.transpose(1, 2))  # (K, N, I) x (K, O, I) -> (K, N, O)

    def _bias(self, b: torch.Tensor) -> torch.Tensor:
        return b if self.models_last else b.unsqueeze(1)

    def _cell(self, gates_x: torch.Tensor, h: Optional[torch.Tensor],
              c: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """One step; ``h`` None is the zero initial state. RNN and LSTM gates already hold both
        biases."""
        p, dim = self.params, self.gate_dim
        if self.model == "rnn":
            return torch.tanh(gates_x if h is None else gates_x + self._mm(h, p["weight_hh"])), None
        if self.model == "gru":
            b_hh = self._bias(p["bias_hh"])
            gates_h = b_hh.expand_as(gates_x) if h is None else self._mm(h, p["weight_hh"]) + b_hh
            xr, xz, xn = gates_x.chunk(3, dim=dim)
            hr, hz, hn = gates_h.chunk(3, dim=dim)
            r = torch.sigmoid(xr + hr)
            z = torch.sigmoid(xz + hz)
            n = torch.tanh(xn + r * hn)
            return ((1 - z) * n if h is None else n + z * (h - n)), None
        gates = gates_x if h is None else gates_x + self._mm(h, p["weight_hh"])
        i, f, g, o = gates.chunk(4, dim=dim)
        c_new = torch.sigmoid(i) * torch.tanh(g)
        if c is not None:
            c_new = torch.sigmoid(f) * c + c_new
        return torch.sigmoid(o) * torch.tanh(c_new), c_new

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Every model's single logit for a shared batch ``x`` ``(N, L, F)``: ``(K, N)`` or, with
        models last, ``(N, K)``."""
        p = self.params
        n, seq_len, n_features = x.shape
        bias = p["bias_ih"] if self.model == "gru" else p["bias_ih"] + p["bias_hh"]
        x2 = x.reshape(n * seq_len, n_features)
        if self.models_last:
            gh, _, k = p["weight_ih"].shape
            # every model's input projection of every step in one product: (N*L, F) @ (F, G*H*K)
            w = p["weight_ih"].permute(1, 0, 2).reshape(n_features, gh * k)
            gates_x = torch.mm(x2, w).view(n, seq_len, gh, k).transpose(0, 1) + bias  # (L, N, G*H, K)
        else:
            k, gh, _ = p["weight_ih"].shape
            w = p["weight_ih"].permute(2, 0, 1).reshape(n_features, k * gh)
            gates_x = torch.mm(x2, w).view(n, seq_len, k, gh).permute(1, 2, 0, 3) + bias.unsqueeze(1)  # (L, K, N, G*H)
        h: Optional[torch.Tensor] = None
        c: Optional[torch.Tensor] = None
        for t in range(seq_len):
            h, c = self._cell(gates_x[t], h, c)
        if h is None:
            raise DataError(f"x must hold sequences of at least one step, got shape {tuple(x.shape)}")
        out = self._mm(h, p["weight_c"]) + self._bias(p["bias_c"])  # (N, 1, K) or (K, N, 1)
        return out.squeeze(self.gate_dim)

    def losses(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each model's mean BCE-with-logits loss over the batch: ``(K,)``."""
        logits = self.logits(x)
        batch_dim = 0 if self.models_last else 1
        target = y.reshape(-1, 1) if self.models_last else y.reshape(1, -1)
        return F.binary_cross_entropy_with_logits(logits, target.expand_as(logits),
                                                  reduction="none").mean(dim=batch_dim)

    def logits_k_first(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.logits(x)
        return logits.t() if self.models_last else logits


def batched_logits(params: Dict[str, torch.Tensor], x: torch.Tensor, model: str = "rnn") -> torch.Tensor:
    """The K models' logits ``(K, N)`` for one shared batch ``x`` ``(N, L, F)``, from stacked
    K-first parameters (as :func:`initial_parameters` returns them; one output per model)."""
    return _Stack(params, model).logits_k_first(x)


@dataclass
class ManyResults:
    """Per-seed outcomes of :func:`train_many`.

    ``counts[i]`` is seed ``seeds[i]``'s ``[[correct_0, total_0], [correct_1, total_1]]`` on the
    test set, ``losses``/``val_losses`` its last epoch's mean training and validation losses, and
    ``loss_history`` ``(n_epochs, K)`` every epoch's mean training loss.
    """

    seeds: List[int]
    counts: List[List[List[int]]]
    accuracy: List[float]
    losses: List[float]
    val_losses: List[float]
    loss_history: np.ndarray
    config: Dict = field(default_factory=dict)
    seconds: float = float("nan")

    @property
    def converged(self) -> List[bool]:
        return [a >= CONVERGED_ACCURACY for a in self.accuracy]

    def converged_share(self) -> float:
        """The share of seeds whose test accuracy is at least :data:`CONVERGED_ACCURACY`."""
        return float(np.mean(self.converged)) if self.seeds else float("nan")

    def summary(self) -> Dict[str, float]:
        """Minimum, median, mean and maximum test accuracy, and the share of converged seeds."""
        acc = np.asarray(self.accuracy, dtype=float)
        return {
            "n_models": len(self.seeds),
            "accuracy_min": float(acc.min()),
            "accuracy_median": float(np.median(acc)),
            "accuracy_mean": float(acc.mean()),
            "accuracy_max": float(acc.max()),
            "converged_share": self.converged_share(),
            "converged_threshold": CONVERGED_ACCURACY,
        }

    def records(self) -> List[Dict]:
        """One flat dict per seed (the CSV's rows)."""
        return [
            {
                "seed": seed, "correct_0": c[0][0], "total_0": c[0][1], "correct_1": c[1][0],
                "total_1": c[1][1], "accuracy": acc, "converged": acc >= CONVERGED_ACCURACY,
                "loss": loss, "val_loss": val_loss,
            }
            for seed, c, acc, loss, val_loss in zip(self.seeds, self.counts, self.accuracy, self.losses,
                                                    self.val_losses)
        ]

    def as_dict(self) -> Dict:
        return {
            "config": dict(self.config),
            "summary": self.summary(),
            "seconds": self.seconds,
            "seeds": [
                {"seed": r["seed"], "correct_per_class": c, "accuracy": r["accuracy"],
                 "converged": r["converged"], "loss": r["loss"], "val_loss": r["val_loss"]}
                for r, c in zip(self.records(), self.counts)
            ],
        }


def _val_losses(stack: _Stack, x, y, batch_size) -> torch.Tensor:
    """Each model's mean validation loss over unshuffled batches, as a validation loader gives."""
    losses = [stack.losses(x[a:a + batch_size], y[a:a + batch_size]) for a in range(0, len(x), batch_size)]
    return torch.stack(losses).double().mean(dim=0)


def _unsupported(config: RunConfig) -> List[str]:
    """The options of ``config`` the batched pass does not train as a separate run would."""
    return [name for name, differs in (
        ("num_layers", config.num_layers != 1), ("bidirectional", config.bidirectional),
        ("variable_len", config.variable_len), ("task", config.task != "direction"),
        ("data", config.data is not None), ("loss", config.loss not in ("auto", "bce-logits")),
        ("val_fraction", config.val_fraction != 0), ("early_stopping", config.early_stopping != 0),
        ("scheduler", config.scheduler != "none"), ("clip_grad", config.clip_grad != 0),
        ("weight_decay", config.weight_decay != 0)) if differs]


def batchable(config: RunConfig) -> bool:
    """Whether :func:`train_many` trains ``config``'s models as separate runs would (its cell,
    layers, data, loss and optimizer options), sizes aside (:func:`check_many` checks those)."""
    return config.model in BATCHED_CELLS and not _unsupported(config)


def check_many(seeds: Sequence[int], config: RunConfig) -> None:
    """Refuses what the batched pass does not train, before anything is allocated: it stacks
    one-layer, one-direction ``rnn``/``gru``/``lstm`` models with one logit on fixed-length
    generated squares, validated on the test set, trained by plain Adam (no schedule, clipping or
    weight decay), at most :data:`~squareseq.models.networks.MAX_PARAMETERS` parameters in all, and
    activations within :data:`~squareseq.config.MAX_ACTIVATION_BYTES` for all the models together."""
    config.validate()
    _check_cell(config.model)
    unsupported = _unsupported(config)
    if unsupported:
        names = ", ".join("{%s}" % name for name in unsupported)
        raise ConfigError(f"{names}: many models at once are trained as the tutorial's one-layer model on the "
                          "direction task (bce-logits loss, plain Adam, validated on the test set); train such "
                          "runs one by one", tuple(unsupported))
    total = len(seeds) * parameter_count(config.model, hidden_dim=config.hidden_dim)
    if total > MAX_PARAMETERS:
        raise ConfigError(f"{len(seeds)} models of {{hidden_dim}} {config.hidden_dim} would have {total:,} parameters "
                          f"together; one batched pass holds at most {MAX_PARAMETERS:,}: give fewer seeds or a "
                          "smaller {hidden_dim}", ("hidden_dim",))
    check_activation_memory(config, models=len(seeds))


def train_many(seeds: Union[str, Iterable[int]], config: Optional[RunConfig] = None, *,
               threads: Threads = "auto") -> ManyResults:
    """Trains one model per seed, all at once, as the tutorial trains one.

    Each model is what a separate run of ``config`` with ``seed`` set to it gives: data from
    ``generate_sequences(n_train, seed=train_seed)`` and ``(n_test, seed=test_seed)``; the weights
    of the ``SquareModel`` built after ``torch.manual_seed(seed)`` (:func:`initial_parameters`);
    BCE-with-logits loss, Adam at ``lr``; batches of ``batch_size`` shuffled as
    ``StepByStep.train(epochs, seed=fit_seed)`` shuffles them. The global RNG state is left as it
    was.

    Args:
        seeds: the models' seeds, as ints or a string like ``"0-255"``.
        config: the run every model shares (default: the tutorial's); its ``seed`` is ignored.
        threads: intra-op threads (see :mod:`squareseq.training.threads`).

    Returns:
        :class:`ManyResults` with every seed's test counts, accuracy and losses.
    """
    seeds = parse_seeds(seeds)
    config = config or RunConfig()
    check_many(seeds, config)
    with intra_op_threads(resolve_threads(threads)):  # all of it: data, initial weights, training
        return _train_many(seeds, config)


def _train_many(seeds: List[int], config: RunConfig) -> ManyResults:
    n_epochs, batch_size, n_train, start = config.epochs, config.batch_size, config.n_train, time.perf_counter()
    x, y, _ = make_tensors(n_train, seed=config.train_seed, noise=config.noise)
    x_test, y_test, _ = make_tensors(config.n_test, seed=config.test_seed, noise=config.noise)
    orders = shuffle_orders(n_train, batch_size, n_epochs, config.fit_seed)
    stack = _Stack(initial_parameters(seeds, config.hidden_dim, config.model), config.model)
    k = len(seeds)
    n_batches = math.ceil(n_train / batch_size)
    history = torch.zeros(n_epochs, k, dtype=torch.float64)
    optimizer = FlatAdam(stack.leaves(), lr=config.lr)
    step = make_step(stack, optimizer)
    try:
        for epoch in range(n_epochs):
            xs, ys = x[orders[epoch]], y[orders[epoch]]
            batch_losses = [step(xs[a:a + batch_size], ys[a:a + batch_size])
                            for a in range(0, n_batches * batch_size, batch_size)]
            history[epoch] = torch.stack(batch_losses).double().mean(dim=0)
        with torch.no_grad():
            val_losses = _val_losses(stack, x_test, y_test, batch_size)
            counts = correct_per_class_stacked(stack.logits_k_first(x_test).unsqueeze(-1), y_test)
    finally:
        optimizer.close()
    final = history[-1].tolist() if n_epochs else [float("nan")] * k
    return ManyResults(
        seeds=list(seeds), counts=counts.tolist(), accuracy=[accuracy(c) for c in counts], losses=final,
        val_losses=val_losses.tolist(), loss_history=history.numpy(),
        config={"seeds": f"{len(seeds)} seeds", **config.to_dict()},
        seconds=time.perf_counter() - start,
    )
