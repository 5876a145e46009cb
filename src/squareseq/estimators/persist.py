"""A fitted estimator as a squareseq checkpoint file, and back.

The file is a squareseq checkpoint (:mod:`squareseq.training.checkpoint`, format version 2) of
the model the estimator predicts with, so ``squareseq predict FILE`` gives its answers: the last
epoch's state, or under early stopping the best epoch's, with the ``run_config`` and
``preprocessing`` a run stores, plus ``"estimator"``: the hyperparameters (``params``), the
labels (``classes``) and whose weights the model holds (``best_epoch``). Under early stopping
the last epoch's state, which a warm start continues, is kept as ``"training_state"`` (checked
as a checkpoint of its own when read). The file is written atomically and read with
``weights_only=True``; everything in it is checked before a model is built from it, and a file
that does not fit is refused in one line (:class:`~squareseq.training.checkpoint.CheckpointError`).
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, List, Union

import numpy as np

from squareseq.data.preprocessing import Preprocessing
from squareseq.errors import SquareseqError
from squareseq.estimators import fitting
from squareseq.options import is_int
from squareseq.runs.inference import model_from_checkpoint, stored_config
from squareseq.training import checkpoint as ckpt
from squareseq.training.checkpoint import CheckpointError

__all__ = ["ESTIMATOR_KEY", "save_estimator", "load_estimator"]

ESTIMATOR_KEY = "estimator"
TRAINING_KEY = "training_state"
_PLAIN = (str, int, float, bool, type(None))


def _labels(classes: np.ndarray) -> List[Any]:
    """The labels as plain values a weights-only file holds (numpy scalars become Python's)."""
    return [v.item() if isinstance(v, np.generic) else v for v in np.asarray(classes).tolist()]


def save_estimator(estimator: Any, path: Union[str, Path]) -> None:
    """Writes a fitted estimator to ``path`` (see the module docstring)."""
    meta = {"params": estimator.get_params(deep=False), "classes": _labels(estimator.classes_),
            "best_epoch": estimator.best_epoch_}
    last = {"format": ckpt.FORMAT, "version": ckpt.VERSION,  # checked as a whole checkpoint when read
            **{k: v for k, v in estimator.state_.items() if k != "best"}}
    best = estimator.state_.get("best") if estimator.best_epoch_ is not None else None
    kept = {**best, TRAINING_KEY: last} if best is not None else last
    payload: Dict[str, Any] = {**kept, "run_config": estimator.config_.to_dict(),
                               "preprocessing": estimator.preprocessing_.to_dict(), ESTIMATOR_KEY: meta}
    ckpt.save(path, payload)


def _meta(saved: Dict[str, Any], names: List[str], where: str) -> Dict[str, Any]:
    meta = saved.get(ESTIMATOR_KEY)
    if not isinstance(meta, dict) or set(meta) != {"params", "classes", "best_epoch"}:
        raise CheckpointError(f"{where} holds no estimator (no {ESTIMATOR_KEY!r} entry with params, classes and "
                              "best_epoch): load a file SequenceClassifier.save wrote")
    params, classes, best = meta["params"], meta["classes"], meta["best_epoch"]
    if not isinstance(params, dict) or not set(params) <= set(names) or not all(
            isinstance(v, _PLAIN) for v in params.values()):
        raise CheckpointError(f"{where}: estimator params must map this estimator's parameter names to plain "
                              f"values; got {sorted(map(str, params)) if isinstance(params, dict) else params!r}")
    if (not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(v, _PLAIN[:4]) for v in classes)
            or len({repr(v) for v in classes}) != len(classes)):
        raise CheckpointError(f"{where}: estimator classes must be a list of at least two distinct labels")
    training = saved.get(TRAINING_KEY)
    if best is not None and not (is_int(best) and best == saved.get("epoch") and isinstance(training, dict)):
        raise CheckpointError(f"{where}: estimator best_epoch must be None, or the file's epoch with the last "
                              f"epoch's state under {TRAINING_KEY!r}")
    if best is None and training is not None:
        raise CheckpointError(f"{where}: {TRAINING_KEY!r} belongs to a best epoch, but estimator best_epoch is None")
    if isinstance(training, dict):
        ckpt.validate(training, f"{where} ({TRAINING_KEY})")
        if int(training.get("epoch", 0)) < best:
            raise CheckpointError(f"{where}: its {TRAINING_KEY} (epoch {training.get('epoch')}) precedes its best "
                                  f"epoch {best}")
    return meta


def load_estimator(estimator: Any, path: Union[str, Path]) -> None:
    """Reads ``path`` into the unfitted ``estimator``: its hyperparameters, then its fitted
    attributes, all checked first (nothing is set unless the whole file fits)."""
    where = str(path)
    saved = ckpt.load(path)
    names = [p for p in inspect.signature(type(estimator).__init__).parameters if p != "self"]
    meta = _meta(saved, names, where)
    config = stored_config(saved, where, required=True)
    preprocessing = Preprocessing.from_dict(saved.get("preprocessing"), where)
    params = {**estimator.get_params(deep=False), **meta["params"]}
    try:
        if fitting.run_config(params, preprocessing.layout) != config.replace(data=fitting.ARRAYS):
            raise CheckpointError(f"{where}: its estimator params and its run_config describe different runs: the "
                                  "file was altered")
    except CheckpointError:
        raise
    except SquareseqError as exc:
        raise CheckpointError(f"{where} holds unusable estimator params ({exc})") from None
    best = meta["best_epoch"]
    model = model_from_checkpoint(saved, where)
    n_outputs = int(getattr(model, "n_outputs", 0))
    classes = meta["classes"]
    if max(n_outputs, 2) != len(classes) or len(preprocessing.class_names) != len(classes) or \
            getattr(model, "n_features", preprocessing.n_features) != preprocessing.n_features:
        raise CheckpointError(f"{where}: its model ({n_outputs} output(s)), preprocessing and classes "
                              f"({len(classes)}) do not fit together: the file was altered or mixes two runs")
    own = {k: v for k, v in saved.items() if k not in ("run_config", "preprocessing", ESTIMATOR_KEY, TRAINING_KEY,
                                                       "format", "version")}
    if best is not None:
        last = {k: v for k, v in saved[TRAINING_KEY].items() if k not in ("format", "version")}
        state = {**last, "best": own}
    else:
        state = own
    estimator.set_params(**meta["params"])
    estimator.classes_ = np.asarray(classes)
    estimator.n_features_in_ = preprocessing.n_features
    estimator.layout_ = preprocessing.layout
    estimator.config_ = config.replace(data=fitting.ARRAYS)
    estimator.preprocessing_ = preprocessing
    estimator.model_ = model
    estimator.state_ = state
    estimator.best_epoch_ = best
    estimator.losses_, estimator.val_losses_ = fitting.losses(state)
    estimator.n_epochs_ = len(estimator.losses_)
