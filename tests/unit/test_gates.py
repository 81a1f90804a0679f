"""Policy file and gates: lower bounds decide, typos fail loudly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from shopfloor.contract import ReleasePolicy
from shopfloor.errors import InvalidInputError, NotFoundError
from shopfloor.evaluation.bootstrap import Replicates
from shopfloor.evaluation.decision import AT_LEAST, Judgement, judge
from shopfloor.evaluation.gates import apply_policy, non_inferiority_gate, threshold_gate
from shopfloor.evaluation.policy import (
    MAX_POLICY_BYTES,
    PolicyError,
    default_policy_path,
    load_policy,
    policy_from_text,
)
from shopfloor.evaluation.stats import wilson_interval
from shopfloor.steps import Verdict


def test_shipped_policy_loads_as_the_contract_type() -> None:
    policy = load_policy()
    assert isinstance(policy, ReleasePolicy)
    assert policy.policy_version and policy.source == str(default_policy_path())
    assert {g.metric for g in policy.gates} <= {"pr_auc", "roc_auc", "recall_at_precision", "f1"}
    assert set(policy.equivalence) == {"float32", "int8"}
    assert issubclass(PolicyError, InvalidInputError)


def _replicates(values: np.ndarray, point: float) -> Replicates:
    return Replicates.of(point, values, np.zeros(3))


def _judged(metric: str, point: float, spread: float, limit: float) -> Judgement:
    """A judgement on a symmetric bootstrap distribution around ``point``."""
    values = point + spread * np.random.default_rng(0).standard_normal(4000)
    return judge(_replicates(values, point), quantity=metric, limit=limit, direction=AT_LEAST, alpha=0.025,
                 n=2000)


def test_gate_decides_on_the_bounds_three_ways() -> None:
    lucky = threshold_gate("pr_auc", _judged("pr_auc", 0.80, 0.12, 0.60))  # good point, too uncertain
    assert not lucky.passed and lucky.verdict == "inconclusive"
    assert f"lower bound {lucky.ci_low:.3f} is below 0.600" in lucky.reason
    assert "test rows would likely settle it" in lucky.reason and lucky.rows_needed > 2000
    good = threshold_gate("pr_auc", _judged("pr_auc", 0.70, 0.02, 0.60))
    assert good.passed and good.verdict == "pass" and "reaches 0.600" in good.reason
    assert good.method == "bca" and 0 <= good.p_value < 0.025  # judge() records the method it is told
    bad = threshold_gate("pr_auc", _judged("pr_auc", 0.50, 0.02, 0.60))
    assert bad.verdict == "fail" and f"upper bound {bad.ci_high:.3f} is below 0.600" in bad.reason


def test_non_inferiority_margin() -> None:
    within = _judged("pr_auc difference", -0.03, 0.02, -0.10)
    assert non_inferiority_gate("pr_auc", "baseline", within).passed
    failed = non_inferiority_gate("pr_auc", "baseline", _judged("pr_auc difference", -0.20, 0.02, -0.10))
    assert failed.verdict == "fail" and "vs baseline" in failed.reason
    assert "beyond margin -0.100" in failed.reason


def _all_judged(policy, point: float, spread: float) -> dict[str, Judgement]:  # type: ignore[no-untyped-def]
    return {g.metric: _judged(g.metric, point, spread, g.min_ci_low) for g in policy.gates}


def test_verdict_names_every_failed_gate() -> None:
    policy = load_policy()
    verdict = apply_policy(policy, _all_judged(policy, 0.2, 0.01),
                           {"baseline": _judged("d", 0.0, 0.005, -policy.non_inferiority.margin)})
    assert not verdict.passed and verdict.verdict() is Verdict.FAIL
    failed = {g.name for g in verdict.failed()}
    assert failed == {f"min_{g.metric}" for g in policy.gates}
    assert verdict.undecided() == []
    assert verdict.reason().startswith("gates failed: ")
    assert "non_inferior_to_baseline" in {g.name for g in verdict.gates}
    assert "non_inferior_to_champion" not in {g.name for g in verdict.gates}
    document = verdict.to_dict()
    assert document["verdict"] == "fail" and {"passed", "policy_version", "reason", "gates"} <= set(document)
    assert {"name", "metric", "value", "ci_low", "ci_high", "limit", "passed", "reason", "verdict",
            "method"} <= set(document["gates"][0])


def test_a_fail_outranks_an_inconclusive_gate() -> None:
    policy = load_policy()
    candidate = {g.metric: _judged(g.metric, g.min_ci_low + 0.01, 0.2, g.min_ci_low) for g in policy.gates}
    margin = policy.non_inferiority.margin
    undecided = apply_policy(policy, candidate, {"baseline": _judged("d", 0.0, 0.005, -margin)})
    assert undecided.verdict() is Verdict.INCONCLUSIVE
    assert undecided.reason().startswith("gates inconclusive: ")
    failed = apply_policy(policy, candidate, {"baseline": _judged("d", -0.5, 0.01, -margin)})
    assert failed.verdict() is Verdict.FAIL and failed.reason().startswith("gates failed: pr_auc vs baseline")
    assert "inconclusive: " in failed.reason()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("gates"), r"missing \['gates'\]"),
        (lambda p: p["gates"].append({"metric": "accuracy", "min_ci_low": 0.5}), "bad gate"),
        (lambda p: p["non_inferiority"].pop("margin"), "non_inferiority needs"),
        (lambda p: p["equivalence"].pop("int8"), "equivalence.int8 needs"),
        (lambda p: p.update(confidence=1.5), "confidence must be a number"),
        (lambda p: p.update(gatez=[]), "unknown keys"),
        (lambda p: p.update(candidates=["keras-mlp", "xgboost"]), "candidates must list distinct families"),
        (lambda p: p.update(candidates=[]), "candidates must list distinct families"),
        (lambda p: p["selection"].update(prefer=["hist-gbt"]), "selection.prefer must order every family"),
        (lambda p: p["selection"].update(margin=-0.1), "selection.margin must be a number"),
        (lambda p: p["selection"].update(metrik="pr_auc"), "selection may hold only"),
    ],
)
def test_policy_typos_fail_loudly(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    policy = yaml.safe_load(default_policy_path().read_text())
    mutate(policy)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError, match=message) as raised:
        load_policy(path)
    assert str(path) in str(raised.value)


def test_unreadable_policy_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="policy file not found"):
        load_policy(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="is not a file"):
        load_policy(tmp_path)
    (tmp_path / "bad.yaml").write_text("gates: [unclosed\n")
    with pytest.raises(PolicyError, match="not valid YAML"):
        load_policy(tmp_path / "bad.yaml")
    (tmp_path / "big.yaml").write_text("#" * (MAX_POLICY_BYTES + 1))
    with pytest.raises(PolicyError, match="larger than"):
        load_policy(tmp_path / "big.yaml")


def test_policy_text_parameter() -> None:
    assert policy_from_text("") == load_policy()
    text = default_policy_path().read_text()
    parsed = policy_from_text(text)
    assert parsed.policy_version == load_policy().policy_version and parsed.source == "policy_yaml"
    with pytest.raises(PolicyError, match="policy_yaml"):
        policy_from_text("gates: []\n")


def test_undefined_interval_is_undecided_not_a_pass() -> None:
    policy = load_policy()
    nan = float("nan")
    undefined = Replicates.of(nan, np.full(100, nan), np.zeros(3))
    candidate = {g.metric: judge(undefined, quantity=g.metric, limit=g.min_ci_low, direction=AT_LEAST,
                                 alpha=0.025, n=20) for g in policy.gates}
    verdict = apply_policy(policy, candidate, {})
    assert not verdict.passed and verdict.verdict() is Verdict.INCONCLUSIVE
    assert {g.name for g in verdict.undecided()} == {f"min_{g.metric}" for g in policy.gates}


def test_wilson_interval_is_honest_near_one() -> None:
    est = wilson_interval(999, 1000)
    assert est.ci_low < 0.999 < est.ci_high <= 1.0
    assert wilson_interval(1000, 1000).ci_low < 1.0


# -- which candidate ships ----------------------------------------------------------------------
def _validation(
    seed: int = 0, n: int = 2000, failures: int = 68
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, a strong and a weak score on the same rows."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n, dtype=int)
    y[rng.choice(n, failures, replace=False)] = 1
    strong = np.clip(0.7 * y + 0.25 * rng.random(n), 0, 1)
    weak = np.clip(0.3 * y + 0.6 * rng.random(n), 0, 1)
    return y, strong, weak


def test_the_best_family_on_validation_ships() -> None:
    from shopfloor.evaluation.evaluate import select_winner

    y, strong, weak = _validation()
    policy = load_policy()
    chosen = select_winner(y, {"keras": weak, "trees": strong}, ["keras-mlp", "hist-gbt"], policy, seed=0)
    assert chosen.winner == "hist-gbt"
    assert chosen.reason.startswith("hist-gbt ships: highest validation pr_auc")
    # The preferred family was tried and shown inferior: its difference's lower bound is recorded.
    assert chosen.differences["keras-mlp"].ci_low < -policy.selection.margin
    assert chosen.values["hist-gbt"].value > chosen.values["keras-mlp"].value
    flipped = select_winner(y, {"keras": strong, "trees": weak}, ["keras-mlp", "hist-gbt"], policy, seed=0)
    assert flipped.winner == "keras-mlp"


def test_a_preferred_family_that_is_non_inferior_ships_even_if_a_little_lower() -> None:
    """Identical rankings except one row: the MLP (first in prefer) is non-inferior within the
    margin and ships although the trees score a hair higher."""
    from shopfloor.evaluation.evaluate import select_winner

    rng = np.random.default_rng(0)
    y = np.zeros(2000, dtype=int)
    y[rng.choice(2000, 68, replace=False)] = 1
    strong = np.clip(0.45 * y + 0.6 * rng.random(2000), 0, 1)  # overlapping classes
    worse = strong.copy()
    failures = np.flatnonzero(y == 1)
    worse[failures[np.argsort(strong[failures])][:5]] -= 0.05  # the 5 lowest failures sink a little
    policy = load_policy()
    chosen = select_winner(y, {"keras": worse, "trees": strong}, ["keras-mlp", "hist-gbt"], policy, seed=0)
    assert chosen.winner == "keras-mlp" and "non-inferior" in chosen.reason
    diff = chosen.differences["keras-mlp"]
    assert -policy.selection.margin <= diff.ci_low <= diff.value < 0
    strict = ReleasePolicy.from_dict({**policy.to_dict(), "selection": {"margin": 0.0}})
    assert select_winner(y, {"keras": worse, "trees": strong}, ["keras-mlp", "hist-gbt"], strict,
                         seed=0).winner == "hist-gbt"


def test_only_gated_candidates_can_ship() -> None:
    from shopfloor.evaluation.evaluate import select_winner

    y, strong, weak = _validation()
    policy = load_policy()
    only_mlp = select_winner(y, {"keras": weak, "trees": strong}, ["keras-mlp"], policy, seed=0)
    assert only_mlp.winner == "keras-mlp"
    nobody = select_winner(y, {"keras": weak, "trees": strong}, [], policy, seed=0)
    assert nobody.winner is None and nobody.reason == "no candidate passed its gates"


def test_policies_without_candidates_train_and_rank_both_families() -> None:
    """A policy written before the candidates existed still parses, with both families."""
    document = yaml.safe_load(default_policy_path().read_text())
    for key in ("candidates", "selection"):
        document.pop(key)
    policy = ReleasePolicy.from_dict(document)
    assert policy.candidates == ("keras-mlp", "hist-gbt")
    assert (policy.selection.metric, policy.selection.margin, policy.selection.prefer) == (
        "pr_auc", 0.01, ("keras-mlp", "hist-gbt"))
    assert ReleasePolicy.from_dict(policy.to_dict()) == ReleasePolicy.from_dict(document)
