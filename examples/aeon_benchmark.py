"""Benchmark squareseq's SequenceClassifier against aeon classifiers on datasets aeon ships.

Each classifier is fitted on a dataset's train split and scored on its test split, as aeon's
loaders give them (no download). squareseq runs behind aeon's interface
(``squareseq.estimators.AeonSequenceClassifier``), with the defaults ``squareseq train --data``
uses for one's own sequences: a 3-layer convolution, standardized inputs, a validation split and
early stopping. Needs the ``sklearn`` and ``aeon`` extras::

    pip install 'squareseq[sklearn,aeon]'
    python examples/aeon_benchmark.py            # BasicMotions, ItalyPowerDemand, JapaneseVowels
    python examples/aeon_benchmark.py --quick    # fewer epochs and kernels: a smoke run

JapaneseVowels has series of different lengths: ROCKET (equal lengths only) sits it out.
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable, Dict, List, Tuple

import numpy as np
from aeon.classification.convolution_based import RocketClassifier
from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier
from aeon.datasets import load_basic_motions, load_italy_power_demand, load_japanese_vowels

from squareseq import SequenceClassifier
from squareseq.estimators import AeonSequenceClassifier

DATASETS: Dict[str, Callable[..., Any]] = {
    "BasicMotions": load_basic_motions,
    "ItalyPowerDemand": load_italy_power_demand,
    "JapaneseVowels": load_japanese_vowels,
}


def classifiers(quick: bool) -> Dict[str, Callable[[], Any]]:
    """Each contender, made fresh per dataset."""
    epochs = 30 if quick else 300
    return {
        "squareseq conv1d": lambda: AeonSequenceClassifier(SequenceClassifier(epochs=epochs, seed=0, device="cpu")),
        "aeon ROCKET": lambda: RocketClassifier(n_kernels=500 if quick else 10000, random_state=0),
        "aeon 1-NN DTW": lambda: KNeighborsTimeSeriesClassifier(distance="dtw"),
    }


def run(make: Callable[[], Any], X: Any, y: np.ndarray, X_test: Any, y_test: np.ndarray) -> Tuple[float, float, float]:
    """(accuracy, fit seconds, predict seconds) of a fresh classifier."""
    model = make()
    started = time.perf_counter()
    model.fit(X, y)
    fitted = time.perf_counter()
    predicted = model.predict(X_test)
    done = time.perf_counter()
    return float(np.mean(predicted == y_test)), fitted - started, done - fitted


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and kernels (a smoke run)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    args = parser.parse_args(argv)
    print(f"{'dataset':<18}{'classifier':<19}{'accuracy':>9}{'fit s':>9}{'predict s':>11}")
    for name in args.datasets:
        X, y = DATASETS[name](split="train")
        X_test, y_test = DATASETS[name](split="test")
        unequal = isinstance(X, list)
        for label, make in classifiers(args.quick).items():
            if unequal and not make().get_tag("capability:unequal_length"):
                print(f"{name:<18}{label:<19}{'(equal lengths only)':>29}")
                continue
            accuracy, fit_s, predict_s = run(make, X, y, X_test, y_test)
            print(f"{name:<18}{label:<19}{accuracy:>9.3f}{fit_s:>9.2f}{predict_s:>11.2f}")


if __name__ == "__main__":
    main()
