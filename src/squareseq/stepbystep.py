"""``StepByStep``: the tutorial's trainer, as a thin facade over squareseq's core.

It keeps the tutorial's names and semantics (users' notebooks depend on them) while the loop,
callbacks, metrics, checkpoint state (:mod:`squareseq.training.state`) and I/O, probes and figures
live in their own modules. Where the tutorial's utility had defects (stale gradients after
``lr_range_test``, hooks failing on RNN layers, clipping modes clobbering each other, ``train``
recording ``None`` without loaders, checkpoints loaded with ``weights_only=False``), this class
does the evident right thing.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from squareseq.data.checks import check_training_data
from squareseq.data.squares import as_model_input
from squareseq.errors import SquareseqError
from squareseq.models.networks import outputs_probabilities
from squareseq.training import hooks as trainer_hooks
from squareseq.training import metrics
from squareseq.training import state as trainer_state
from squareseq.training.callbacks import EarlyStopping, LRSchedulerCallback, is_batch_scheduler
from squareseq.training.fastpath import TrainParts, select_parts
from squareseq.training.guard import FiniteLossCheck
from squareseq.training.loop import (
    Callback,
    FitState,
    History,
    make_train_step,
    make_val_step,
    run_epoch,
)
from squareseq.training.loop import fit as _fit
from squareseq.training.loop import set_seed as _set_seed
from squareseq.training.lr_finder import lr_range_test as _lr_range_test
from squareseq.training.lr_finder import make_lr_fn
from squareseq.training.optim import OptimizerLike
from squareseq.training.tensorboard import TensorBoardLogger, timestamped_dir
from squareseq.training.threads import Threads, intra_op_threads, resolve_threads

__all__ = ["StepByStep", "make_lr_fn"]


class StepByStep:
    """Trains, validates and evaluates a model the way the tutorial does.

    Args:
        model: any ``nn.Module`` mapping a batch ``x`` to outputs.
        loss_fn: called as ``loss_fn(outputs, y)``.
        optimizer: an optimizer over ``model``'s parameters.
        threads: intra-op threads while training: ``"auto"`` (one for tiny models, see
            :mod:`squareseq.training.threads`), None (torch's setting) or a count.
        fast: let ``train`` swap in exact fast equivalents of the tutorial's pipeline: a
            :class:`~squareseq.data.loaders.FastLoader` for a plain ``DataLoader`` over a
            ``TensorDataset`` and a :class:`~squareseq.training.optim.FlatAdam` for a default ``Adam``.
            Both give the same numbers bit for bit; ``False`` runs the given objects as they are.
        device: where to train; None (the tutorial's choice): CUDA when available, else the CPU.
            Move the model there before building its optimizer (a ``FlatAdam`` holds its
            parameters in place).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, optimizer: OptimizerLike,
                 *, threads: Threads = "auto", fast: bool = True,
                 device: Union[str, torch.device, None] = None):
        self.threads = threads
        self.fast = fast
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.device: Union[str, torch.device] = device if device is not None else (
            "cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)

        self.train_loader: Optional[Iterable] = None
        self.val_loader: Optional[Iterable] = None
        self.scheduler: Any = None
        self.is_batch_lr_scheduler = False
        self.early_stopping: Optional[EarlyStopping] = None
        self.clipping: Optional[Callable[[], Any]] = None  # gradient clipping after backward
        self._backprop_clip_handles: List[Any] = []  # clamping hooks on the parameters

        self.history = History()
        self.total_epochs = 0
        self.callbacks: List[Callback] = []
        self.tensorboard: Optional[TensorBoardLogger] = None  # set_tensorboard's logger

        self.visualization: Dict[str, Optional[np.ndarray]] = {}
        self.handles: Dict[str, Any] = {}
        self._gradients: Dict[str, Dict[str, list]] = {}
        self._parameters: Dict[str, Dict[str, list]] = {}

        self.train_step = self._make_train_step()
        self.val_step = self._make_val_step()

    # -- the tutorial's attributes --------------------------------------------------------------
    @property
    def losses(self) -> List[float]:
        return self.history.losses

    @losses.setter
    def losses(self, value: List[float]) -> None:
        self.history.losses = list(value)

    @property
    def val_losses(self) -> List[Optional[float]]:
        return self.history.val_losses

    @val_losses.setter
    def val_losses(self, value: List[Optional[float]]) -> None:
        self.history.val_losses = list(value)

    @property
    def learning_rates(self) -> List[List[float]]:
        return self.history.learning_rates

    # -- set-up ---------------------------------------------------------------------------------
    def to(self, device: Union[str, torch.device]) -> None:
        """Moves the model to ``device``; batches follow it."""
        self.device = device
        self.model.to(self.device)

    def set_loaders(self, train_loader, val_loader=None) -> None:
        """Sets the loaders ``train`` iterates over (validation is optional)."""
        self.train_loader = train_loader
        self.val_loader = val_loader

    def set_optimizer(self, optimizer: OptimizerLike) -> None:
        self.optimizer = optimizer
        self.train_step = self._make_train_step()

    def add_callback(self, callback: Callback) -> None:
        """Adds a callback that ``train`` fires events on (see ``squareseq.training.loop.Callback``)."""
        self.callbacks.append(callback)

    def _make_train_step(self):
        self._built_train_step = make_train_step(self.model, self.loss_fn, self.optimizer, self.clipping)
        return self._built_train_step

    def _make_val_step(self):
        self._built_val_step = make_val_step(self.model, self.loss_fn)
        return self._built_val_step

    # -- training -------------------------------------------------------------------------------
    def _scheduler_callbacks(self) -> List[Callback]:
        if self.scheduler is None:
            return []
        return [LRSchedulerCallback(self.scheduler, self.is_batch_lr_scheduler, self.history.learning_rates)]

    def _mini_batch(self, validation: bool = False) -> Optional[float]:
        """One pass over the validation or training loader; the mean batch loss, or None
        without a loader."""
        loader = self.val_loader if validation else self.train_loader
        if loader is None:
            return None
        if validation:
            self.model.eval()
            return run_epoch(self.val_step, loader, self.device)
        self.model.train()
        state = FitState(self.model, self.optimizer, self.history, epoch=self.total_epochs)
        callbacks = self._scheduler_callbacks()

        def after_batch(i, n, loss):
            for cb in callbacks:
                cb.on_batch_end(state, i, n, loss)

        return run_epoch(self.train_step, loader, self.device, after_batch)

    def set_seed(self, seed: int = 42) -> None:
        """Seeds torch, numpy and random, and the training loader's own generator if it has one."""
        _set_seed(seed)
        generator = getattr(getattr(self.train_loader, "sampler", None), "generator", None)
        if generator is not None:
            generator.manual_seed(seed)

    def train(self, n_epochs: int, seed: Optional[int] = 42) -> None:
        """Seeds everything, then trains for ``n_epochs``: per epoch one pass over the training
        loader, then one over the validation loader under ``no_grad``.

        ``seed=None`` skips the seeding and continues from the current random states: after
        ``load_checkpoint`` (which restores them), ``train(n, seed=None)`` continues a run exactly
        as if it had never stopped. A NaN or infinite loss stops training at the end of its epoch
        with a ``NonFiniteLossError`` (a ``ValueError``) naming the epoch and step; the model then
        holds that epoch's unusable weights: reload a checkpoint (``run_experiment`` rolls back by
        itself).
        """
        if self.train_loader is None:
            raise SquareseqError("no training loader: call set_loaders(train_loader, val_loader) before train()")
        n_threads = resolve_threads(self.threads, self.model)
        check_training_data(self.train_loader, self.model, self.loss_fn, "training data")
        if self.val_loader is not None:
            check_training_data(self.val_loader, self.model, self.loss_fn, "validation data")
        if seed is not None:
            self.set_seed(seed)
        else:  # no reseeding, but the same deterministic kernels a seeded run uses
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
        state = FitState(self.model, self.optimizer, self.history, epoch=self.total_epochs)
        parts = self._train_parts(n_epochs)
        stopping = [self.early_stopping] if self.early_stopping is not None else []
        callbacks = [*parts.callbacks(self.callbacks), FiniteLossCheck(), *self._scheduler_callbacks(), *stopping,
                     *self.callbacks]
        try:
            with intra_op_threads(n_threads):
                _fit(state, parts.train_step, parts.val_step, parts.train_loader, parts.val_loader, n_epochs,
                     callbacks, self.device)
        finally:
            self.total_epochs = self.history.epochs
            parts.finish()

    def _train_parts(self, n_epochs: Optional[int] = None) -> TrainParts:
        """What ``train`` runs (for ``n_epochs``; None: many): exact fast stand-ins where ``fast``
        is on (see :mod:`squareseq.training.fastpath`), the given loaders and steps otherwise."""
        assert self.train_loader is not None  # train() refuses to start without one
        if not self.fast:
            return TrainParts(self.train_loader, self.val_loader, self.train_step, self.val_step)
        return select_parts(
            self.model, self.loss_fn, self.optimizer, self.train_loader, self.val_loader,
            self.train_step, self.val_step,
            own_train_step=self.train_step is self._built_train_step,
            own_val_step=self.val_step is self._built_val_step,
            clipping=self.clipping, device=self.device, n_epochs=n_epochs,
        )

    # -- TensorBoard (see squareseq.training.tensorboard) ----------------------------------------
    def set_tensorboard(self, name: str, folder: str = "runs") -> None:
        """Logs every epoch of ``train`` (losses, learning rate) to TensorBoard in
        ``{folder}/{name}_{timestamp}``, as the book does; needs the optional ``tensorboard``."""
        if self.tensorboard is not None:
            self.callbacks.remove(self.tensorboard)
            self.tensorboard.close()
        self.tensorboard = TensorBoardLogger(timestamped_dir(name, folder))
        self.add_callback(self.tensorboard)

    @property
    def writer(self) -> Any:
        """The book's ``SummaryWriter`` (None before :meth:`set_tensorboard`)."""
        return self.tensorboard.writer if self.tensorboard is not None else None

    def add_graph(self) -> None:
        """Writes the model's graph, traced on one training batch, to the TensorBoard log (without
        any random draw: training's numbers stay the same); nothing without a loader or a log."""
        if self.train_loader is not None and self.tensorboard is not None:
            self.tensorboard.add_graph(self.model, self.train_loader, self.device)

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint_state(self, epoch: Optional[int] = None) -> Dict[str, Any]:
        """Everything a checkpoint holds, as copies: model, optimizer and scheduler states, the
        histories, the model's config, and every RNG state training consumes (see
        ``squareseq.training.checkpoint`` for the format)."""
        return trainer_state.capture_state(self, epoch)

    def restore_state(self, data: Dict[str, Any], restore_rng: bool = True, where: str = "checkpoint") -> None:
        """Loads what :meth:`checkpoint_state` returned (or a loaded checkpoint) into this trainer;
        all or nothing: if any part does not fit, the trainer is left as it was.

        Raises:
            CheckpointError: the state does not fit this model, optimizer, scheduler or loader.
        """
        trainer_state.restore_state(self, data, restore_rng, where)

    def save_checkpoint(self, filename, extra: Optional[Dict[str, Any]] = None) -> None:
        """Saves the complete training state atomically (the tutorial's keys plus scheduler,
        learning rates, RNG states and model config), plus ``extra`` plain data (such as the
        run's configuration)."""
        trainer_state.save(self, filename, extra)

    def load_checkpoint(self, filename, restore_rng: bool = True) -> Dict[str, Any]:
        """Restores model, optimizer, scheduler, epoch, histories and (unless ``restore_rng`` is
        false) the RNG states from a squareseq or tutorial checkpoint, without unpickling code.

        Set the loaders first: a loader with its own generator gets its state back too. Then
        ``train(n, seed=None)`` continues exactly. Returns the checkpoint's contents.
        """
        return trainer_state.load(self, filename, restore_rng)

    # -- inference and metrics ------------------------------------------------------------------
    def predict(self, x) -> np.ndarray:
        """The model's outputs for ``x`` as a numpy array, one row per sequence in input order.

        ``x`` is array-like ``(N, L, F)``, a ``PackedSequence``, or a list of ``(L_i, F)`` arrays
        of different lengths (packed here, so each sequence is read up to its own last step).
        """
        self.model.eval()
        try:
            with torch.no_grad():
                batch = as_model_input(x).to(self.device)  # type: ignore[arg-type]  # PackedSequence.to stub: dtype only
                return self.model(batch).cpu().numpy()
        finally:
            self.model.train()

    def correct(self, x: torch.Tensor, y: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
        """Per-class ``[n_correct, n_total]`` for one batch (sigmoid + threshold for one output,
        argmax for several)."""
        self.model.eval()
        try:
            with torch.no_grad():
                outputs = self.model(x.to(self.device))
        finally:
            self.model.train()
        counts = metrics.correct_per_class(
            outputs, y.to(self.device), threshold, probabilities=outputs_probabilities(self.model)
        )
        return counts.cpu()

    @staticmethod
    def loader_apply(loader, func: Callable, reduce: str = "sum") -> torch.Tensor:
        """Applies ``func(x, y)`` to every batch and reduces the stacked results."""
        results = torch.stack([func(x, y) for x, y in loader], dim=0)
        if reduce == "sum":
            return results.sum(dim=0)
        if reduce == "mean":
            return results.float().mean(dim=0)
        return results

    def count_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def plot_losses(self):
        """The loss curves (log scale) as a matplotlib Figure."""
        from squareseq.figures.plots import plot_losses

        return plot_losses(self.history)

    # -- learning rates -------------------------------------------------------------------------
    def set_lr_scheduler(self, scheduler, per_batch: Optional[bool] = None) -> None:
        """Uses ``scheduler``, stepped per batch or per epoch (by default as the tutorial decides
        from its type)."""
        if scheduler.optimizer is not self.optimizer:
            raise SquareseqError("the scheduler must wrap this trainer's optimizer")
        self.scheduler = scheduler
        self.is_batch_lr_scheduler = is_batch_scheduler(scheduler) if per_batch is None else per_batch

    def set_early_stopping(self, patience: Optional[int], min_delta: float = 0.0) -> None:
        """Stops ``train`` once the validation loss has not improved for ``patience`` epochs (None
        or 0: never). Its state (best loss, epochs waited, best epoch) is part of the checkpoint, so
        a resumed run stops where an uninterrupted one would."""
        self.early_stopping = EarlyStopping(patience, min_delta) if patience else None

    def lr_range_test(self, data_loader, end_lr: float, num_iter: int = 100, step_mode: str = "exp",
                      alpha: float = 0.05, ax=None):
        """Runs the learning-rate range test; returns ``(tracking, fig)``. Model and optimizer
        are restored afterwards."""
        from squareseq.figures.plots import plot_lr_range

        if not isinstance(self.optimizer, torch.optim.Optimizer):  # torch's schedulers refuse a FlatAdam
            raise SquareseqError(f"the learning-rate range test steps a torch scheduler, which needs a torch.optim "
                                 f"optimizer, not a {type(self.optimizer).__name__}: use torch.optim.Adam")
        tracking = _lr_range_test(self.model, self.loss_fn, self.optimizer, data_loader, end_lr,
                                  num_iter, step_mode, alpha, self.device)
        fig = plot_lr_range(tracking, log_x=(step_mode == "exp"), ax=ax)
        return tracking, fig

    # -- gradient clipping (one mode at a time; see squareseq.training.hooks) --------------------
    def _set_clipping(self, clip: Optional[Callable[[], Any]]) -> None:
        trainer_hooks.set_clipping(self, clip)

    def set_clip_grad_value(self, clip_value: float) -> None:
        """Clips each gradient value to ``[-clip_value, clip_value]`` after backward."""
        self._set_clipping(trainer_hooks.clip_by_value(self, clip_value))

    def set_clip_grad_norm(self, max_norm: float, norm_type: float = 2) -> None:
        """Rescales the gradients after backward so that their norm is at most ``max_norm``."""
        self._set_clipping(trainer_hooks.clip_by_norm(self, max_norm, norm_type))

    def set_clip_backprop(self, clip_value: float) -> None:
        """Clamps gradients during backpropagation, with a hook on every parameter."""
        trainer_hooks.clamp_in_backprop(self, clip_value)

    def remove_clip(self) -> None:
        """Turns gradient clipping off, whichever mode was set."""
        trainer_hooks.remove_clipping(self)

    # -- hooks (see squareseq.training.hooks) ----------------------------------------------------
    def attach_hooks(self, layers_to_hook: Union[str, Sequence[str]], hook_fn: Optional[Callable] = None) -> None:
        """Records the outputs of the named layers in ``self.visualization`` on every forward
        pass (the main tensor of tuple outputs, such as an RNN's ``(output, h_n)``)."""
        trainer_hooks.attach_hooks(self, layers_to_hook, hook_fn)

    def remove_hooks(self) -> None:
        """Removes every hook ``attach_hooks`` and ``capture_*`` registered."""
        trainer_hooks.remove_hooks(self)

    def capture_gradients(self, layers_to_hook: Union[str, Sequence[str]]) -> None:
        """Records every gradient of the named layers' parameters in ``self._gradients``."""
        trainer_hooks.capture_gradients(self, layers_to_hook)

    def capture_parameters(self, layers_to_hook: Union[str, Sequence[str]]) -> None:
        """Records the named layers' parameters in ``self._parameters`` on every forward pass."""
        trainer_hooks.capture_parameters(self, layers_to_hook)
