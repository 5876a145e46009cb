"""Every random state training consumes, as plain data a checkpoint can hold.

Training draws from torch's global generator (each ``DataLoader`` iterator draws a base seed, and a
shuffling ``RandomSampler`` without a generator of its own draws its seed there too), from a
loader's own ``generator`` when it has one, and, in user code, from numpy's legacy global generator
and ``random``. :func:`get_state` captures all of them as tensors, ints, floats and lists, which
``torch.load(weights_only=True)`` reads back without unpickling code; :func:`set_state` restores
them, so the epochs after a checkpoint draw exactly what they would have drawn without one.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from squareseq.errors import SquareseqError

__all__ = ["get_state", "set_state", "loader_generators"]


def loader_generators(loader: Any) -> List[torch.Generator]:
    """The distinct ``torch.Generator`` objects a loader shuffles or seeds its workers with."""
    if loader is None:
        return []
    sampler = getattr(loader, "sampler", None)
    batch_sampler = getattr(loader, "batch_sampler", None)
    candidates = [
        getattr(loader, "generator", None),
        getattr(sampler, "generator", None),
        getattr(getattr(batch_sampler, "sampler", None), "generator", None),
    ]
    found: List[torch.Generator] = []
    for g in candidates:
        if isinstance(g, torch.Generator) and all(g is not f for f in found):
            found.append(g)
    return found


def get_state(loader: Any = None) -> Dict[str, Any]:
    """The global torch (and CUDA), numpy and ``random`` states, and ``loader``'s generators."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: Dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "random": {"version": int(version), "internal": list(internal),
                   "gauss_next": gauss_next},
        "loader": [g.get_state() for g in loader_generators(loader)],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_state(state: Dict[str, Any], loader: Any = None, where: str = "checkpoint") -> None:
    """Restores what :func:`get_state` captured.

    Raises:
        SquareseqError: ``state`` is malformed, or ``loader`` has a different number of
            generators than the one it was captured from (then shuffles could not match).
    """
    try:
        np_state = state["numpy"]
        py_state = state["random"]
        torch_state = state["torch"].to(torch.uint8)
        np_tuple = (np_state["kind"], np_state["keys"].numpy().astype(np.uint32), int(np_state["pos"]),
                    int(np_state["has_gauss"]), float(np_state["cached_gaussian"]))
        py_tuple = (int(py_state["version"]), tuple(int(v) for v in py_state["internal"]),
                    py_state["gauss_next"])
        loader_states = list(state.get("loader", []))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SquareseqError(f"{where} has a malformed rng_state ({type(exc).__name__}: {exc})") from None
    generators = loader_generators(loader) if loader is not None else []
    if loader is not None and len(generators) != len(loader_states):
        raise SquareseqError(
            f"{where} holds the state of {len(loader_states)} loader generator(s) but the training loader has "
            f"{len(generators)}: resume with a loader built like the original one"
        )
    try:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_tuple)
        random.setstate(py_tuple)
        for g, s in zip(generators, loader_states):
            g.set_state(s.to(torch.uint8))
    except (TypeError, ValueError, RuntimeError) as exc:
        raise SquareseqError(f"{where} has an rng_state this build cannot restore ({exc})") from None
    cuda: Optional[list] = state.get("cuda")
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.to(torch.uint8) for s in cuda])
