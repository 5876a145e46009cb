"""Adam over one flat parameter buffer, bit-identical to ``torch.optim.Adam``'s default path.

``torch.optim.Adam`` on CPU updates each parameter tensor with its own handful of kernels and
pays the ``Optimizer`` machinery on every step: for a model of five tiny tensors that costs more
than the model's forward pass. :class:`FlatAdam` moves the parameters (and their gradients) into
one flat buffer, with each tensor a view of it, and runs the same arithmetic as torch's
single-tensor Adam once over the whole buffer:

    step += 1
    exp_avg.lerp_(grad, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    step_size = lr / (1 - beta1 ** step)                      # Python floats, as torch does
    denom = (exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)

Each of these kernels computes every element on its own, so one call over the buffer gives the
same bits as one call per tensor. As a precaution (torch's CPU kernels run a tensor's vectorised
body and its scalar tail through different code, and BLAS kernels may look at alignment), every
tensor starts at a multiple of :data:`ALIGN` elements of the buffer; the padding stays zero. The test suite checks bit
equality with ``torch.optim.Adam`` over hundreds of steps; :meth:`FlatAdam.verify` lets a
caller check it on the running machine.

Only the default configuration is supported (``weight_decay=0``, ``amsgrad=False``,
``maximize=False``, float lr and betas, no ``foreach``/``fused``/``capturable``):
:func:`flat_adam_from` returns None for anything else, so callers keep torch's optimizer.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Protocol

import torch

from squareseq.errors import SquareseqError

__all__ = ["ALIGN", "FlatAdam", "OptimizerLike", "flat_adam_from"]

#: The settings of a default ``torch.optim.Adam`` parameter group (as its ``state_dict`` lists them).
_ADAM_GROUP = {"weight_decay": 0, "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
               "differentiable": False, "fused": None, "decoupled_weight_decay": False}

#: Elements each tensor's segment is aligned to: a multiple of the widest CPU kernel's unrolled
#: vector (2 x 16 floats with AVX-512), so each tensor is cut into vector chunks as on its own.
ALIGN = 64


class OptimizerLike(Protocol):
    """What training and checkpoints use of an optimizer: a ``torch.optim.Optimizer`` has it, and so
    does :class:`FlatAdam`, which stands in for ``torch.optim.Adam`` without subclassing it."""

    @property
    def param_groups(self) -> List[Dict[str, Any]]: ...

    def step(self) -> Any: ...

    def zero_grad(self, set_to_none: bool = True) -> None: ...

    def state_dict(self) -> Dict[str, Any]: ...

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None: ...


class FlatAdam:
    """Adam over one flat buffer holding ``params`` (their ``.data`` become views of it).

    Args:
        params: the tensors to optimise (float32, on one device, requiring grad).
        lr: learning rate.
        betas: the running averages' coefficients.
        eps: added to the denominator.
        param_group: a ``torch.optim`` parameter group to read ``lr``, ``betas`` and ``eps``
            from at every step instead (so learning-rate schedulers keep working).

    After construction, ``param.grad`` of every parameter is a view of :attr:`flat_grad`;
    :meth:`zero_grad` zeroes it in one call (autograd then accumulates into it in place).

    It can also stand in for ``torch.optim.Adam`` itself: it has ``param_groups``, ``step``,
    ``zero_grad``, and ``state_dict``/``load_state_dict`` in ``torch.optim.Adam``'s format (so
    checkpoints load into either). Building a ``torch.optim`` optimizer imports
    ``torch._dynamo`` (over a second per process), building a ``FlatAdam`` does not. It is not a
    ``torch.optim.Optimizer`` subclass, so torch's learning-rate schedulers refuse it: use
    ``torch.optim.Adam`` (which ``StepByStep`` runs through a ``FlatAdam`` anyway) with those.
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3,
                 betas: "tuple[float, float]" = (0.9, 0.999), eps: float = 1e-8,
                 param_group: Optional[Dict] = None):
        self.source: Optional[torch.optim.Optimizer] = None  # the torch optimizer it stands in for
        self.params: List[torch.Tensor] = list(params)
        if not self.params:
            raise SquareseqError("FlatAdam needs at least one parameter")
        if param_group is None:
            param_group = {"lr": float(lr), "betas": (float(betas[0]), float(betas[1])), "eps": float(eps),
                           **_ADAM_GROUP, "params": self.params}
        self.param_group = param_group
        self.param_groups = [param_group]
        dtypes = {p.dtype for p in self.params}
        devices = {p.device for p in self.params}
        if len(dtypes) != 1 or len(devices) != 1:
            raise SquareseqError(f"FlatAdam needs parameters of one dtype and device, got {dtypes} on {devices}")
        self.lr, self.betas, self.eps = float(lr), (float(betas[0]), float(betas[1])), float(eps)
        self.step_count = 0
        self.offsets: List[int] = []
        total = 0
        for p in self.params:
            self.offsets.append(total)
            total += -(-p.numel() // ALIGN) * ALIGN
        dtype, device = dtypes.pop(), devices.pop()
        self.flat = torch.zeros(total, dtype=dtype, device=device)
        self.flat_grad = torch.zeros_like(self.flat)
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self._grad_views: List[torch.Tensor] = []
        self._own_data: List[torch.Tensor] = [p.data for p in self.params]
        with torch.no_grad():
            for p, offset in zip(self.params, self.offsets):
                view = self._view(self.flat, p, offset)
                view.copy_(p)
                p.data = view
                grad_view = self._view(self.flat_grad, p, offset)
                if p.grad is not None:
                    grad_view.copy_(p.grad)
                p.grad = grad_view
                self._grad_views.append(grad_view)

    @property
    def grad_views(self) -> List[torch.Tensor]:
        """Each parameter's gradient as a view of :attr:`flat_grad`, in ``params`` order."""
        return self._grad_views

    @staticmethod
    def _view(buffer: torch.Tensor, p: torch.Tensor, offset: int) -> torch.Tensor:
        return buffer[offset:offset + p.numel()].view(p.shape)

    def _gather_grads(self) -> None:
        """Brings gradients that are no longer views of the buffer (someone set ``.grad``,
        for instance ``zero_grad(set_to_none=True)``) back into it."""
        for p, view in zip(self.params, self._grad_views):
            if p.grad is not view:
                if p.grad is None:
                    view.zero_()
                else:
                    view.copy_(p.grad)
                p.grad = view

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zeroes the gradients (in place, whatever ``set_to_none`` says: they stay views)."""
        self.flat_grad.zero_()

    def step(self, closure=None):
        """One Adam step over the whole buffer (``closure`` as in ``torch.optim``)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._step()
        return loss

    @torch.no_grad()
    def _step(self) -> None:
        for p, view in zip(self.params, self._grad_views):
            if p.grad is not view:
                self._gather_grads()
                break
        group = self.param_group
        self.lr, self.betas, self.eps = float(group["lr"]), tuple(group["betas"]), float(group["eps"])
        if self.step_count == 0 and self.source is not None:
            # what torch's patched Optimizer.step records, so LR schedulers do not warn that
            # they stepped before the optimizer
            self.source._opt_called = True  # type: ignore[attr-defined]
        beta1, beta2 = self.betas
        self.step_count += 1
        step = float(self.step_count)
        grad = self.flat_grad
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = self.lr / bias_correction1
        bias_correction2_sqrt = bias_correction2 ** 0.5
        denom = (self.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-step_size)

    # -- exchanging state with torch.optim.Adam ------------------------------------------------
    def load_from(self, optimizer: torch.optim.Optimizer) -> None:
        """Takes the step count and running averages from a ``torch.optim.Adam`` over the same
        parameters (missing state means a fresh optimizer)."""
        self._load_states([optimizer.state.get(p) for p in self.params], "the optimizer's")

    def store_to(self, optimizer: torch.optim.Optimizer) -> None:
        """Writes the step count and running averages into a ``torch.optim.Adam``'s state, so
        its ``state_dict()`` and later ``step()`` calls continue from here."""
        if self.step_count == 0:
            return
        for p, offset in zip(self.params, self.offsets):
            state = optimizer.state[p]
            step = state.get("step")
            if isinstance(step, torch.Tensor):
                step.fill_(float(self.step_count))
            else:
                state["step"] = torch.tensor(float(self.step_count), dtype=torch.float32)
            for key, source in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                view = self._view(source, p, offset)
                if key in state:
                    state[key].copy_(view)
                else:
                    state[key] = view.clone(memory_format=torch.preserve_format)

    def state_dict(self) -> Dict:
        """The state in ``torch.optim.Adam.state_dict()``'s format."""
        state = {}
        if self.step_count:
            for i, (p, offset) in enumerate(zip(self.params, self.offsets)):
                state[i] = {
                    "step": torch.tensor(float(self.step_count)),
                    "exp_avg": self._view(self.exp_avg, p, offset).clone(),
                    "exp_avg_sq": self._view(self.exp_avg_sq, p, offset).clone(),
                }
        group = {k: v for k, v in self.param_group.items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}

    @torch.no_grad()
    def load_state_dict(self, state_dict: Dict) -> None:
        """Loads a state saved by :meth:`state_dict` or by a ``torch.optim.Adam`` over the same
        parameters."""
        groups = state_dict["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise SquareseqError("the saved optimizer state does not fit: it holds a different set of parameters")
        group = groups[0]
        if group.get("weight_decay", 0) or group.get("amsgrad") or group.get("maximize"):
            raise SquareseqError("the saved optimizer used Adam options FlatAdam does not support "
                             "(weight_decay, amsgrad or maximize): load it into torch.optim.Adam")
        for key in ("lr", "betas", "eps"):
            self.param_group[key] = group[key]
        saved = state_dict["state"]
        self._load_states([saved.get(i) or saved.get(str(i)) for i in range(len(self.params))],
                          "the saved optimizer's")

    @torch.no_grad()
    def _load_states(self, states: List[Optional[Dict]], whose: str) -> None:
        """Takes the step count and running averages from torch-Adam-style per-parameter states
        (a missing one means a fresh parameter); all parameters must be at the same step."""
        steps = set()
        for p, offset, state in zip(self.params, self.offsets, states):
            exp_avg, exp_avg_sq = self._view(self.exp_avg, p, offset), self._view(self.exp_avg_sq, p, offset)
            if state:
                steps.add(int(state["step"]))
                exp_avg.copy_(state["exp_avg"])
                exp_avg_sq.copy_(state["exp_avg_sq"])
            else:
                steps.add(0)
                exp_avg.zero_()
                exp_avg_sq.zero_()
        if len(steps) != 1:
            raise SquareseqError(f"{whose} parameters are at different steps {sorted(steps)}")
        self.step_count = steps.pop()

    @torch.no_grad()
    def close(self, keep_grads: bool = False) -> None:
        """Moves the parameters back into their own tensors (with the new values), so the model
        is laid out as before; gradients become None unless ``keep_grads`` (then copies)."""
        for p, own, view in zip(self.params, self._own_data, self._grad_views):
            grad = p.grad
            own.copy_(p.data)
            p.data = own
            if grad is view:
                p.grad = view.clone() if keep_grads else None


def flat_adam_from(optimizer: torch.optim.Optimizer) -> Optional[FlatAdam]:
    """A :class:`FlatAdam` that continues ``optimizer`` exactly, or None when ``optimizer`` is not
    a default-configured ``torch.optim.Adam`` with one parameter group of float32 tensors on one
    device (the cases torch runs through its single-tensor path)."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return None
    group: Dict = optimizer.param_groups[0]
    lr, betas = group["lr"], group["betas"]
    if isinstance(lr, torch.Tensor) or any(isinstance(b, torch.Tensor) for b in betas):
        return None
    if (group["weight_decay"] != 0 or group["amsgrad"] or group["maximize"] or group["foreach"]
            or group.get("fused") or group["capturable"] or group["differentiable"]
            or group.get("decoupled_weight_decay", False)):
        return None
    params = [p for p in group["params"] if p.requires_grad]
    if len(params) != len(group["params"]) or not params:
        return None
    if any(p.dtype != torch.float32 or p.device.type != "cpu" or p.is_sparse for p in params):
        return None
    if any(p.grad is not None and p.grad.is_sparse for p in params):
        return None
    steps = set()
    for p in params:
        state = optimizer.state.get(p)
        if state:
            step = state.get("step")
            if "max_exp_avg_sq" in state or step is None:
                return None
            steps.add(int(step))
    if len(steps) > 1:
        return None
    flat = FlatAdam(params, lr=lr, betas=betas, eps=group["eps"], param_group=group)
    flat.load_from(optimizer)
    flat.source = optimizer
    return flat
