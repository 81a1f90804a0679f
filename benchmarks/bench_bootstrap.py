"""Benchmark: bootstrap of PR-AUC, 10,000 cases x 2,000 resamples, drawing included.

    .venv/bin/python benchmarks/bench_bootstrap.py                  # 5 interleaved rounds
    .venv/bin/python benchmarks/bench_bootstrap.py --rounds 3 --n 2000

Three implementations on the same data (3.4 % failures, binormal scores), in the same
process, in interleaved rounds (old, new, scipy, old, new, scipy, ...) so a noisy neighbour
hits all alike; the median round is reported, with the machine's load average:

  old    the evaluation code before issue 9 (a frozen copy below, clearly marked): a
         resamples x rows matrix of multinomial weights, then weighted cumulative sums over
         the sorted rows for every metric
  new    shopfloor.evaluation.bootstrap: row draws counted into each metric's cells, plus
         the jackknife for the BCa interval (what the gates and shopfloor.testing run)
  scipy  scipy.stats.bootstrap with a vectorised (numpy) average-precision statistic, paired,
         method="percentile" (no jackknife: cheaper than BCa) and not stratified

Pinned to one core with single-threaded numpy (the goal is "under 1 s on one core").
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from shopfloor.evaluation.bootstrap import Design, bootstrap  # noqa: E402
from shopfloor.evaluation.metrics import Scored  # noqa: E402

GOAL_S = 1.0


# ---- FROZEN COPY: shopfloor/evaluation/metrics.py before issue 9 (the baseline; do not edit) ----
def old_bootstrap_weights(y_true: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.asarray(y_true).astype(bool)
    weights = np.zeros((n_resamples, len(y)), dtype=np.float64)
    for mask in (y, ~y):
        idx = np.flatnonzero(mask)
        if len(idx):
            weights[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1.0 / len(idx)), size=n_resamples)
    return weights


@dataclass(frozen=True)
class _Ranked:
    order: np.ndarray
    group_end: np.ndarray
    scores_desc: np.ndarray


def _old_rank(scores: np.ndarray) -> _Ranked:
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    group_end = np.flatnonzero(np.r_[np.diff(s) != 0, True])
    return _Ranked(order, group_end, s)


def _old_curve(ranked: _Ranked, y: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w = weights[:, ranked.order]
    pos = y[ranked.order].astype(np.float64)
    tp = np.cumsum(w * pos, axis=1)[:, ranked.group_end]
    fp = np.cumsum(w * (1.0 - pos), axis=1)[:, ranked.group_end]
    return tp, fp


def _old_metrics_from_curve(tp: np.ndarray, fp: np.ndarray, target_precision: float) -> dict[str, np.ndarray]:
    total_pos = tp[:, -1:]
    total_neg = fp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 1.0)
        recall = tp / total_pos
        fpr = fp / total_neg
    d_recall = np.diff(np.concatenate([np.zeros_like(recall[:, :1]), recall], axis=1), axis=1)
    pr_auc = np.sum(d_recall * precision, axis=1)
    tpr0 = np.concatenate([np.zeros_like(recall[:, :1]), recall], axis=1)
    fpr0 = np.concatenate([np.zeros_like(fpr[:, :1]), fpr], axis=1)
    roc_auc = np.sum(np.diff(fpr0, axis=1) * (tpr0[:, 1:] + tpr0[:, :-1]) / 2.0, axis=1)
    reachable = np.where(precision >= target_precision, recall, 0.0)
    return {"pr_auc": pr_auc, "roc_auc": roc_auc, "recall_at_precision": reachable.max(axis=1)}


def old_metric_samples(y_true: np.ndarray, scores: np.ndarray, weights: np.ndarray, *,
                       target_precision: float) -> dict[str, np.ndarray]:
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    ranked = _old_rank(s)
    tp, fp = _old_curve(ranked, y, weights)
    return _old_metrics_from_curve(tp, fp, target_precision)
# ---- end of the frozen copy ----------------------------------------------------------------------


def run_old(y: np.ndarray, s: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    weights = old_bootstrap_weights(y, resamples, seed)
    return old_metric_samples(y, s, weights, target_precision=0.8)["pr_auc"]


def run_new(y: np.ndarray, s: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rep = bootstrap({"pr_auc": Scored.of(y, s).statistic("pr_auc")}, Design.of(len(y), strata=y),
                    resamples=resamples, seed=seed)["pr_auc"]
    return rep.samples


def _average_precision(y: np.ndarray, s: np.ndarray, axis: int = -1) -> np.ndarray:
    """Vectorised average precision over the last axis (no tie grouping: fine for timing)."""
    order = np.argsort(-s, axis=axis)
    ys = np.take_along_axis(y, order, axis=axis)
    tp = np.cumsum(ys, axis=axis)
    precision = tp / np.arange(1, ys.shape[axis] + 1)
    return np.sum(precision * ys, axis=axis) / np.maximum(ys.sum(axis=axis), 1)


def run_scipy(y: np.ndarray, s: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    result = stats.bootstrap((y.astype(np.float64), s), _average_precision, paired=True, vectorized=True,
                             n_resamples=resamples, method="percentile",
                             random_state=np.random.default_rng(seed))
    return np.asarray(result.bootstrap_distribution)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[], choices=["old", "new", "scipy"])
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[-1]})
    rng = np.random.default_rng(0)
    y = (rng.random(args.n) < 0.034).astype(int)
    s = rng.normal(0.0, 1.0, args.n) + 2.66 * y
    runners: dict[str, Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]] = {
        "old": run_old, "new": run_new, "scipy": run_scipy}
    runners = {k: v for k, v in runners.items() if k not in args.skip}
    times: dict[str, list[float]] = {k: [] for k in runners}
    spreads: dict[str, float] = {}
    load_before = os.getloadavg()
    for r in range(args.rounds):
        for name, fn in runners.items():
            start = time.perf_counter()
            samples = fn(y, s, args.resamples, r)
            times[name].append(time.perf_counter() - start)
            spreads[name] = float(np.std(samples))
    load_after = os.getloadavg()
    print(f"PR-AUC bootstrap: {args.n:,} cases ({int(y.sum())} failures) x {args.resamples:,} resamples, "
          f"{args.rounds} interleaved rounds, pinned to CPU {cpus[-1]}")
    print(f"load average (1/5/15 min) before {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, "
          f"after {load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}")
    print(f"{'implementation':<16}{'median s':>10}{'min s':>9}{'max s':>9}{'SD of PR-AUC*':>15}")
    for name in runners:
        t = times[name]
        print(f"{name:<16}{statistics.median(t):>10.3f}{min(t):>9.3f}{max(t):>9.3f}{spreads[name]:>15.4f}")
    if "new" in times:
        new = statistics.median(times["new"])
        print(f"goal: new < {GOAL_S:.1f} s: {'met' if new < GOAL_S else 'NOT met'}")
        for other in ("old", "scipy"):
            if other in times:
                print(f"new is {statistics.median(times[other]) / new:.1f}x faster than {other}")


if __name__ == "__main__":
    main()
