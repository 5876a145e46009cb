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


# -- what callers rely on: batch counts at the edges, defaults, refusals with their messages -------


@pytest.mark.parametrize("n,batch_size,drop_last,expected", [
    (32, 8, False, [8, 8, 8, 8]),  # N divisible by the batch size: no extra, empty batch
    (32, 8, True, [8, 8, 8, 8]),
    (33, 8, False, [8, 8, 8, 8, 1]),
    (33, 8, True, [8, 8, 8, 8]),
    (7, 8, False, [7]),
    (7, 8, True, []),
    (0, 3, False, []),
])
def test_fastloader_batch_count_at_the_edges(n, batch_size, drop_last, expected):
    """len(loader) is the number of batches a pass yields, whether or not N divides by B."""
    x, y = _tensors(n)
    for shuffle in ((False, True) if n else (False,)):
        fl = FastLoader(x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
        sizes = [len(b[0]) for b in fl]
        assert sizes == expected and len(fl) == len(expected) and fl.n_samples == n
        assert len(fl) == len(DataLoader(TensorDataset(x, y), batch_size=batch_size, drop_last=drop_last))


def test_fastloader_defaults():
    """Defaults as DataLoader's: one sample per batch, in order, the last batch kept."""
    x, y = _tensors(3)
    fl = FastLoader(x, y)
    assert (fl.batch_size, fl.shuffle, fl.drop_last, fl.generator) == (1, False, False, None)
    batches = list(fl)
    assert len(batches) == 3 and all(torch.equal(b[0], x[i:i + 1]) for i, b in enumerate(batches))
    x, y = _tensors(5)
    assert [len(b[0]) for b in FastLoader(x, y, batch_size=2)] == [2, 2, 1]


def test_fastloader_unshuffled_yields_the_tensors_in_order():
    x, y = _tensors(10)
    batches = list(FastLoader(x, y, batch_size=4))
    assert torch.equal(torch.cat([b[0] for b in batches]), x) and torch.equal(torch.cat([b[1] for b in batches]), y)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(batch_size=0), "batch_size must be a positive int, got 0"),
        (dict(batch_size=True), "batch_size must be a positive int, got True"),
        (dict(batch_size=2.0), "batch_size must be a positive int, got 2.0"),
        (dict(batch_size=2, y=torch.zeros(3)), "all tensors need the same first dimension, got [5, 3]"),
        (dict(batch_size=2, extra=(torch.zeros(4),)), "all tensors need the same first dimension, got [5, 5, 4]"),
        (dict(batch_size=2, x=[[1.0]] * 5), "FastLoader takes tensors, got list: convert it with torch.as_tensor"),
        (dict(batch_size=2, extra=(None,)), "FastLoader takes tensors, got NoneType: convert it with torch.as_tensor"),
        (dict(batch_size=2, shuffle=True, x=torch.zeros(0, 2), y=torch.zeros(0)),
         "cannot shuffle an empty dataset: give it at least one sample"),
    ],
)
def test_fastloader_refusals_say_what_is_wrong(kwargs, message):
    from squareseq.errors import DataError

    args = {"x": torch.zeros(5, 2), "y": torch.zeros(5), **kwargs}
    with pytest.raises(DataError) as info:
        FastLoader(**args)
    assert str(info.value) == message


def test_from_dataloader_keeps_samplers_it_cannot_replay():
    """A random sampler over another dataset, or drawing from another generator than the
    loader's, keeps its DataLoader."""
    x, y = _tensors()
    ds = TensorDataset(x, y)
    g = torch.Generator().manual_seed(0)
    assert FastLoader.from_dataloader(
        DataLoader(ds, batch_size=4, sampler=torch.utils.data.RandomSampler(TensorDataset(x[:5], y[:5])))) is None
    assert FastLoader.from_dataloader(
        DataLoader(ds, batch_size=4, sampler=torch.utils.data.RandomSampler(ds, generator=g))) is None
    fl = FastLoader.from_dataloader(DataLoader(ds, batch_size=4, sampler=torch.utils.data.RandomSampler(ds)))
    assert fl is not None and fl.shuffle and fl.generator is None
    fl = FastLoader.from_dataloader(DataLoader(ds, batch_size=4, sampler=SequentialSampler(ds)))
    assert fl is not None and not fl.shuffle


# -- PackedLoader, SequenceDataset and the loader factories -----------------------------------------


def _sequences():
    return [torch.ones(3, 2), 2 * torch.ones(1, 2), 3 * torch.ones(2, 2)], [1, 0, 1]


def test_packed_loader_defaults_and_batches():
    """16 sequences per batch, in order, the last one smaller; labels (N, 1) float32 by default."""
    from squareseq.data.loaders import PackedLoader

    points = [torch.full((1 + i % 3, 2), float(i)) for i in range(20)]
    loader = PackedLoader.from_sequences(points, [i % 2 for i in range(20)])
    assert (loader.batch_size, loader.shuffle, loader.generator) == (16, False, None)
    batches = list(loader)
    assert len(loader) == 2 and [len(y) for _, y in batches] == [16, 4]
    packed, y = batches[1]
    assert y.dtype == torch.float32 and y.shape == (4, 1) and y.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    unpacked, lengths = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)
    assert lengths.tolist() == [2, 3, 1, 2] and unpacked.shape == (4, 3, 2)
    assert unpacked[:, 0, 0].tolist() == [16.0, 17.0, 18.0, 19.0]


@pytest.mark.parametrize("n,batch_size,expected", [(8, 4, 2), (9, 4, 3), (3, 4, 1), (4, 1, 4)])
def test_packed_loader_len_is_the_batch_count(n, batch_size, expected):
    from squareseq.data.loaders import PackedLoader

    x = torch.ones(n, 2, 1)
    loader = PackedLoader(x, None, torch.zeros(n), batch_size=batch_size)
    assert len(loader) == expected == len(list(loader))


def test_packed_loader_without_lengths_uses_every_step():
    from squareseq.data.loaders import PackedLoader

    x = torch.arange(12.0).reshape(2, 3, 2)
    (packed, y), = list(PackedLoader(x, None, torch.tensor([0, 1])))
    assert packed.batch_sizes.tolist() == [2, 2, 2] and torch.equal(y, torch.tensor([0, 1]))
    unpacked, lengths = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)
    assert torch.equal(unpacked, x) and lengths.tolist() == [3, 3]


@pytest.mark.parametrize(
    "args,message",
    [
        ((torch.zeros(3, 2), None, torch.zeros(3)), "x must have shape (N, L, F), got (3, 2)"),
        ((torch.zeros(3, 2, 1), torch.tensor([1, 2]), torch.zeros(3)),
         "x, lengths and y must have the same first dimension, got 3, (2,) and 3"),
        ((torch.zeros(3, 2, 1), None, torch.zeros(2)),
         "x, lengths and y must have the same first dimension, got 3, (3,) and 2"),
    ],
)
def test_packed_loader_refusals(args, message):
    from squareseq.data.loaders import PackedLoader
    from squareseq.errors import DataError

    with pytest.raises(DataError) as info:
        PackedLoader(*args)
    assert str(info.value) == message
    with pytest.raises(DataError) as info:
        PackedLoader(torch.zeros(3, 2, 1), None, torch.zeros(3), batch_size=0)
    assert str(info.value) == "batch_size must be >= 1, got 0"


def test_sequence_dataset_items_and_label_forms():
    from squareseq.data.loaders import SequenceDataset
    from squareseq.errors import DataError

    points, labels = _sequences()
    ds = SequenceDataset(points, labels)
    assert len(ds) == 3
    x, y = ds[2]
    assert torch.equal(x, points[2]) and y.dtype == torch.float32 and y.tolist() == [1.0]
    x, y = SequenceDataset(points, labels, float_labels=False)[1]
    assert y.dtype == torch.int64 and y.shape == () and int(y) == 0
    with pytest.raises(DataError) as info:
        SequenceDataset(points, labels[:2])
    assert str(info.value) == "got 3 sequences but 2 labels"


def test_make_variable_length_loader_defaults():
    """fast=True: a PackedLoader of 16 per batch, unshuffled, float labels; fast=False the
    DataLoader with the same settings."""
    from squareseq.data.loaders import PackedLoader, make_variable_length_loader

    points, labels = _sequences()
    fast = make_variable_length_loader(points, labels)
    assert isinstance(fast, PackedLoader) and (fast.batch_size, fast.shuffle) == (16, False)
    assert fast.y.dtype == torch.float32
    slow = make_variable_length_loader(points, labels, fast=False)
    assert isinstance(slow, DataLoader) and slow.batch_size == 16
    assert isinstance(slow.sampler, SequentialSampler) and slow.dataset.labels.dtype == torch.float32
    (pf, yf), = list(fast)
    (ps, ys), = list(slow)
    assert torch.equal(pf.data, ps.data) and torch.equal(yf, ys)
    ints = make_variable_length_loader(points, labels, batch_size=2, shuffle=True, float_labels=False, fast=False)
    assert ints.batch_size == 2 and not isinstance(ints.sampler, SequentialSampler)
    assert ints.dataset.labels.dtype == torch.int64
    fast = make_variable_length_loader(points, labels, batch_size=2, shuffle=True, float_labels=False)
    assert (fast.batch_size, fast.shuffle, fast.y.dtype) == (2, True, torch.int64)


def test_make_loader_picks_the_loader():
    """Without lengths the tutorial's DataLoader (16 per batch, unshuffled); with them a PackedLoader."""
    from squareseq.data.loaders import PackedLoader, make_loader

    x, y = _tensors(20)
    dl = make_loader(x, y)
    assert isinstance(dl, DataLoader) and dl.batch_size == 16 and isinstance(dl.sampler, SequentialSampler)
    assert torch.equal(dl.dataset.tensors[0], x)
    dl = make_loader(x, y, batch_size=4, shuffle=True)
    assert dl.batch_size == 4 and not isinstance(dl.sampler, SequentialSampler)
    lengths = torch.full((20,), 4, dtype=torch.int64)
    pl = make_loader(x, y, lengths)
    assert isinstance(pl, PackedLoader) and (pl.batch_size, pl.shuffle) == (16, False)
    assert torch.equal(pl.lengths, lengths)
    pl = make_loader(x, y, lengths, batch_size=3, shuffle=True)
    assert (pl.batch_size, pl.shuffle) == (3, True)


def test_collate_packed_packs_in_order():
    from squareseq.data.loaders import collate_packed

    points, labels = _sequences()
    packed, y = collate_packed(list(zip(points, torch.tensor(labels))))
    assert y.tolist() == labels
    unpacked, lengths = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)
    assert lengths.tolist() == [3, 1, 2] and unpacked[:, 0, 0].tolist() == [1.0, 2.0, 3.0]


def test_dataloader_pass_defaults_to_in_order_with_the_last_batch():
    """dataloader_pass(n, B): unshuffled, the last partial batch kept, as DataLoader's defaults."""
    from squareseq.data.loaders import dataloader_pass

    torch.manual_seed(0)
    batches = list(dataloader_pass(7, 3))
    assert batches == [(None, slice(0, 3)), (None, slice(3, 6)), (None, slice(6, 7))]
    assert [rows for _, rows in dataloader_pass(7, 3, drop_last=True)] == [slice(0, 3), slice(3, 6)]


def test_packed_loader_constructor_defaults_and_length_forms():
    """PackedLoader(x, lengths, y): 16 per batch, unshuffled; lengths may be any integer sequence."""
    from squareseq.data.loaders import PackedLoader

    x = torch.arange(40.0).reshape(20, 2, 1)
    loader = PackedLoader(x, [1, 2] * 10, torch.arange(20))
    assert (loader.batch_size, loader.shuffle, loader.generator) == (16, False, None)
    assert loader.lengths.dtype == torch.int64 and loader.lengths.tolist() == [1, 2] * 10
    batches = list(loader)
    assert [y.tolist() for _, y in batches] == [list(range(16)), list(range(16, 20))]
    unpacked, lengths = torch.nn.utils.rnn.pad_packed_sequence(batches[1][0], batch_first=True)
    assert lengths.tolist() == [1, 2, 1, 2] and unpacked[:, 0, 0].tolist() == [32.0, 34.0, 36.0, 38.0]
    loader = PackedLoader(x, torch.full((20,), 2, dtype=torch.int32), torch.arange(20))
    assert loader.lengths.dtype == torch.int64
