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
