"""Data generation: the tutorial's per-sequence loop vs squareseq's vectorised generator.

Both produce the same arrays bit for bit (checked here too). Prints seconds and the speed-up.
Run: python benchmarks/bench_data.py
"""
import time

import numpy as np

from squareseq.data.squares import generate_sequences


def tutorial_generate_sequences(n=128, variable_len=False, seed=13):
    basic_corners = np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]])
    np.random.seed(seed)
    bases = np.random.randint(4, size=n)
    lengths = np.random.randint(3, size=n) + 2 if variable_len else [4] * n
    directions = np.random.randint(2, size=n)
    points = [basic_corners[[(b + i) % 4 for i in range(4)]][slice(None, None, d * 2 - 1)][:l]
              + np.random.randn(l, 2) * 0.1 for b, d, l in zip(bases, directions, lengths)]
    return points, directions


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main():
    print(f"{'n':>9} {'variable':>8} {'tutorial s':>11} {'squareseq s':>12} {'speed-up':>9} {'identical':>9}")
    for n in (10_000, 100_000, 1_000_000):
        for variable_len in (False, True):
            ours_s, (points, dirs) = best_of(lambda: generate_sequences(n, variable_len, seed=1))
            if n <= 100_000:
                ref_s, (ref_points, ref_dirs) = best_of(lambda: tutorial_generate_sequences(n, variable_len, 1), 1)
                same = np.array_equal(dirs, ref_dirs) and all(np.array_equal(a, b) for a, b in zip(points, ref_points))
                print(f"{n:>9} {str(variable_len):>8} {ref_s:>11.3f} {ours_s:>12.3f} {ref_s / ours_s:>8.1f}x {str(same):>9}")
            else:
                print(f"{n:>9} {str(variable_len):>8} {'(skipped)':>11} {ours_s:>12.3f} {'':>9} {'':>9}")


if __name__ == "__main__":
    main()
