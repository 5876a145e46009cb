"""Loaders (FastLoader, PackedLoader): the same batches and the same random draws as DataLoader."""
import pytest
import torch
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset

from squareseq.data.loaders import FastLoader

pytestmark = pytest.mark.exact  # bit-for-bit comparisons: CI runs them again on portable kernels


def _tensors(n=37):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 4, 2, generator=g), torch.randint(0, 2, (n, 1), generator=g).float()


def _epochs(loader, n_epochs=3, draw_between=True):
    """Batches of several passes, with a global draw after each pass (it must match too)."""
    out = []
    for _ in range(n_epochs):
        out.append([[t.clone() for t in batch] for batch in loader])
        if draw_between:
            out.append([[torch.rand(3)]])
    return out


def _assert_same(a, b):
    assert len(a) == len(b)
    for ea, eb in zip(a, b):
        assert len(ea) == len(eb)
        for ba, bb in zip(ea, eb):
            assert len(ba) == len(bb)
            for ta, tb in zip(ba, bb):
                assert ta.dtype == tb.dtype and ta.shape == tb.shape
                assert torch.equal(ta, tb)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size,drop_last", [(16, False), (16, True), (5, False), (64, False), (1, True)])
def test_same_batches_and_rng_as_dataloader(shuffle, batch_size, drop_last):
    """Batches, their count and the global generator's state after each pass equal DataLoader's."""
    x, y = _tensors()
    dl = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    fl = FastLoader(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    assert len(fl) == len(dl)
    torch.manual_seed(7)
    expected = _epochs(dl)
    state = torch.get_rng_state()
    torch.manual_seed(7)
    got = _epochs(fl)
    _assert_same(got, expected)
    assert torch.equal(torch.get_rng_state(), state)


def test_draw_order_between_iter_and_next():
    """The base seed is drawn at iter(), the shuffle seed at the first next(), as DataLoader does."""
    x, y = _tensors()
    results = []
    for loader in (DataLoader(TensorDataset(x, y), batch_size=8, shuffle=True),
                   FastLoader(x, y, batch_size=8, shuffle=True)):
        torch.manual_seed(3)
        it = iter(loader)
        between = torch.rand(2)  # a draw between iter() and next() moves the shuffle
        first = next(it)
        results.append((between, first))
    assert torch.equal(results[0][0], results[1][0])
    assert torch.equal(results[0][1][0], results[1][1][0])


@pytest.mark.parametrize("shuffle", [True, False])
def test_explicit_generator(shuffle):
    """With a loader's own generator, draws come from it and the global generator is untouched."""
    x, y = _tensors()
    dl = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=shuffle, generator=torch.Generator().manual_seed(5))
    fl = FastLoader.from_dataloader(
        DataLoader(TensorDataset(x, y), batch_size=6, shuffle=shuffle, generator=torch.Generator().manual_seed(5))
    )
    assert fl is not None
    torch.manual_seed(0)
    expected = _epochs(dl)
    torch.manual_seed(0)
    got = _epochs(fl)
    _assert_same(got, expected)


def test_extra_tensors_are_sliced_alongside():
    """Extra tensors (such as lengths) come after x and y, shuffled with them."""
    x, y = _tensors()
    lengths = torch.arange(len(x))
    dl = DataLoader(TensorDataset(x, y, lengths), batch_size=10, shuffle=True)
    fl = FastLoader.from_dataloader(dl)
    assert fl is not None and len(fl.tensors) == 3
    torch.manual_seed(2)
    expected = _epochs(dl)
    torch.manual_seed(2)
    got = _epochs(fl)
    _assert_same(got, expected)
    for batch in got[0]:
        assert torch.equal(batch[0], x[batch[2]])


def test_from_dataloader_accepts_plain_loaders():
    """A plain DataLoader over a TensorDataset, shuffled or not, converts."""
    x, y = _tensors()
    fl = FastLoader.from_dataloader(DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True))
    assert fl is not None and fl.shuffle and fl.batch_size == 16 and not fl.drop_last
    fl = FastLoader.from_dataloader(DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True))
    assert fl is not None and not fl.shuffle and fl.drop_last


def test_from_dataloader_keeps_other_loaders():
    """Custom collate, samplers, workers, datasets or replacement sampling are not converted."""
    x, y = _tensors()
    ds = TensorDataset(x, y)
    others = [
        DataLoader(ds, batch_size=4, collate_fn=lambda b: b),
        DataLoader(ds, batch_size=4, num_workers=1),
        DataLoader(ds, batch_size=None),
        DataLoader(ds, sampler=SequentialSampler(range(5)), batch_size=4),
        DataLoader(ds, batch_size=4, sampler=torch.utils.data.RandomSampler(ds, replacement=True)),
        DataLoader(ds, batch_size=4, sampler=torch.utils.data.RandomSampler(ds, num_samples=10)),
        DataLoader(list(zip(x, y)), batch_size=4),
        DataLoader(TensorDataset(x), batch_size=4),
        [(x, y)],
    ]
    for loader in others:
        assert FastLoader.from_dataloader(loader) is None


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=2, y=torch.zeros(3)), "first dimension"),
        (dict(batch_size=2, x=[[1.0]] * 5), "tensors"),
    ],
)
def test_bad_input(kwargs, match):
    """Bad arguments raise a one-line ValueError naming the problem."""
    x, y = torch.zeros(5, 2), torch.zeros(5)
    args = {"x": x, "y": y, **kwargs}
    with pytest.raises(ValueError, match=match):
        FastLoader(**args)


# -- every loader against DataLoader: batches and random draws, epoch after epoch -------------


def _loader_pair(kind, variable, shuffle, explicit, batch_size):
    """``(ours, DataLoader)`` over the same 32 sequences; with ``explicit``, each gets its own
    generator, seeded alike."""
    from squareseq.data.loaders import PackedLoader, SequenceDataset, collate_packed
    from squareseq.data.squares import make_sequences, to_tensors

    def generator():
        return torch.Generator().manual_seed(11) if explicit else None

    points, labels = make_sequences(32, variable_len=variable, seed=3)
    if kind == "fast":
        x, y, lengths = to_tensors(points, labels)
        extra = () if lengths is None else (lengths,)
        ours = FastLoader(x, y, batch_size=batch_size, shuffle=shuffle, generator=generator(), extra=extra)
        theirs = DataLoader(TensorDataset(x, y, *extra), batch_size=batch_size, shuffle=shuffle,
                            generator=generator())
    else:
        ours = PackedLoader.from_sequences(points, labels, batch_size=batch_size, shuffle=shuffle,
                                           generator=generator())
        theirs = DataLoader(SequenceDataset(points, labels), batch_size=batch_size, shuffle=shuffle,
                            collate_fn=collate_packed, generator=generator())
    return ours, theirs


def _flat(batch):
    """A batch's tensors, a PackedSequence's (data, batch_sizes, indices) spelled out."""
    out = []
    for item in batch:
        out.extend(item if isinstance(item, torch.nn.utils.rnn.PackedSequence) else [item])
    return [t.clone() if t is not None else None for t in out]


def _trace(loader, n_epochs=3):
    """Everything a training loop can observe, epoch by epoch: each batch, followed by a draw from
    the global generator and one from the loader's own (so the exact moment of every draw
    matters); the generators' states after each pass; then a pass broken off after its first
    batch (with a global draw between ``iter()`` and ``next()``), and the states after it."""
    own = loader.generator

    def states():
        return [torch.get_rng_state(), None if own is None else own.get_state()]

    trace = []
    for _ in range(n_epochs):
        for batch in loader:
            trace.append(_flat(batch) + [torch.rand(1)] + ([] if own is None else [torch.rand(1, generator=own)]))
        trace.append(states())
        it = iter(loader)
        trace.append([torch.rand(1)])  # a draw between iter() and next(): when is the base seed drawn?
        trace.append(_flat(next(it)))
        del it
        trace.append(states())
    return trace


@pytest.mark.parametrize("kind", ["fast", "packed"])
@pytest.mark.parametrize("variable", [False, True], ids=["fixed", "variable"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "ordered"])
@pytest.mark.parametrize("explicit", [False, True], ids=["global", "generator"])
@pytest.mark.parametrize("batch_size", [8, 5], ids=["full-last", "partial-last"])
def test_every_loader_draws_like_dataloader(kind, variable, shuffle, explicit, batch_size):
    """FastLoader (vs DataLoader(TensorDataset)) and PackedLoader (vs DataLoader(SequenceDataset,
    collate_fn=collate_packed)) yield the same batches and leave the global generator and the
    loader's own generator in the same states, after every epoch and after a pass broken off
    early, for fixed and variable lengths, shuffled or not, with or without a generator."""
    ours, theirs = _loader_pair(kind, variable, shuffle, explicit, batch_size)
    assert len(ours) == len(theirs)
    torch.manual_seed(7)
    expected = _trace(theirs)
    torch.manual_seed(7)
    got = _trace(ours)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert len(a) == len(b)
        for ta, tb in zip(a, b):
            if ta is None or tb is None:
                assert ta is None and tb is None
            else:
                assert ta.dtype == tb.dtype and ta.shape == tb.shape and torch.equal(ta, tb)
