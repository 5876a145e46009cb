"""squareseq.config.parse_seeds: seed lists as users write them, parsed without torch."""
import subprocess
import sys

import pytest

from squareseq.config import parse_seeds


def test_parse_seeds():
    """Ranges, lists, ints and iterables parse; empty or repeated lists are clear errors."""
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("1,5, 9") == [1, 5, 9]
    assert parse_seeds("0-2,10") == [0, 1, 2, 10]
    assert parse_seeds(7) == [7] and parse_seeds(range(2)) == [0, 1]
    for bad, match in (("", "no seeds"), ("a-b", "bad seed list"), ("1,1", "repeat")):
        with pytest.raises(ValueError, match=match):
            parse_seeds(bad)


def test_seeds_module_needs_no_torch():
    """The CLI parses --seeds before it imports torch: importing seeds.py loads no torch."""
    code = "import sys, squareseq.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_seed_lists_are_counted_before_they_are_built():
    """`sweep --seeds 0-99999999` once built a 4.8 GB list: the count comes from the text and is refused at once."""
    from squareseq.config import MAX_SEEDS

    with pytest.raises(ValueError) as info:
        parse_seeds("0-99999999")
    assert str(info.value) == ("'0-99999999' holds 100,000,000 seeds; a sweep trains at most 65,536 (MAX_SEEDS): "
                               "give fewer seeds")
    with pytest.raises(ValueError, match=r"^'0-65535,70000' holds 65,537 seeds"):
        parse_seeds("0-65535,70000")
    with pytest.raises(ValueError, match=r"^more than 65,536 seeds \(MAX_SEEDS\): give fewer seeds$"):
        parse_seeds(range(10**12))
    assert len(parse_seeds(f"0-{MAX_SEEDS - 1}")) == MAX_SEEDS == 65_536


@pytest.mark.parametrize("spec,seed", [("4294967296", 4294967296), ("4294967290-4294967296", 4294967296),
                                       (2**32, 2**32), ([1, -1], -1)])
def test_sweep_seeds_are_bounded_like_train_seeds(spec, seed):
    """A sweep's seeds are what `train --seed` takes, [0, 2**32) (4294967296 was accepted)."""
    with pytest.raises(ValueError) as info:
        parse_seeds(spec)
    assert str(info.value) == (f"seed {seed} is outside [0, 2**32): give seeds from 0 to 4294967295, as train "
                               "--seed takes them")
    assert parse_seeds("4294967295") == [2**32 - 1]


@pytest.mark.parametrize("spec", ["0,,1", "0,1,", ",5", "0-3,,10"])
def test_an_empty_part_of_a_seed_list_is_refused(spec):
    """'0,,1' is a typo, not the seeds 0 and 1: a sweep must train the seeds that were meant."""
    with pytest.raises(ValueError) as info:
        parse_seeds(spec)
    assert str(info.value) == (f"an empty part in the seed list {spec!r}: separate seeds and ranges with single "
                               "commas, as in '0-3,10'")


def test_epochs_are_bounded():
    """--epochs 10**20 ran until it was killed; a million is the bound, named in the message."""
    from squareseq.config import MAX_EPOCHS, RunConfig
    from squareseq.errors import ConfigError

    assert MAX_EPOCHS == 1_000_000
    RunConfig(epochs=MAX_EPOCHS).validate()
    with pytest.raises(ConfigError) as info:
        RunConfig(epochs=MAX_EPOCHS + 1).validate()
    assert str(info.value) == "epochs must be an integer in [1, 1000000], got 1000001"
