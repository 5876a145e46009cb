"""The tutorial's experiment as a function: data, model, training, evaluation, run folder.

The CLI parses options into a :class:`RunConfig` and calls :func:`run_experiment`; notebooks can
call it too.
"""
from __future__ import annotations

import contextlib
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from squareseq.config import RunConfig, RunOptions
from squareseq.data.checks import check_dataset, check_model_output
from squareseq.errors import ConfigError, SquareseqError, literal
from squareseq.models.networks import ConvClassifier, SquareConv1d, SquareModel, build_model, outputs_probabilities
from squareseq.runs.data import RunData, Split, build_data
from squareseq.runs.folder import CHECKPOINT, claim_run_dir
from squareseq.runs.record import stop_failed, stop_interrupted
from squareseq.runs.run_parts import BOOK_VALIDATION, complete_record, make_guard, write_run
from squareseq.stepbystep import StepByStep
from squareseq.training import checkpoint as ckpt
from squareseq.training import metrics
from squareseq.training.choices import make_optimizer, make_scheduler, resolve_device
from squareseq.training.guard import NonFiniteLossError, RunGuard, SignalStop, TrainingInterrupted, signal_number
from squareseq.training.loop import Callback
from squareseq.training.losses import get_loss_spec, resolve_loss
from squareseq.training.tensorboard import INSTALL_HINT, TensorBoardLogger, tensorboard_available
from squareseq.training.threads import Threads

__all__ = ["BOOK_VALIDATION", "TENSORBOARD", "RunResult", "build_trainer", "check_setup", "evaluate", "run_experiment"]

#: The run folder's TensorBoard log (``RunOptions.tensorboard``): ``tensorboard --logdir RUN``.
TENSORBOARD = "tensorboard"


@dataclass
class RunResult:
    """What a finished run produced. ``trainer``'s model is on the CPU and holds the weights the
    run was tested with: the best epoch's under early stopping (its histories, optimizer and
    checkpoint.pt stay the last epoch's; best.pt holds the best epoch's)."""

    trainer: StepByStep
    counts: torch.Tensor  # (n_classes, 2): [n_correct, n_total] per class
    metrics: Dict[str, Any]
    run_dir: Optional[Path]


def build_trainer(config: RunConfig, data: Optional[RunData] = None,
                  threads: Threads = "auto", device: Union[str, torch.device] = "cpu") -> Tuple[StepByStep, RunData]:
    """Data, model, loss and optimizer of a run, in the tutorial's order of random draws: the
    data (numpy only), then ``torch.manual_seed(seed)`` and the model, then the optimizer; then
    the run's learning-rate schedule, gradient clipping and early stopping.

    The validation loader is the data's validation split, or the test set where it has none (the
    book's way). ``config.loss == "auto"`` means the usual loss for the data's number of classes
    (see :func:`resolved_config`). ``device``: a name as ``--device`` takes it, or a
    ``torch.device``. Returns the trainer and the data, its labels in the format the loss needs.
    """
    data = data or build_data(config)
    spec = get_loss_spec(resolve_loss(config.loss, data.n_classes))
    if spec.float_labels:
        data = data.with_float_labels()
    train_loader = data.train.loader(config.batch_size, shuffle=True)
    val_loader = data.validation.loader(config.batch_size, shuffle=False)
    device = device if isinstance(device, torch.device) else resolve_device(device)

    torch.manual_seed(config.seed)
    model = build_model(config.model, data.n_features, config.hidden_dim, spec.outputs_for(data.n_classes),
                        num_layers=config.num_layers, bidirectional=config.bidirectional,
                        output_activation=spec.output_activation, reference_logit=spec.reference_logit,
                        seq_len=data.seq_len, kernel_size=config.kernel_size, dilation=config.dilation,
                        pooling=config.pooling).to(device)  # before the optimizer, which may hold its parameters
    optimizer = make_optimizer(model.parameters(), config.lr, config.weight_decay, config.scheduler, device)
    trainer = StepByStep(model, spec.make(), optimizer, threads=threads, device=device)
    trainer.set_loaders(train_loader, val_loader)
    scheduler = make_scheduler(optimizer, config.scheduler, config.epochs)
    if scheduler is not None:
        trainer.set_lr_scheduler(scheduler)
    if config.clip_grad > 0:
        trainer.set_clip_grad_norm(config.clip_grad)
    trainer.set_early_stopping(config.early_stopping)
    return trainer, data


def evaluate(model: torch.nn.Module, split: Split, n_classes: int,
             loss_fn: Optional[Callable[..., torch.Tensor]] = None) -> Dict[str, Any]:
    """Per-class ``[n_correct, n_total]``, accuracy and confusion matrix of ``model`` on ``split``
    (and, given ``loss_fn``, the ``loss`` over the whole split), wherever the model's weights are."""
    model.eval()
    device = next(iter(model.parameters()), torch.empty(0)).device
    with torch.no_grad():
        outputs = model(split.model_input().to(device)).cpu()
    probabilities = outputs_probabilities(model)
    counts = metrics.correct_per_class(outputs, split.y, probabilities=probabilities, n_classes=n_classes)
    predicted = metrics.predicted_classes(outputs, probabilities=probabilities)
    result = {
        "correct_per_class": counts.tolist(),
        "accuracy": metrics.accuracy(counts),
        "confusion_matrix": metrics.confusion_matrix(predicted, split.y, n_classes).tolist(),
    }
    if loss_fn is not None:
        with torch.no_grad():
            result["loss"] = float(loss_fn(outputs, split.y))
    return result


def check_setup(trainer: StepByStep, data: RunData) -> None:
    """Checks the run's data and that the model's output fits the loss, before any training."""
    float_labels = data.train.y.dtype.is_floating_point
    for split in (data.train, data.test, *([data.val] if data.val is not None else [])):
        check_dataset(split.x, split.y, n_features=data.n_features, n_classes=data.n_classes,
                      lengths=split.lengths, float_labels=float_labels)
    device = trainer.device  # two samples, where the model is
    check_model_output(trainer.model, data.train.x[:2].to(device), trainer.loss_fn, data.train.y[:2].to(device))


def resolved_config(config: RunConfig, data: RunData) -> RunConfig:
    """``config`` with ``loss="auto"`` replaced by the loss it stands for on ``data`` (what the run
    records, so that a resumed or rebuilt run uses the same one)."""
    return config.replace(loss=resolve_loss(config.loss, data.n_classes))


def run_experiment(
    config: RunConfig,
    options: Optional[RunOptions] = None,
    callbacks: Optional[List[Callback]] = None,
) -> RunResult:
    """Trains and evaluates the run ``config`` describes, carried out as ``options`` say
    (default: write nothing); with ``options.run_dir``, writes the run folder, holding its lock
    for the whole run: ``checkpoint.pt``, ``history.csv``, figures, ``report.html``, and
    ``metrics.json`` last, true in every phase (see :mod:`squareseq.runs.record`).

    Args:
        config: the run; on resume, ``config.epochs`` is the new total.
        options: where to write, whether to resume or overwrite, how often to checkpoint, what
            to draw, how many threads (see :class:`~squareseq.config.RunOptions`).
        callbacks: extra callbacks (a progress bar). Those with an ``on_figure(done, total, name)``
            method (as :class:`~squareseq.training.callbacks.ProgressBar`) also hear of each file of the
            figures phase as it is drawn (see :data:`squareseq.figures.run_figures.FigureProgress`).

    Raises:
        SquareseqError: bad configuration, data or checkpoint, or a run folder another process is
            writing (:class:`~squareseq.runs.lock.RunFolderBusy`), before any training; nothing in
            the run folder changed.
        NonFiniteLossError: the loss became NaN/inf (or overflowed); the last good epoch's state
            is written to the run folder with ``"status": "failed"`` in ``metrics.json``.
        TrainingInterrupted: SIGINT/SIGTERM in any phase (see its ``phase``); the last completed
            epoch's state is written with ``"status": "interrupted"`` (before training: nothing is).
        OSError: a file could not be written (its name in ``filename``); the record says ``"failed"``.
    """
    config.validate()
    options = (options or RunOptions(run_dir=None)).validate()
    signals = SignalStop(deferred=False) if options.handle_signals else None
    with signals if signals is not None else contextlib.nullcontext():
        try:
            return _run(config, options, callbacks or [], signals)
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt as exc:  # before training: nothing in the run folder changed
            raise TrainingInterrupted(signal_number(exc, signals), 0, phase="setup") from None


def _run(config: RunConfig, options: RunOptions, callbacks: List[Callback],
         signals: Optional[SignalStop]) -> RunResult:
    resume = options.resume
    device = resolve_device(options.device)  # an unavailable device is refused before anything is read or written
    if options.tensorboard and not tensorboard_available():
        raise ConfigError("{tensorboard} needs the optional package tensorboard: " + INSTALL_HINT, ("tensorboard",))
    if options.tensorboard and options.run_dir is None:
        raise ConfigError("{tensorboard} writes its log into the run folder: give {run_dir}",
                          ("tensorboard", "run_dir"))
    data = build_data(config)
    config = resolved_config(config, data)
    trainer, data = build_trainer(config, data, threads=options.threads, device=device)
    check_setup(trainer, data)
    # only once data and model are known to be usable: bad input leaves no folder. The folder's lock
    # is held until the run ends; nothing in the folder changes before it is taken.
    claim = claim_run_dir(options.run_dir, overwrite=options.overwrite, resume=resume) \
        if options.run_dir is not None else contextlib.nullcontext(None)
    with claim as run_dir:
        resumed_from: List[int] = []
        resumed_best: Optional[Dict[str, Any]] = None
        if resume:
            assert run_dir is not None  # RunOptions.validate: resume needs the run folder
            resumed_from, resumed_best = _resume(trainer, run_dir, config)
        for callback in callbacks:
            trainer.add_callback(callback)
        if run_dir is not None and not resume:  # an overwritten run's log goes with its other files
            shutil.rmtree(Path(run_dir) / TENSORBOARD, ignore_errors=True)
        logger = _tensorboard(trainer, Path(run_dir), resume) if options.tensorboard and run_dir is not None else None
        recorder = None
        if run_dir is not None and options.figures and options.animation:
            recorder = _snapshot_recorder(trainer, data, Path(run_dir) if resume else None)
        extra = {"run_config": config.to_dict(), "resumed_from": resumed_from,
                 "preprocessing": data.preprocessing}
        guard = make_guard(trainer, Path(run_dir) if run_dir is not None else None, options, extra, signals,
                           resumed_best)
        try:
            try:
                result, record = _train_and_evaluate(trainer, guard, config, options, data, run_dir, signals,
                                                     resumed_from)
            finally:
                trainer.callbacks.remove(guard)
                for added in (recorder, logger):
                    if added is not None:
                        trainer.callbacks.remove(added)
            if logger is not None and trainer.total_epochs > (resumed_from or [0])[-1]:  # once, at the last epoch
                logger.log_metrics(trainer.total_epochs, {"test": record["test"]["accuracy"],
                                                          "validation": record.get("val", {}).get("accuracy")})
            if run_dir is None:
                return result
            write_run(trainer, guard, Path(run_dir), record, options, config, data, recorder, signals,
                      _figure_progress(callbacks))
            return result
        except TrainingInterrupted:
            raise
        except KeyboardInterrupt as exc:  # between phases: the last completed epoch is kept
            raise stop_interrupted(trainer, guard, config, run_dir, exc, signals) from None
        finally:
            if logger is not None:
                logger.close()


def _tensorboard(trainer: StepByStep, run_dir: Path, resume: bool) -> TensorBoardLogger:
    """The run's TensorBoard logger, added to the trainer's callbacks, with the model's graph written.
    A resumed run appends to the same log from its next epoch on (see
    :class:`~squareseq.training.tensorboard.TensorBoardLogger`'s ``purge_step``)."""
    logger = TensorBoardLogger(run_dir / TENSORBOARD, purge_step=trainer.total_epochs + 1 if resume else None)
    trainer.add_callback(logger)
    try:
        assert trainer.train_loader is not None  # build_trainer set it
        logger.add_graph(trainer.model, trainer.train_loader, trainer.device)  # restores the random state it reads
    except SquareseqError as exc:  # a model tracing cannot follow: the scalars are still logged
        warnings.warn(f"{exc}; the TensorBoard log has no graph", stacklevel=2)
    return logger


def _resume(trainer: StepByStep, run_dir: Path, config: RunConfig) -> Tuple[List[int], Optional[Dict[str, Any]]]:
    """Loads and checks the run's checkpoint into ``trainer`` (model, optimizer, scheduler, early
    stopping, RNG states) before anything in the folder changes; returns the run's
    ``resumed_from`` and the best epoch's state it keeps (None without early stopping)."""
    path = Path(run_dir) / CHECKPOINT
    saved = ckpt.load(path)  # onto the CPU: the trainer copies it to its device
    if saved.get("rng_state") is None:
        raise SquareseqError(f"{path} holds no RNG state (written by an older squareseq or the tutorial): "
                             "it cannot be resumed exactly; start a new run")
    trainer.restore_state(saved, where=str(path))
    if trainer.total_epochs > config.epochs:
        raise ConfigError(f"the run in {literal(run_dir)} has already trained {trainer.total_epochs} epochs; "
                          f"{{epochs}} is the new total: pass at least {trainer.total_epochs}", ("epochs",))
    best = saved.get("best") if trainer.early_stopping is not None else None
    if trainer.early_stopping is not None and trainer.early_stopping.best_epoch is not None and best is None:
        raise SquareseqError(f"{path} holds no state of its best epoch {trainer.early_stopping.best_epoch}: it "
                             "cannot be resumed with early stopping; start a new run")
    return [*saved.get("resumed_from", []), trainer.total_epochs], best


def _train_and_evaluate(trainer: StepByStep, guard: RunGuard, config: RunConfig, options: RunOptions,
                        data: RunData, run_dir: Optional[Path], signals: Optional[SignalStop],
                        resumed_from: List[int]) -> Tuple[RunResult, Dict[str, Any]]:
    """Trains, then evaluates; a stop on the way (a signal, a NaN loss) rolls back to the last
    completed epoch and records it (see :func:`~squareseq.runs.record.stop_record`); after an
    unexpected error the folder holds no ``metrics.json``."""
    started = time.perf_counter()
    try:
        stopping = trainer.early_stopping
        # a run that stopped early stays stopped: resuming it trains nothing more, as the uninterrupted run
        remaining = 0 if stopping is not None and stopping.stopped else config.epochs - trainer.total_epochs
        with torch.autograd.set_detect_anomaly(options.detect_anomaly):
            trainer.train(remaining, seed=None if options.resume else config.fit_seed)
        train_seconds = time.perf_counter() - started
        best_epoch = guard.restore_best()  # the test set is evaluated once, with the best epoch's weights
        trainer.to("cpu")  # evaluation, figures and the result use the CPU (checkpoints load anywhere)
        test_metrics = evaluate(trainer.model, data.test, data.n_classes)
        val_metrics = evaluate(trainer.model, data.val, data.n_classes, trainer.loss_fn) \
            if data.val is not None else None
        if signals is not None:
            signals.check()  # a signal that came as training ended, or while evaluating
    except (NonFiniteLossError, RuntimeError) as exc:
        fault = exc if isinstance(exc, NonFiniteLossError) else _numerical_fault(exc, guard)
        if fault is None:
            raise
        raise stop_failed(trainer, guard, config, run_dir, fault, signals) from None
    except KeyboardInterrupt as exc:
        raise stop_interrupted(trainer, guard, config, run_dir, exc, signals) from None
    assert isinstance(trainer.model, (SquareModel, SquareConv1d, ConvClassifier))  # build_trainer built it
    record = complete_record(trainer, config, options, data, test_metrics, val_metrics, best_epoch, resumed_from,
                             train_seconds)
    return RunResult(trainer, torch.tensor(test_metrics["correct_per_class"]), record, run_dir), record


def _figure_progress(callbacks: Optional[List[Callback]]):
    """One :data:`~squareseq.figures.run_figures.FigureProgress` calling every callback's ``on_figure``
    hook (a progress bar's), or None when none has one."""
    found = (getattr(cb, "on_figure", None) for cb in callbacks or ())
    hooks: List[Callable[[int, int, str], None]] = [hook for hook in found if callable(hook)]
    if not hooks:
        return None

    def progress(done: int, total: int, name: str) -> None:
        for hook in hooks:
            hook(done, total, name)

    return progress


def _numerical_fault(exc: RuntimeError, guard: RunGuard) -> Optional[NonFiniteLossError]:
    """A :class:`NonFiniteLossError` for torch's overflow and anomaly-mode errors, else None."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "overflow" not in message and "nan values" not in message.lower() and "inf values" not in message.lower():
        return None
    return NonFiniteLossError(f"numerical fault at epoch {guard.epoch}, step {guard.step + 1}: {message}; lower the "
                              "learning rate", guard.epoch, guard.step + 1)


def _snapshot_recorder(trainer: StepByStep, data: RunData, resume_dir: Optional[Path]):
    """A :class:`~squareseq.figures.replay.SnapshotRecorder` on the figures' test sample, added to the
    trainer's callbacks, or None where the replays do not apply to the model. A resumed run
    continues the snapshots its earlier part saved."""
    from squareseq.figures.replay import SnapshotRecorder, Snapshots
    from squareseq.figures.run_figures import figure_inputs, hidden_figures_apply

    if not hidden_figures_apply(trainer.model):
        return None
    recorder = SnapshotRecorder(*figure_inputs(data.figure_test))
    previous = resume_dir / "snapshots.pt" if resume_dir is not None else None
    if previous is not None and previous.exists():
        try:
            recorder.snapshots = Snapshots.load(previous)
        except ValueError:
            pass  # an unreadable file is redrawn from this run's snapshots alone
    trainer.add_callback(recorder)
    return recorder
