"""Gates: a model passes on the LOWER bound of its interval, never on a lucky point value.

Each gate is the three-way decision of :mod:`shopfloor.evaluation.decision` at the policy's
confidence (a two-sided 95 % interval: one-sided bounds at 97.5 %): pass when the lower bound
reaches the limit, fail when the upper bound is below it, inconclusive when the interval
straddles it (the test rows cannot tell; the gate does not pass).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from shopfloor.contract import ReleasePolicy
from shopfloor.evaluation.decision import Judgement
from shopfloor.steps import Verdict


@dataclass(frozen=True)
class GateResult:
    """One gate's figures and why it passed or failed."""

    name: str
    metric: str
    value: float
    ci_low: float
    ci_high: float
    limit: float
    passed: bool
    reason: str
    verdict: str = Verdict.PASS.value
    method: str = ""
    p_value: float = float("nan")
    #: Test rows likely to settle an inconclusive gate (None: not inconclusive or unknown).
    rows_needed: int | None = None


@dataclass
class PolicyVerdict:
    """Every gate of a policy applied to one candidate."""

    policy_version: str
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    def failed(self) -> list[GateResult]:
        """Gates that did not pass (failed or inconclusive)."""
        return [g for g in self.gates if not g.passed]

    def undecided(self) -> list[GateResult]:
        """Gates the test rows could not decide (interval straddles the limit or is
        undefined): they do not pass, but the data could not tell, unlike a fail."""
        return [g for g in self.gates if g.verdict == Verdict.INCONCLUSIVE.value]

    def verdict(self) -> Verdict:
        """pass when every gate passed; fail when any failed; else inconclusive."""
        if self.passed:
            return Verdict.PASS
        if any(g.verdict == Verdict.FAIL.value for g in self.gates) or not self.gates:
            return Verdict.FAIL
        return Verdict.INCONCLUSIVE

    def reason(self) -> str:
        """One line: which gates failed and by how much (or that all passed)."""
        if self.passed:
            return f"all {len(self.gates)} gates passed (policy {self.policy_version})"
        if not self.gates:
            return f"policy {self.policy_version} has no gates"
        failed = [g.reason for g in self.gates if g.verdict == Verdict.FAIL.value]
        undecided = [g.reason for g in self.undecided()]
        if failed:
            return "gates failed: " + "; ".join(failed + [f"inconclusive: {r}" for r in undecided])
        return "gates inconclusive: " + "; ".join(undecided)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict().value,
            "policy_version": self.policy_version,
            "reason": self.reason(),
            "gates": [asdict(g) for g in self.gates],
        }


def _settle(judgement: Judgement) -> str:
    if not math.isfinite(judgement.low):
        return f"inconclusive: {judgement.explanation()}"
    if judgement.needed is None:
        return "inconclusive: the estimate sits at the limit"
    return f"inconclusive: about {judgement.needed:,} test rows would likely settle it"


def threshold_gate(metric: str, judgement: Judgement) -> GateResult:
    """A metric's gate: pass when the interval's lower bound reaches the limit."""
    j = judgement
    shown = f"{metric} {j.estimate:.3f} [{j.low:.3f}, {j.high:.3f}]"
    if j.verdict is Verdict.PASS:
        reason = f"{shown}: lower bound {j.low:.3f} reaches {j.limit:.3f}"
    elif j.verdict is Verdict.FAIL:
        reason = f"{shown}: upper bound {j.high:.3f} is below {j.limit:.3f}"
    else:
        reason = f"{shown}: lower bound {j.low:.3f} is below {j.limit:.3f} ({_settle(j)})"
    return _result(f"min_{metric}", metric, j, reason)


def non_inferiority_gate(metric: str, reference: str, judgement: Judgement) -> GateResult:
    """Pass when candidate - reference is at least -margin with the policy's confidence."""
    j = judgement
    shown = f"{metric} vs {reference}: difference {j.estimate:.3f} [{j.low:.3f}, {j.high:.3f}]"
    margin = f"margin {j.limit:.3f}"
    if j.verdict is Verdict.PASS:
        reason = f"{shown}: lower bound {j.low:.3f} within {margin}"
    elif j.verdict is Verdict.FAIL:
        reason = f"{shown}: upper bound {j.high:.3f} beyond {margin}"
    else:
        reason = f"{shown}: lower bound {j.low:.3f} beyond {margin} ({_settle(j)})"
    return _result(f"non_inferior_to_{reference}", f"{metric}_difference", j, reason)


def _result(name: str, metric: str, j: Judgement, reason: str) -> GateResult:
    return GateResult(name=name, metric=metric, value=j.estimate, ci_low=j.low, ci_high=j.high,
                      limit=j.limit, passed=j.passed, reason=reason, verdict=j.verdict.value,
                      method=j.method, p_value=j.p_value,
                      rows_needed=j.needed if j.verdict is Verdict.INCONCLUSIVE else None)


def apply_policy(
    policy: ReleasePolicy, candidate: dict[str, Judgement], differences: dict[str, Judgement],
) -> PolicyVerdict:
    """Collect the candidate's metric gates and the non-inferiority gate against each
    reference present in ``differences`` (baseline always; champion once one exists).
    ``candidate`` maps each gated metric to its judgement against the gate's limit."""
    verdict = PolicyVerdict(policy_version=policy.policy_version)
    for gate in policy.gates:
        verdict.gates.append(threshold_gate(gate.metric, candidate[gate.metric]))
    ni = policy.non_inferiority
    for reference in ni.against:
        if reference in differences:
            verdict.gates.append(non_inferiority_gate(ni.metric, reference, differences[reference]))
    return verdict
