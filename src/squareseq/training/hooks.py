"""The tutorial's hook and gradient-clipping helpers, as functions on a trainer.

:class:`~squareseq.stepbystep.StepByStep` keeps the tutorial's methods (``attach_hooks``,
``capture_gradients``, ``capture_parameters``, ``set_clip_*``, ...) and delegates here, so the
facade reads as a list of what it offers. Recorded values land in the trainer's own attributes
(``visualization``, ``_gradients``, ``_parameters``), as the tutorial's code expects; the
hooks' handles go into ``handles`` (clamping hooks into ``_backprop_clip_handles``). Clipping
has one mode at a time: setting one removes the other.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Protocol, Sequence, Union

import numpy as np
import torch
from torch import nn

from squareseq.errors import SquareseqError
from squareseq.training.probes import OutputRecorder, register_forward_hooks

__all__ = [
    "HookedTrainer", "attach_hooks", "capture_gradients", "capture_parameters", "clamp_in_backprop",
    "clip_by_norm", "clip_by_value", "remove_clipping", "remove_hooks", "set_clipping",
]

Layers = Union[str, Sequence[str]]


class HookedTrainer(Protocol):
    """What these functions read and write on a trainer (``StepByStep`` has all of it)."""

    model: nn.Module
    visualization: Dict[str, Optional[np.ndarray]]
    handles: Dict[str, Any]
    _gradients: Dict[str, Dict[str, list]]
    _parameters: Dict[str, Dict[str, list]]
    clipping: Optional[Callable[[], Any]]
    _backprop_clip_handles: List[Any]
    train_step: Callable

    def _make_train_step(self) -> Callable: ...


def _names(layers: Layers) -> List[str]:
    return [layers] if isinstance(layers, str) else list(layers)


# -- recording ----------------------------------------------------------------------------------


def attach_hooks(trainer: HookedTrainer, layers_to_hook: Layers, hook_fn: Optional[Callable] = None) -> None:
    """Records the outputs of the named layers in ``trainer.visualization`` on every forward pass
    (replacing the layers recorded before); ``hook_fn`` replaces the recorder."""
    for old in trainer.visualization:
        handle = trainer.handles.pop(old, None)
        if handle is not None:
            handle.remove()
    names = _names(layers_to_hook)
    recorder = OutputRecorder()
    recorder.outputs = trainer.visualization = {name: None for name in names}
    if hook_fn is None:
        hook_fn = recorder.hook_for({m: n for n, m in trainer.model.named_modules()})
    trainer.handles.update(register_forward_hooks(trainer.model, names, hook_fn))


def remove_hooks(trainer: HookedTrainer) -> None:
    """Removes every hook in ``trainer.handles`` (outputs, gradients, parameters)."""
    for handle in trainer.handles.values():
        handle.remove()
    trainer.handles = {}


def capture_gradients(trainer: HookedTrainer, layers_to_hook: Layers) -> None:
    """Appends every gradient of the named layers' trainable parameters, as nested lists, to
    ``trainer._gradients[layer][parameter]``.

    Raises:
        ValueError: a name is not a layer of the model (the layers before it stay hooked).
    """
    names = _names(layers_to_hook)
    modules = dict(trainer.model.named_modules())
    trainer._gradients = {}
    for name in names:
        if name not in modules:
            raise SquareseqError(f"no layer named {name!r}")
        trainer._gradients[name] = {}
        for parm_id, p in modules[name].named_parameters():
            if p.requires_grad:
                log = trainer._gradients[name].setdefault(parm_id, [])
                trainer.handles[f"{name}.{parm_id}.grad"] = p.register_hook(
                    lambda grad, log=log: log.append(grad.tolist())
                )


def capture_parameters(trainer: HookedTrainer, layers_to_hook: Layers) -> None:
    """Appends the named layers' parameters, as nested lists, to
    ``trainer._parameters[layer][parameter]`` on every forward pass.

    Raises:
        ValueError: a name is not a layer of the model (then no hook is registered).
    """
    names = _names(layers_to_hook)
    layer_names = {m: n for n, m in trainer.model.named_modules()}
    trainer._parameters = {}

    def hook(layer: nn.Module, inputs: Any, outputs: Any) -> None:
        for parm_id, p in layer.named_parameters():
            trainer._parameters[layer_names[layer]][parm_id].append(p.tolist())

    for name in names:
        modules = dict(trainer.model.named_modules())
        if name not in modules:
            raise SquareseqError(f"no layer named {name!r}")
        trainer._parameters[name] = {parm_id: [] for parm_id, _ in modules[name].named_parameters()}
    trainer.handles.update(register_forward_hooks(trainer.model, names, hook))


# -- gradient clipping (one mode at a time) -----------------------------------------------------


def set_clipping(trainer: HookedTrainer, clip: Optional[Callable[[], Any]]) -> None:
    """Makes ``clip`` (called after each backward pass, or None) the only clipping mode and
    rebuilds the training step around it."""
    remove_clipping(trainer)
    trainer.clipping = clip
    trainer.train_step = trainer._make_train_step()


def clip_by_value(trainer: HookedTrainer, clip_value: float) -> Callable[[], Any]:
    """Clipping of each gradient value to ``[-clip_value, clip_value]`` after backward."""
    return lambda: nn.utils.clip_grad_value_(trainer.model.parameters(), clip_value=clip_value)


def clip_by_norm(trainer: HookedTrainer, max_norm: float, norm_type: float = 2) -> Callable[[], Any]:
    """Rescaling of all gradients together to a norm of at most ``max_norm`` after backward."""
    return lambda: nn.utils.clip_grad_norm_(trainer.model.parameters(), max_norm=max_norm, norm_type=norm_type)


def clamp_in_backprop(trainer: HookedTrainer, clip_value: float) -> None:
    """Clamps gradients during backpropagation, with a hook on every trainable parameter
    (after removing any other clipping mode)."""
    set_clipping(trainer, None)
    for p in trainer.model.parameters():
        if p.requires_grad:
            handle = p.register_hook(lambda grad: torch.clamp(grad, -clip_value, clip_value))
            trainer._backprop_clip_handles.append(handle)


def remove_clipping(trainer: HookedTrainer) -> None:
    """Removes every clipping mode: clamping hooks and after-backward clipping."""
    for handle in trainer._backprop_clip_handles:
        handle.remove()
    trainer._backprop_clip_handles = []
    if trainer.clipping is not None:
        trainer.clipping = None
        trainer.train_step = trainer._make_train_step()
