"""Time the factory simulator: ``python benchmarks/bench_simulator.py [rows] [machines]``."""

from __future__ import annotations

import sys
import time

from shopfloor.data.simulator import simulate


def main(n_rows: int = 1_000_000, n_machines: int = 1, repeats: int = 5) -> None:
    """Print the best and median wall time of ``repeats`` runs (the best is least disturbed)."""
    simulate(1_000, n_machines=1, seed=0)  # warm up imports and allocators
    times = []
    for seed in range(repeats):
        start = time.perf_counter()
        simulate(n_rows, n_machines=n_machines, seed=seed)
        times.append(time.perf_counter() - start)
    times.sort()
    best, median = times[0], times[len(times) // 2]
    print(f"simulate({n_rows:,} rows, {n_machines} machines): best {best:.3f} s, median {median:.3f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
