"""``SequenceClassifier``: squareseq's models and training core as a scikit-learn classifier.

It follows scikit-learn's estimator rules (the constructor only stores hyperparameters; ``fit``
learns attributes ending in ``_``), so it works in ``Pipeline``, ``cross_val_score``,
``GridSearchCV`` and ``RandomizedSearchCV`` (``n_jobs`` > 1 included), with ``clone`` and
``pickle``. Training is :func:`squareseq.estimators.fitting.train`: the trainer
:func:`~squareseq.runs.experiment.build_trainer` builds, trained by ``StepByStep.train``, the loop
``squareseq train`` runs.

Inputs (:mod:`squareseq.estimators.inputs`): ``(N, L, F)`` or, with ``layout="NCL"``,
``(N, C, L)`` arrays (aeon's layout); ``(N, L)`` arrays of univariate sequences; lists of
``(L_i, F)`` sequences of different lengths, or arrays NaN-padded at the end. ``n_features_in_`` is
``F``, the features per step (1 for a 2-D ``X``): sequences of any length can be predicted.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np
import torch

from squareseq.errors import SquareseqError

try:
    from sklearn.base import BaseEstimator, ClassifierMixin
    from sklearn.utils.validation import check_is_fitted, column_or_1d
except ImportError:  # pragma: no cover - the extra is installed wherever the tests run
    raise SquareseqError("squareseq.SequenceClassifier needs the optional package scikit-learn: "
                         "pip install 'squareseq[sklearn]'") from None

from squareseq.data.preprocessing import Preprocessing, Standardizer
from squareseq.errors import DataError
from squareseq.estimators import fitting
from squareseq.estimators.inputs import (
    Sequences,
    as_data_errors,
    as_sequences,
    encode_targets,
    fitted_layout,
    model_input,
    targets_as_codes,
)
from squareseq.estimators.persist import load_estimator, save_estimator
from squareseq.runs.data import Split
from squareseq.runs.inference import class_probabilities

__all__ = ["SequenceClassifier"]

#: Sequences per forward pass in ``predict_proba`` (bounds its memory; the result is the same).
PREDICT_CHUNK = 1024


class SequenceClassifier(ClassifierMixin, BaseEstimator):
    """A sequence classifier trained with squareseq (scikit-learn API).

    Defaults are those ``squareseq train --data`` uses for one's own sequences
    (:data:`squareseq.config.DATA_DEFAULTS`): a 3-layer ``conv1d`` of 64 channels, Adam at 0.001,
    standardized inputs, 20% of each class held out for validation, early stopping after 50
    epochs without improvement (the best epoch's weights kept), at most 300 epochs.

    Args:
        model: ``"rnn"``, ``"gru"``, ``"lstm"``, ``"conv1d"`` or ``"square-conv1d"``.
        hidden_dim: recurrent state size, or channels of ``conv1d``.
        num_layers: stacked layers (None: 1, or 3 for ``conv1d``).
        bidirectional: recurrent models only.
        kernel_size: ``conv1d``'s filter width (as ``squareseq train``'s option).
        dilation: ``conv1d``'s dilation (as ``squareseq train``'s option).
        pooling: ``conv1d``'s global pooling (as ``squareseq train``'s option).
        lr: Adam's learning rate.
        weight_decay: Adam's weight decay.
        epochs: epochs in all; with ``warm_start`` the total reached, not a number added.
        batch_size: sequences per mini-batch.
        loss: ``"auto"`` (one logit for two classes, one per class otherwise) or a ``--loss`` name.
        standardize: rescale each feature with the training part's statistics (kept, and applied
            by ``predict``).
        val_fraction: share of each class held out for validation (0: none).
        early_stopping: patience in epochs (0: off; needs ``val_fraction`` > 0).
        clip_grad: gradient norm clipping (0: off).
        scheduler: ``"none"``, ``"cosine"`` or ``"plateau"``.
        layout: ``"auto"``, ``"NLF"`` (``(N, L, F)``) or ``"NCL"`` (``(N, C, L)``) for 3-D arrays.
        seed: seeds the model's weights, the shuffles and the validation split: two fits with one
            seed give the same model bit for bit (on one machine and device).
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``;
            the fitted model is kept on the CPU, so it pickles and loads anywhere.
        threads: intra-op threads while training (``"auto"``: one for small models).
        warm_start: ``fit`` continues the last fit (its model, optimizer, schedule, early
            stopping and random states) up to ``epochs`` in all, exactly as
            ``squareseq train --resume`` continues a run; a fit that stopped early stays stopped.
        verbose: show a progress bar over epochs.

    Attributes:
        classes_: the labels, in class order (numeric for integer labels, text order otherwise).
        n_features_in_: features per step.
        layout_: the layout 3-D arrays are read in (``"NLF"``/``"NCL"``).
        model_: the trained ``torch.nn.Module`` (CPU).
        preprocessing_: what ``predict`` repeats (:class:`~squareseq.data.preprocessing.Preprocessing`).
        losses_, val_losses_: the loss of each epoch (validation: None without a split).
        n_epochs_: epochs trained in all; best_epoch_: whose weights the model holds (None: the last).
    """

    # the fitted attributes (set by fit; declared for type checkers only)
    classes_: np.ndarray
    n_features_in_: int
    layout_: str
    config_: Any
    preprocessing_: Preprocessing
    model_: torch.nn.Module
    state_: Dict[str, Any]
    best_epoch_: Optional[int]
    losses_: List[float]
    val_losses_: List[Optional[float]]
    n_epochs_: int

    def __init__(self, model: str = "conv1d", hidden_dim: int = 64, num_layers: Optional[int] = None,
                 bidirectional: bool = False, kernel_size: int = 5, dilation: int = 2, pooling: str = "avg",
                 lr: float = 0.001, epochs: int = 300, batch_size: int = 16, loss: str = "auto",
                 standardize: bool = True, val_fraction: float = 0.2, early_stopping: int = 50,
                 weight_decay: float = 0.0, clip_grad: float = 0.0, scheduler: str = "none", layout: str = "auto",
                 seed: int = 0, device: str = "auto", threads: Union[str, int] = "auto", warm_start: bool = False,
                 verbose: bool = False):
        self.model = model
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.kernel_size = kernel_size
        self.dilation = dilation
        self.pooling = pooling
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.loss = loss
        self.standardize = standardize
        self.val_fraction = val_fraction
        self.early_stopping = early_stopping
        self.weight_decay = weight_decay
        self.clip_grad = clip_grad
        self.scheduler = scheduler
        self.layout = layout
        self.seed = seed
        self.device = device
        self.threads = threads
        self.warm_start = warm_start
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # (N, L, F) or (N, C, L); 2-D X is (N, L) univariate
        tags.input_tags.allow_nan = False  # NaN only as trailing padding of a whole step
        tags.non_deterministic = False  # seeded: two fits are bit-identical
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_label = False
        return tags

    # -- fit ------------------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> "SequenceClassifier":
        """Trains on sequences ``X`` and their labels ``y`` (integers or text, any values).

        Raises:
            DataError: ``X`` or ``y`` unusable (one line saying what and how to fix it).
            ConfigError: a bad hyperparameter, or ``device`` not available here.
        """
        with as_data_errors():
            return self._fit(X, y)

    def _fit(self, X: Any, y: Any) -> "SequenceClassifier":
        continuing = self.warm_start and hasattr(self, "state_")
        seqs = as_sequences(X, self.layout_ if continuing else self.layout)
        try:
            y = column_or_1d(np.asarray(y) if not hasattr(y, "dtype") else y, warn=True)
        except ValueError as exc:
            raise DataError(f"y must hold one label per sequence, shape (N,): {exc}") from None
        if continuing:
            layout = self.layout_
            self._check_features(seqs)
            codes, classes, names = targets_as_codes(y, len(seqs), self.classes_), self.classes_, \
                list(self.preprocessing_.class_names)
        else:
            layout, _ = fitted_layout(seqs)
            codes, classes, names = encode_targets(y, len(seqs))
        config = fitting.run_config(self.get_params(deep=False), layout)
        x, lengths = model_input(seqs, layout)
        standardizer: Optional[Standardizer] = self.preprocessing_.standardizer if continuing else None
        prepared = fitting.prepare(x, lengths, codes, names, config, layout, standardizer)
        with fitting.kept_rng():
            result = fitting.train(config, prepared, self.threads, self.device,
                                   self.state_ if continuing else None, bool(self.verbose))
        self.classes_ = np.asarray(classes)
        self.n_features_in_ = int(x.shape[2])
        self.layout_ = layout
        self.config_ = config
        self.preprocessing_ = prepared.preprocessing
        self.model_ = result.model
        self.state_ = result.state
        self.best_epoch_ = result.best_epoch
        self.losses_, self.val_losses_ = fitting.losses(result.state)
        self.n_epochs_ = len(self.losses_)
        return self

    # -- predict --------------------------------------------------------------------------------
    def _check_features(self, seqs: Sequences) -> None:
        if seqs.n_features != self.n_features_in_:
            raise DataError(f"X has {seqs.n_features} feature(s) per step (layout {seqs.layout}), but the classifier "
                            f"was fitted on {self.n_features_in_}; give sequences shaped like the training data")

    def _prepared(self, X: Any) -> Split:
        check_is_fitted(self)
        seqs = as_sequences(X, self.layout_)
        self._check_features(seqs)
        prep: Preprocessing = self.preprocessing_
        with as_data_errors():
            x, lengths = prep.prepare(seqs.array, seqs.lengths, layout=seqs.layout, name="predict")
        return Split(torch.from_numpy(x), torch.zeros(len(x), dtype=torch.int64),
                     None if lengths is None else torch.from_numpy(np.asarray(lengths, dtype=np.int64)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """``(N, n_classes)`` class probabilities, columns in :attr:`classes_` order, rows summing to 1."""
        split = self._prepared(X)
        parts = []
        for start in range(0, len(split), PREDICT_CHUNK):
            chunk = split.take(np.arange(start, min(start + PREDICT_CHUNK, len(split))))
            parts.append(class_probabilities(self.model_, chunk.model_input()).double())
        fitting.forget_hidden(self.model_)  # predict leaves the estimator as it found it
        return torch.cat(parts).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sequence, as a label of :attr:`classes_`."""
        probabilities = self.predict_proba(X)  # first: it says when the classifier is not fitted
        return self.classes_[np.argmax(probabilities, axis=1)]

    # -- files ----------------------------------------------------------------------------------
    def save(self, path: Union[str, Path]) -> None:
        """Writes the fitted classifier as a squareseq checkpoint (atomically; tensors and plain
        data only, so :meth:`load` never unpickles code): the model it predicts with, so
        ``squareseq predict FILE`` gives the same answers, its preprocessing, run configuration,
        hyperparameters and classes, and the training state a warm start continues (see
        :mod:`squareseq.estimators.persist`)."""
        check_is_fitted(self)
        save_estimator(self, path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "SequenceClassifier":
        """A classifier :meth:`save` wrote, checked as it is read (``weights_only=True``).

        Raises:
            CheckpointError: not such a file, or a damaged one (one line naming it).
        """
        estimator = cls()
        load_estimator(estimator, path)
        return estimator
