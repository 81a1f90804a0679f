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
