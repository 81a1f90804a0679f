"""Figures of a run's verdicts (matplotlib, PNG and SVG), from arrays and the steps' reports.

Every function takes plain data (labels, scores, the evaluation/verdict/validation JSON) and
writes ``<name>.png`` and ``<name>.svg`` into a directory, so the same pictures are drawn in a
pipeline step, in a notebook or in a test. Bands are pointwise bootstrap percentiles: they show
how much the curve moves with the test rows drawn, not a simultaneous confidence region.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Index of a figure directory: which figures it holds, in order, with their captions.
INDEX = "figures.json"
#: Largest number of bootstrap resamples for a band (each is one curve over the test rows).
MAX_RESAMPLES = 1000
#: Resolution of PNGs: small enough to embed every figure of a run in one HTML page.
DPI = 80
_GRID = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True)
class Figure:
    """One written figure: its file stem, title and caption (what to read from it)."""

    name: str
    title: str
    caption: str

    def png(self, directory: Path) -> Path:
        return Path(directory) / f"{self.name}.png"

    def svg(self, directory: Path) -> Path:
        return Path(directory) / f"{self.name}.svg"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    matplotlib.rcParams["svg.fonttype"] = "none"  # SVG text stays text: smaller, searchable
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out_dir: Path, figure: Figure) -> Figure:
    plt = _pyplot()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.suptitle(figure.title, fontsize=11)
    fig.tight_layout()
    fig.savefig(figure.png(out_dir), dpi=DPI)
    fig.savefig(figure.svg(out_dir))
    plt.close(fig)
    return figure


def write_index(out_dir: Path, figures: Sequence[Figure]) -> Path:
    """Record the figures of a directory, in display order, for the HTML report."""
    path = Path(out_dir) / INDEX
    path.write_text(json.dumps([asdict(f) for f in figures], indent=1))
    return path


def read_index(out_dir: Path) -> list[Figure]:
    """Figures listed in a directory's index whose PNG exists; [] when there is no index."""
    try:
        entries = json.loads((Path(out_dir) / INDEX).read_text())
    except (OSError, ValueError):
        return []
    figures = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            figure = Figure(str(entry["name"]), str(entry["title"]), str(entry["caption"]))
        except (KeyError, TypeError):
            continue
        if figure.png(out_dir).is_file():
            figures.append(figure)
    return figures


# -- curves --------------------------------------------------------------------------------------
def _check_scores(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int).ravel()
    scores = np.asarray(scores, dtype=float).ravel()
    if y.shape != scores.shape or y.size == 0:
        raise ValueError(
            f"labels and scores must be non-empty and equal in length ({y.size} vs {scores.size})"
        )
    if y.sum() == 0 or y.sum() == y.size:
        raise ValueError("curves need both classes among the labels")
    return y, scores


def _curve(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(recall, precision, fpr) at every distinct threshold, highest threshold first."""
    order = np.argsort(-scores, kind="mergesort")
    ys, ss = y[order], scores[order]
    tp, fp = np.cumsum(ys), np.cumsum(1 - ys)
    last = np.r_[np.flatnonzero(np.diff(ss)), ys.size - 1]  # last row of each distinct score
    tp, fp = tp[last], fp[last]
    return tp / max(int(y.sum()), 1), tp / (tp + fp), fp / max(int((1 - y).sum()), 1)


def _pr_on_grid(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Interpolated precision (best precision at recall >= r) on the recall grid."""
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.searchsorted(recall, _GRID, side="left")
    return np.where(idx < envelope.size, envelope[np.minimum(idx, envelope.size - 1)], 0.0)


def _roc_on_grid(recall: np.ndarray, fpr: np.ndarray) -> np.ndarray:
    return np.interp(_GRID, np.r_[0.0, fpr], np.r_[0.0, recall])


def bootstrap_bands(
    y: np.ndarray, scores: np.ndarray, *, resamples: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, np.ndarray]:
    """Pointwise percentile bands of the PR and ROC curves over stratified resamples of the rows
    (positives and negatives resampled separately, as in the evaluation's intervals)."""
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be within 1..{MAX_RESAMPLES}, got {resamples}")
    y, scores = _check_scores(y, scores)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    pr, roc = np.empty((resamples, _GRID.size)), np.empty((resamples, _GRID.size))
    for b in range(resamples):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        recall, precision, fpr = _curve(y[idx], scores[idx])
        pr[b], roc[b] = _pr_on_grid(recall, precision), _roc_on_grid(recall, fpr)
    tail = (1 - level) / 2 * 100
    recall, precision, fpr = _curve(y, scores)
    return {
        "grid": _GRID,
        "pr": _pr_on_grid(recall, precision),
        "pr_low": np.percentile(pr, tail, axis=0),
        "pr_high": np.percentile(pr, 100 - tail, axis=0),
        "roc": _roc_on_grid(recall, fpr),
        "roc_low": np.percentile(roc, tail, axis=0),
        "roc_high": np.percentile(roc, 100 - tail, axis=0),
    }


def curve_figures(
    y: np.ndarray,
    scores: Mapping[str, np.ndarray],
    out_dir: Path,
    *,
    pr_auc: Mapping[str, Mapping[str, float]] | None = None,
    resamples: int = 200,
    seed: int = 0,
) -> list[Figure]:
    """Precision-recall and ROC curves of each model with 95 % bootstrap bands; the legend
    carries each model's PR-AUC with its interval when ``pr_auc`` gives them."""
    plt = _pyplot()
    bands = {name: bootstrap_bands(y, s, resamples=resamples, seed=seed) for name, s in scores.items()}
    prevalence = float(np.mean(np.asarray(y)))
    out = []
    for kind, xlabel, ylabel in (("pr", "recall", "precision"), ("roc", "false positive rate", "recall")):
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        for name, band in bands.items():
            label = name
            if kind == "pr" and pr_auc and name in pr_auc:
                e = pr_auc[name]
                label = f"{name}: PR-AUC {e['value']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
            (line,) = ax.plot(band["grid"], band[kind], label=label, linewidth=1.6)
            ax.fill_between(
                band["grid"],
                band[f"{kind}_low"],
                band[f"{kind}_high"],
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
        if kind == "pr":
            ax.axhline(
                prevalence, color="grey", linestyle=":", linewidth=1, label=f"prevalence {prevalence:.3f}"
            )
        else:
            ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel=xlabel, ylabel=ylabel, xlim=(0, 1), ylim=(0, 1.02))
        ax.legend(loc="lower left" if kind == "pr" else "lower right", fontsize=7)
        title = "Precision-recall curve" if kind == "pr" else "ROC curve"
        out.append(
            _save(
                fig,
                out_dir,
                Figure(
                    f"{kind}_curve",
                    f"{title} (test split, 95 % bootstrap band)",
                    f"Shaded: pointwise 2.5-97.5 % band over {resamples} stratified resamples"
                    " of the test rows.",
                ),
            )
        )
    return out


def calibration_figure(
    y: np.ndarray, scores: Mapping[str, np.ndarray], out_dir: Path, *, bins: int = 10
) -> Figure:
    """Observed failure rate per bin of predicted probability, with 95 % Wilson intervals."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1, label="perfect calibration")
    edges = np.linspace(0, 1, bins + 1)
    for name, s in scores.items():
        yy, ss = _check_scores(y, s)
        which = np.clip(np.digitize(ss, edges[1:-1]), 0, bins - 1)
        mids, rates, lows, highs = [], [], [], []
        for b in range(bins):
            n = int((which == b).sum())
            if n == 0:
                continue
            k = int(yy[which == b].sum())
            low, high = _wilson(k, n)
            mids.append(float(ss[which == b].mean()))
            rates.append(k / n)
            lows.append(max(k / n - low, 0.0))  # rounding may put a bound a hair past k/n
            highs.append(max(high - k / n, 0.0))
        ax.errorbar(mids, rates, yerr=[lows, highs], marker="o", markersize=4, capsize=2, label=name)
    ax.set(xlabel="mean predicted probability", ylabel="observed failure rate", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left", fontsize=7)
    return _save(
        fig,
        out_dir,
        Figure(
            "calibration",
            "Calibration (test split)",
            "Points: bins of predicted probability; bars: 95 % Wilson intervals.",
        ),
    )


def _wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def confusion_figure(matrix: Sequence[Sequence[int]], threshold: float, out_dir: Path) -> Figure:
    """Counts of the 2x2 confusion matrix at the chosen decision threshold."""
    plt = _pyplot()
    m = np.asarray(matrix, dtype=int)
    if m.shape != (2, 2):
        raise ValueError(f"confusion matrix must be 2x2, got shape {m.shape}")
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(m, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(
                j,
                i,
                str(m[i, j]),
                ha="center",
                va="center",
                color="white" if m[i, j] > m.max() / 2 else "black",
                fontsize=12,
            )
    ax.set_xticks([0, 1], ["ok", "failure"])
    ax.set_yticks([0, 1], ["ok", "failure"])
    ax.set(xlabel="predicted", ylabel="actual")
    return _save(
        fig,
        out_dir,
        Figure(
            "confusion_matrix",
            f"Confusion matrix at threshold {threshold:.3f}",
            "Test split; rows are the actual class, columns the decision.",
        ),
    )


def per_product_type_figure(
    evaluation: Mapping[str, Any], verdict: Mapping[str, Any], out_dir: Path, *, model: str = "keras"
) -> Figure:
    """Each gated metric per product type and overall, with intervals; the gate's limit (which
    applies to the overall value's lower bound) drawn as a dashed line."""
    plt = _pyplot()
    table = evaluation["models"][model]
    limits = {
        g["metric"]: g["limit"]
        for g in verdict.get("gates", [])
        if isinstance(g, Mapping) and g.get("metric") in table["overall"] and g.get("limit") is not None
    }
    metrics = list(limits) or ["pr_auc", "roc_auc"]
    groups = [*sorted(table.get("per_product_type", {})), "overall"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for x, group in enumerate(groups):
            cell = table["overall"] if group == "overall" else table["per_product_type"][group]
            e = cell.get(metric)
            if not e or e.get("value") is None:
                continue
            low = e["value"] - (e["ci_low"] if e.get("ci_low") is not None else e["value"])
            high = (e["ci_high"] if e.get("ci_high") is not None else e["value"]) - e["value"]
            ax.errorbar(
                [x],
                [e["value"]],
                yerr=[[low], [high]],
                marker="o",
                capsize=3,
                color="black" if group == "overall" else "tab:blue",
            )
        if metric in limits:
            ax.axhline(
                limits[metric],
                color="tab:red",
                linestyle="--",
                linewidth=1,
                label=f"gate limit {limits[metric]:.2f}",
            )
            ax.legend(loc="lower left", fontsize=7)
        ax.set_xticks(range(len(groups)), groups)
        ax.set(title=metric, ylim=(0, 1.02))
    return _save(
        fig,
        out_dir,
        Figure(
            "per_product_type",
            f"{model}: metrics per product type with 95 % intervals",
            "Dashed red: the release gate's limit on the overall interval's lower bound.",
        ),
    )


def equivalence_figure(
    reference: np.ndarray, edge: Mapping[str, np.ndarray], out_dir: Path, *, threshold: float | None = None,
    reference_name: str = "SavedModel",
) -> Figure:
    """Edge (LiteRT) probabilities against the reference model's (the MLP's SavedModel, or
    scikit-learn for the tree ensemble), one point per test row."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    for fmt, probs in edge.items():
        ax.scatter(reference, probs, s=6, alpha=0.5, label=fmt)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    if threshold is not None:
        ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1)
        ax.axhline(
            threshold, color="tab:red", linestyle="--", linewidth=1, label=f"threshold {threshold:.3f}"
        )
    ax.set(xlabel=f"{reference_name} probability", ylabel="LiteRT probability", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=7)
    return _save(
        fig,
        out_dir,
        Figure(
            "equivalence",
            f"Equivalence: {reference_name} vs LiteRT",
            "One point per test row; points off the diagonal are rows whose probability changed.",
        ),
    )


# -- validation ----------------------------------------------------------------------------------
def sensor_figures(
    table: Any, profile: Mapping[str, Any], results: Sequence[Mapping[str, Any]], out_dir: Path
) -> Figure:
    """Each profiled column of the batch against the reference profile (histogram share per
    reference bin, or the median against its band); a column with a failed expectation is drawn
    in red and names the expectation."""
    plt = _pyplot()
    columns = [c for c in profile["columns"] if c in getattr(table, "columns", [])]
    failed: dict[str, list[str]] = {}
    for r in results:
        if r.get("success") is False and r.get("column"):
            for col in str(r["column"]).split(", "):
                failed.setdefault(col, []).append(str(r.get("expectation", "?")).removeprefix("expect_"))
    n = max(len(columns), 1)
    cols = 3
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.ravel()[len(columns) :]:
        ax.set_visible(False)
    for ax, column in zip(axes.ravel(), columns, strict=False):
        spec = profile["columns"][column]
        colour = "tab:red" if column in failed else "tab:blue"
        values = table[column].dropna()
        numeric = np.asarray(_numeric(values), dtype=float)
        if "partition" in spec and "values" in spec["partition"]:
            cats = list(spec["partition"]["values"])
            share = values.astype(str).value_counts(normalize=True)
            x = np.arange(len(cats))
            ax.bar(x - 0.2, spec["partition"]["weights"], width=0.4, color="lightgrey", label="reference")
            ax.bar(x + 0.2, [float(share.get(c, 0.0)) for c in cats], width=0.4, color=colour, label="batch")
            ax.set_xticks(x, cats)
            ax.set_ylabel("share")
        elif "partition" in spec:
            bins = np.asarray(spec["partition"]["bins"], dtype=float)
            ref = np.asarray(spec["partition"]["weights"], dtype=float)
            counts, _ = np.histogram(numeric, bins=bins)
            share = counts / max(numeric.size, 1)
            centres = np.arange(ref.size)
            ax.step(centres, ref, where="mid", color="grey", label="reference")
            ax.step(centres, share, where="mid", color=colour, label="batch")
            ax.set_xticks([0, ref.size - 1], [f"{bins[0]:g}", f"{bins[-1]:g}"])
            ax.set_ylim(bottom=0)
            ax.set_ylabel("share per reference bin")
        elif "median_band" in spec:
            low, high = spec["median_band"]
            ax.hist(numeric, bins=40, color=colour, alpha=0.7, label="batch")
            ax.axvspan(low, high, color="grey", alpha=0.2, label="reference median band")
            if numeric.size:
                ax.axvline(float(np.median(numeric)), color="black", linewidth=1.2, label="batch median")
            ax.set_ylabel("rows")
        title = column + (
            f"\nFAILED: {', '.join(sorted(set(failed[column])))[:60]}" if column in failed else ""
        )
        ax.set_title(title, fontsize=8, color=colour if column in failed else "black")
        ax.legend(fontsize=6)
    return _save(
        fig,
        out_dir,
        Figure(
            "sensor_distributions",
            "Sensors against the reference profile",
            "Grey: the reference profile; red panels have a failed expectation (named in the title).",
        ),
    )


def _numeric(values: Any) -> Any:
    """Numbers of a column; text that is not a number (what validation flags) is left out."""
    import pandas as pd

    return pd.to_numeric(values, errors="coerce").dropna()
