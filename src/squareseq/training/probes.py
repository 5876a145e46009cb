"""Probes that watch a model without changing it: forward outputs, gradients, parameters.

Each probe is a context manager that removes its hooks on exit, even after an error.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn

from squareseq.errors import SquareseqError

__all__ = ["main_output", "OutputRecorder", "record_outputs", "register_forward_hooks"]


def main_output(outputs) -> torch.Tensor:
    """A layer's main output tensor: the output itself, or the first tensor of a tuple
    (``nn.RNN``/``nn.GRU`` return ``(output, h_n)``, ``nn.LSTM`` ``(output, (h_n, c_n))``)."""
    while isinstance(outputs, (tuple, list)):
        outputs = outputs[0]
    return outputs


def _names(layers: Union[str, Iterable[str]]) -> List[str]:
    return [layers] if isinstance(layers, str) else list(layers)


def register_forward_hooks(
    model: nn.Module, layers: Union[str, Iterable[str]], hook_fn: Callable
) -> Dict[str, torch.utils.hooks.RemovableHandle]:
    """Registers ``hook_fn`` on each named layer and returns ``{name: handle}``.

    Raises:
        ValueError: a name is not a submodule of ``model``.
    """
    modules = dict(model.named_modules())
    wanted = _names(layers)
    unknown = [n for n in wanted if n not in modules]
    if unknown:
        known = ", ".join(n for n in modules if n) or "(none)"
        raise SquareseqError(f"no layer named {', '.join(map(repr, unknown))}; the model has: {known}")
    return {name: modules[name].register_forward_hook(hook_fn) for name in wanted}


class OutputRecorder:
    """Collects each hooked layer's main output, concatenated over calls, as numpy arrays."""

    def __init__(self) -> None:
        self.outputs: Dict[str, Optional[np.ndarray]] = {}

    def hook_for(self, layer_names: Dict[nn.Module, str]) -> Callable:
        def hook(layer, inputs, outputs):
            name = layer_names[layer]
            values = main_output(outputs).detach().cpu().numpy()
            previous = self.outputs.get(name)
            self.outputs[name] = values if previous is None else np.concatenate([previous, values])

        return hook


@contextlib.contextmanager
def record_outputs(model: nn.Module, layers: Union[str, Sequence[str]]) -> Iterator[Dict[str, Optional[np.ndarray]]]:
    """Records the outputs of ``layers`` during the ``with`` block; hooks are always removed.

    Example::

        with record_outputs(model, ["basic_rnn"]) as outputs:
            model(x)
        outputs["basic_rnn"]  # (N, L, H)
    """
    recorder = OutputRecorder()
    names = {module: name for name, module in model.named_modules()}
    for name in _names(layers):
        recorder.outputs[name] = None
    handles = register_forward_hooks(model, layers, recorder.hook_for(names))
    try:
        yield recorder.outputs
    finally:
        for handle in handles.values():
            handle.remove()
