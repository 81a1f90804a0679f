"""Policy file and gates: lower bounds decide, typos fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from shopfloor.evaluation.gates import apply_policy, non_inferiority_gate, threshold_gate
from shopfloor.evaluation.policy import PolicyError, load_policy, policy_file
from shopfloor.evaluation.stats import Estimate, wilson_interval


def test_shipped_policy_loads() -> None:
    policy = load_policy()
    assert policy["policy_version"]
    assert {g["metric"] for g in policy["gates"]} <= {"pr_auc", "roc_auc", "recall_at_precision", "f1"}


def test_gate_uses_the_lower_bound_not_the_point() -> None:
    lucky = Estimate(0.80, 0.55, 0.95)  # good point estimate, too uncertain
    gate = threshold_gate("pr_auc", lucky, 0.60)
    assert not gate.passed
    assert "lower bound 0.550 is below 0.600" in gate.reason
    assert threshold_gate("pr_auc", Estimate(0.7, 0.65, 0.75), 0.60).passed


def test_non_inferiority_margin() -> None:
    assert non_inferiority_gate("pr_auc", "baseline", Estimate(-0.03, -0.08, 0.02), 0.10).passed
    failed = non_inferiority_gate("pr_auc", "baseline", Estimate(-0.09, -0.15, -0.03), 0.10)
    assert not failed.passed and "vs baseline" in failed.reason


def test_verdict_names_every_failed_gate() -> None:
    policy = load_policy()
    metrics = {m: Estimate(0.5, 0.1, 0.9) for m in ("pr_auc", "roc_auc", "recall_at_precision", "f1")}
    verdict = apply_policy(policy, metrics, {"baseline": Estimate(0.0, -0.01, 0.01)})
    assert not verdict.passed
    failed = {g.name for g in verdict.failed()}
    assert failed == {f"min_{g['metric']}" for g in policy["gates"]}
    assert verdict.reason().startswith("gates failed: ")
    assert "non_inferior_to_baseline" in {g.name for g in verdict.gates}
    assert "non_inferior_to_champion" not in {g.name for g in verdict.gates}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("gates"), "missing 'gates'"),
        (lambda p: p["gates"].append({"metric": "accuracy", "min_ci_low": 0.5}), "bad gate"),
        (lambda p: p["non_inferiority"].pop("margin"), "non_inferiority needs"),
        (lambda p: p["equivalence"].pop("int8"), "no limits for int8"),
    ],
)
def test_policy_typos_fail_loudly(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    policy = yaml.safe_load(Path(load_policy()["source"]).read_text())
    mutate(policy)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    with pytest.raises(PolicyError, match=message):
        load_policy(path)


def test_policy_text_parameter() -> None:
    with policy_file("") as path:
        assert path is None
    text = Path(load_policy()["source"]).read_text()
    with policy_file(text) as path:
        assert path is not None and load_policy(path)["policy_version"]
    with pytest.raises(PolicyError), policy_file("gates: []\n"):
        pass


def test_wilson_interval_is_honest_near_one() -> None:
    est = wilson_interval(999, 1000)
    assert est.ci_low < 0.999 < est.ci_high <= 1.0
    assert wilson_interval(1000, 1000).ci_low < 1.0
