"""FlatAdam: bit-identical to torch.optim.Adam's default (single-tensor) path, state in sync."""
import pytest
import torch

from squareseq.training.optim import FlatAdam, flat_adam_from

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels

SHAPES = [(2, 2), (2, 2), (2,), (2,), (1, 2), (1,), (33,), (32, 32), (5, 7), (1027,)]


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g).requires_grad_() for s in SHAPES]


def _grads(g):
    """Gradients spanning many magnitudes, so every branch of the arithmetic is exercised."""
    return [torch.randn(s, generator=g) * 10.0 ** torch.randint(-6, 3, (1,), generator=g).item() for s in SHAPES]


def _run_pair(n_steps, lr=0.01, betas=(0.9, 0.999), eps=1e-8, scheduler=False):
    ref, flat_params = _params(), _params()
    opt_ref = torch.optim.Adam(ref, lr=lr, betas=betas, eps=eps)
    opt_flat = torch.optim.Adam(flat_params, lr=lr, betas=betas, eps=eps)
    flat = flat_adam_from(opt_flat)
    assert flat is not None
    scheds = []
    if scheduler:
        scheds = [torch.optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5) for o in (opt_ref, opt_flat)]
    g = torch.Generator().manual_seed(1)
    for _ in range(n_steps):
        grads = _grads(g)
        for p, grad in zip(ref, grads):
            p.grad = grad.clone()
        opt_ref.step()
        opt_ref.zero_grad()
        for p, grad in zip(flat_params, grads):
            p.grad += grad  # accumulates into the flat buffer, as autograd does
        flat.step()
        flat.zero_grad()
        for s in scheds:
            s.step()
    return ref, opt_ref, flat_params, opt_flat, flat


@pytest.mark.parametrize("n_steps,lr,betas,eps", [(300, 0.01, (0.9, 0.999), 1e-8), (100, 0.1, (0.5, 0.9), 1e-3)])
def test_bit_identical_to_torch_adam(n_steps, lr, betas, eps):
    """Hundreds of steps with gradients of every magnitude give the same parameters, bit for bit."""
    ref, _, flat_params, _, _ = _run_pair(n_steps, lr, betas, eps)
    for a, b in zip(ref, flat_params):
        assert torch.equal(a, b)


def test_follows_a_learning_rate_scheduler():
    """A scheduler changing the group's lr is honoured at every step."""
    ref, _, flat_params, _, _ = _run_pair(40, scheduler=True)
    for a, b in zip(ref, flat_params):
        assert torch.equal(a, b)


def test_state_round_trip_and_close():
    """store_to fills torch's Adam state; close restores the parameters' own tensors; torch's
    Adam then continues exactly as if it had run all along."""
    ref, opt_ref, flat_params, opt_flat, flat = _run_pair(25)
    own = [p.data for p in _params()]  # shapes only
    flat.store_to(opt_flat)
    flat.close()
    for p, o in zip(flat_params, own):
        assert p.grad is None and p.is_contiguous() and p.shape == o.shape
        assert p.data.untyped_storage().data_ptr() != flat.flat.untyped_storage().data_ptr()
    state_ref, state_flat = opt_ref.state_dict()["state"], opt_flat.state_dict()["state"]
    for i in state_ref:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(state_ref[i][key], state_flat[i][key])
    g = torch.Generator().manual_seed(9)
    for _ in range(5):
        grads = _grads(g)
        for params, opt in ((ref, opt_ref), (flat_params, opt_flat)):
            for p, grad in zip(params, grads):
                p.grad = grad.clone()
            opt.step()
            opt.zero_grad()
    for a, b in zip(ref, flat_params):
        assert torch.equal(a, b)


def test_gradients_replaced_by_user_are_gathered():
    """If a gradient stops being a view of the buffer (set_to_none, reassignment), step uses it."""
    ref, flat_params = _params(), _params()
    opt_ref = torch.optim.Adam(ref, lr=0.01)
    flat = flat_adam_from(torch.optim.Adam(flat_params, lr=0.01))
    grads = _grads(torch.Generator().manual_seed(3))
    for p, q, grad in zip(ref, flat_params, grads):
        p.grad = grad.clone()
        q.grad = grad.clone()
    flat_params[0].grad = None
    ref[0].grad = None
    opt_ref.step()
    flat.step()
    for a, b in zip(ref, flat_params):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    "make",
    [
        lambda ps: torch.optim.SGD(ps, lr=0.1),
        lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.1),
        lambda ps: torch.optim.Adam(ps, lr=0.1, amsgrad=True),
        lambda ps: torch.optim.Adam(ps, lr=0.1, foreach=True),
        lambda ps: torch.optim.Adam(ps, lr=torch.tensor(0.1)),
        lambda ps: torch.optim.Adam([{"params": ps[:1]}, {"params": ps[1:]}], lr=0.1),
        lambda ps: torch.optim.AdamW(ps, lr=0.1),
    ],
)
def test_other_optimizers_are_not_taken_over(make):
    """Anything but a default-configured single-group Adam keeps torch's optimizer."""
    assert flat_adam_from(make(_params())) is None


def test_empty_parameters_rejected():
    """FlatAdam without parameters is a clear error."""
    with pytest.raises(ValueError, match="at least one parameter"):
        FlatAdam([])


def test_standalone_state_dict_matches_torch_adam():
    """Used as the optimizer itself, FlatAdam's state_dict equals torch.optim.Adam's (format
    and values) and loads back into either."""
    ref, flat_params = _params(), _params()
    opt_ref = torch.optim.Adam(ref, lr=0.01)
    flat = FlatAdam(flat_params, lr=0.01)
    assert flat.state_dict() == {"state": {}, "param_groups": opt_ref.state_dict()["param_groups"]}
    g = torch.Generator().manual_seed(4)
    for _ in range(3):
        grads = _grads(g)
        for p, q, grad in zip(ref, flat_params, grads):
            p.grad = grad.clone()
            q.grad += grad
        opt_ref.step()
        opt_ref.zero_grad()
        flat.step()
        flat.zero_grad()
    sd_ref, sd_flat = opt_ref.state_dict(), flat.state_dict()
    assert sd_flat["param_groups"] == sd_ref["param_groups"]
    for i in sd_ref["state"]:
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sd_ref["state"][i][key], sd_flat["state"][i][key])
    other = FlatAdam(_params(), lr=0.5)
    other.load_state_dict(sd_ref)
    assert other.step_count == 3 and other.param_groups[0]["lr"] == 0.01
    again = torch.optim.Adam(_params(), lr=0.5)
    again.load_state_dict(sd_flat)
    assert torch.equal(again.state_dict()["state"][3]["exp_avg"], sd_ref["state"][3]["exp_avg"])
