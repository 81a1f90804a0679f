"""Does a converted model behave like the model it came from? And how fast and big is it?

Three limits, because each alone can be fooled:

* decision agreement (Wilson lower bound) — what the plant sees, but a model that says
  "no failure" to every row still agrees on ~90 % of rows when failures are rare;
* largest probability difference — catches a broken model even when decisions agree;
* PR-AUC drop — catches lost ranking among the rare positives, the part that matters.

The int8-with-normalisation-inside pitfall agrees on 91 % of decisions yet has PR-AUC 0.06;
it fails all three here. Golden files let the edge re-check the exact model it runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopfloor.contract import Golden, dumps, golden_files, load_golden
from shopfloor.errors import IntegrityError, InvalidInputError
from shopfloor.evaluation.decision import AT_LEAST, judge_proportion
from shopfloor.evaluation.metrics import Scored, interval_method, metric_value, replicate
from shopfloor.evaluation.stats import Estimate
from shopfloor.lineage import write_text_atomic

log = logging.getLogger(__name__)

LIMIT_KEYS: tuple[str, ...] = ("min_agreement_ci_low", "max_abs_probability_diff", "max_pr_auc_drop")
#: Default golden tolerance: one int8 output step (1/256) plus margin, so another CPU's int8
#: kernels may round one step differently without failing, while a swapped model cannot pass.
DEFAULT_GOLDEN_TOLERANCE = 5e-3


def equivalence_limits(fmt: str, policy_path: Path | None = None) -> dict[str, float]:
    """The ``equivalence.<fmt>`` limits of the release policy (packaged policy.yaml by default)."""
    from shopfloor.evaluation.policy import load_policy

    section = load_policy(policy_path).equivalence
    if fmt not in section:
        raise InvalidInputError(
            f"policy has no equivalence limits for format {fmt!r} (has {sorted(section)})")
    return section[fmt].to_dict()


def pr_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision (area under the precision-recall curve), as the gates compute it;
    NaN without failures."""
    return metric_value("pr_auc", y_true, scores)


@dataclass
class EquivalenceReport:
    """Reference-vs-candidate behaviour on the same rows, with the verdict and its reasons."""

    fmt: str
    n: int
    threshold: float
    agreement: Estimate
    missed_alarms: int  # reference alarms, candidate silent
    extra_alarms: int  # candidate alarms, reference silent
    max_abs_probability_diff: float
    mean_abs_probability_diff: float
    reference_pr_auc: float
    candidate_pr_auc: float
    pr_auc_drop: Estimate  # reference - candidate, paired bootstrap interval
    limits: dict[str, float]
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.fmt,
            "n": self.n,
            "threshold": self.threshold,
            "agreement": self.agreement.to_dict(),
            "missed_alarms": self.missed_alarms,
            "extra_alarms": self.extra_alarms,
            "max_abs_probability_diff": self.max_abs_probability_diff,
            "mean_abs_probability_diff": self.mean_abs_probability_diff,
            "reference_pr_auc": self.reference_pr_auc,
            "candidate_pr_auc": self.candidate_pr_auc,
            "pr_auc_drop": self.pr_auc_drop.to_dict(),
            "limits": dict(self.limits),
            "passed": self.passed,
            "reasons": list(self.reasons),
        }


def check_equivalence(
    reference_proba: np.ndarray,
    candidate_proba: np.ndarray,
    y_true: np.ndarray,
    threshold: float,
    limits: dict[str, float],
    fmt: str,
    *,
    n_resamples: int = 300,
    seed: int = 0,
    confidence: float = 0.95,
) -> EquivalenceReport:
    """Judge ``candidate_proba`` against ``reference_proba`` on the same labelled rows.

    Gates: decision agreement at least ``min_agreement_ci_low``, judged as
    ``shopfloor.testing.assert_agreement`` judges it (Wilson score bound at the policy's
    confidence; passes only when the lower bound reaches the limit); largest |difference| <=
    ``max_abs_probability_diff``; PR-AUC drop (point estimate) <= ``max_pr_auc_drop``. The
    drop's paired-bootstrap interval is reported, not gated: with ~60 positives in a test
    split its width is sampling noise of the split, not of the conversion, and identical
    models would fail a tight limit on it.
    """
    missing = [k for k in LIMIT_KEYS if k not in limits]
    if missing:
        raise InvalidInputError(f"equivalence limits for {fmt!r} lack {missing}")
    ref = np.asarray(reference_proba, dtype=np.float64).reshape(-1)
    cand = np.asarray(candidate_proba, dtype=np.float64).reshape(-1)
    y = np.asarray(y_true).astype(int).reshape(-1)
    if not (len(ref) == len(cand) == len(y)) or len(y) == 0:
        raise InvalidInputError(f"need equal, non-empty lengths; got {len(ref)}, {len(cand)}, {len(y)}")
    reasons: list[str] = []
    nonfinite = int((~np.isfinite(cand)).sum())
    if nonfinite:
        reasons.append(f"candidate: {nonfinite} non-finite probabilities")
        cand = np.nan_to_num(cand, nan=-1.0, posinf=2.0, neginf=-1.0)

    ref_alarm, cand_alarm = ref >= threshold, cand >= threshold
    alpha = (1 - confidence) / 2
    judged = judge_proportion(int((ref_alarm == cand_alarm).sum()), len(y), quantity="decision agreement",
                              limit=limits["min_agreement_ci_low"], direction=AT_LEAST, alpha=alpha)
    agreement = Estimate(judged.estimate, judged.low, judged.high, judged.method)
    diff = np.abs(ref - cand)
    ref_auc, cand_auc = pr_auc(y, ref), pr_auc(y, cand)
    if np.isfinite(ref_auc) and n_resamples > 0:
        statistic = Scored.of(y, ref).statistic("pr_auc") - Scored.of(y, cand).statistic("pr_auc")
        rep = replicate({"drop": statistic}, len(y), resamples=n_resamples, seed=seed, strata=y)["drop"]
        drop = Estimate(rep.point, rep.lower(alpha), rep.upper(alpha), interval_method(None))
    else:
        drop = Estimate(ref_auc - cand_auc, float("nan"), float("nan"))

    if not judged.passed:
        reasons.append(f"min_agreement_ci_low: decision agreement {agreement} has lower bound "
                       f"{agreement.ci_low:.4f} < {limits['min_agreement_ci_low']}")
    if float(diff.max()) > limits["max_abs_probability_diff"]:
        reasons.append(f"max_abs_probability_diff: largest |p_ref - p_cand| {diff.max():.4f} "
                       f"> {limits['max_abs_probability_diff']}")
    if not np.isfinite(drop.value):
        reasons.append("max_pr_auc_drop: PR-AUC undefined (no positive rows)")
    elif drop.value > limits["max_pr_auc_drop"]:
        reasons.append(f"max_pr_auc_drop: PR-AUC {ref_auc:.4f} -> {cand_auc:.4f}, drop {drop} "
                       f"> {limits['max_pr_auc_drop']}")
    return EquivalenceReport(
        fmt=fmt,
        n=len(y),
        threshold=float(threshold),
        agreement=agreement,
        missed_alarms=int((ref_alarm & ~cand_alarm).sum()),
        extra_alarms=int((~ref_alarm & cand_alarm).sum()),
        max_abs_probability_diff=float(diff.max()),
        mean_abs_probability_diff=float(diff.mean()),
        reference_pr_auc=ref_auc,
        candidate_pr_auc=cand_auc,
        pr_auc_drop=drop,
        limits=dict(limits),
        passed=not reasons,
        reasons=reasons,
    )


def model_size_bytes(path: Path) -> int:
    """Bytes of a model file, or of every file under a model directory (SavedModel)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure_latency(
    model: Any, row: np.ndarray, n: int = 5000, warmup: int = 200
) -> dict[str, float]:
    """Single-row latency in µs (median, p90) of ``model.predict_one`` or of a callable.

    Timed call by call (perf_counter_ns), so the median is robust to scheduler noise on a
    shared 2-core box. Adds ``size_bytes`` when the model has it.
    """
    fn: Callable[[np.ndarray], Any] = model.predict_one if hasattr(model, "predict_one") else model
    for _ in range(warmup):
        fn(row)
    times = np.empty(n)
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        fn(row)
        times[i] = clock() - t0
    result = {
        "median_us": float(np.median(times) / 1e3),
        "p90_us": float(np.percentile(times, 90) / 1e3),
        "n": float(n),
    }
    if hasattr(model, "size_bytes"):
        result["size_bytes"] = float(model.size_bytes)
    return result


def write_golden(
    out_dir: Path,
    inputs: np.ndarray,
    outputs: np.ndarray,
    *,
    fmt: str,
    tolerance: float = DEFAULT_GOLDEN_TOLERANCE,
) -> Path:
    """Save golden inputs and the converted model's outputs beside it, under the contract's
    names for ``fmt`` (``golden_files(fmt)``: a JSON description and an ``.npz``).

    ``outputs`` must come from the converted file itself, not the Keras model: the edge
    self-test checks that its runtime reproduces the file's behaviour, not the conversion.
    """
    out_dir = Path(out_dir)
    json_name, npz_name = golden_files(fmt)
    x = np.asarray(inputs, dtype=np.float32)
    y = np.asarray(outputs, dtype=np.float32).reshape(-1)
    if x.ndim != 2 or len(x) != len(y) or len(y) == 0:
        raise InvalidInputError(f"golden inputs [n, F] and outputs [n] must match; got {x.shape}, {y.shape}")
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(out_dir / npz_name, inputs=x, outputs=y)
    golden = Golden(n=len(y), n_features=int(x.shape[1]), tolerance=float(tolerance), npz=npz_name)
    write_text_atomic(out_dir / json_name, dumps(golden.to_dict()))
    return out_dir / json_name


def self_test(model_path: Path, golden_dir: Path, *, fmt: str) -> bool:
    """Re-run the golden inputs of ``fmt`` through ``model_path``; True only if every output
    matches.

    Checks both the batch and the single-row path. Any failure (missing golden, unloadable
    or swapped model, drift beyond tolerance) returns False and logs why: a device that
    cannot prove its model must not serve it.
    """
    try:
        from shopfloor.inference.runtime import LiteRTModel

        golden = load_golden(Path(golden_dir), fmt)
        with np.load(Path(golden_dir) / golden.npz) as data:
            x, expected = data["inputs"], data["outputs"].astype(np.float64)
        if x.ndim != 2 or x.shape != (golden.n, golden.n_features) or expected.shape != (golden.n,):
            raise IntegrityError(f"golden arrays {x.shape}/{expected.shape} do not match their description "
                             f"({golden.n} x {golden.n_features})")
        model = LiteRTModel(model_path)
        batch = model.predict_proba(x)
        single = np.array([model.predict_one(r) for r in x[: min(len(x), 16)]])
    except Exception as exc:  # the edge wants a verdict, not a traceback
        log.error("self-test of %s could not run: %s: %s", model_path, type(exc).__name__, exc)
        return False
    worst = max(float(np.abs(batch - expected).max()), float(np.abs(single - expected[: len(single)]).max()))
    if not np.isfinite(worst) or worst > golden.tolerance:
        log.error("self-test of %s failed: largest output difference %.5f > tolerance %.5f",
                  model_path, worst, golden.tolerance)
        return False
    return True
