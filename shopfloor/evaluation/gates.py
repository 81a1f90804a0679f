"""Gates: a model passes on the LOWER bound of its interval, never on a lucky point value."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from shopfloor.evaluation.stats import Estimate


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


@dataclass
class Verdict:
    """Every gate of a policy applied to one candidate."""

    policy_version: str
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    def failed(self) -> list[GateResult]:
        return [g for g in self.gates if not g.passed]

    def reason(self) -> str:
        """One line: which gates failed and by how much (or that all passed)."""
        if self.passed:
            return f"all {len(self.gates)} gates passed (policy {self.policy_version})"
        return "gates failed: " + "; ".join(g.reason for g in self.failed())

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "policy_version": self.policy_version,
            "reason": self.reason(),
            "gates": [asdict(g) for g in self.gates],
        }


def threshold_gate(metric: str, estimate: Estimate, min_ci_low: float) -> GateResult:
    """Pass when the interval's lower bound reaches the limit."""
    passed = estimate.ci_low >= min_ci_low
    word = "reaches" if passed else "is below"
    return GateResult(
        name=f"min_{metric}",
        metric=metric,
        value=estimate.value,
        ci_low=estimate.ci_low,
        ci_high=estimate.ci_high,
        limit=min_ci_low,
        passed=passed,
        reason=f"{metric} {estimate}: lower bound {estimate.ci_low:.3f} {word} {min_ci_low:.3f}",
    )


def non_inferiority_gate(metric: str, reference: str, difference: Estimate, margin: float) -> GateResult:
    """Pass when candidate - reference is above -margin with 95 % confidence."""
    passed = difference.ci_low > -margin
    word = "within" if passed else "beyond"
    return GateResult(
        name=f"non_inferior_to_{reference}",
        metric=f"{metric}_difference",
        value=difference.value,
        ci_low=difference.ci_low,
        ci_high=difference.ci_high,
        limit=-margin,
        passed=passed,
        reason=(
            f"{metric} vs {reference}: difference {difference} lower bound "
            f"{difference.ci_low:.3f} {word} margin -{margin:.3f}"
        ),
    )


def apply_policy(
    policy: dict[str, Any],
    candidate: dict[str, Estimate],
    differences: dict[str, Estimate],
) -> Verdict:
    """Apply absolute gates to the candidate's metrics and non-inferiority against each
    reference present in ``differences`` (baseline always; champion once one exists)."""
    verdict = Verdict(policy_version=str(policy["policy_version"]))
    for gate in policy["gates"]:
        verdict.gates.append(
            threshold_gate(gate["metric"], candidate[gate["metric"]], float(gate["min_ci_low"]))
        )
    ni = policy["non_inferiority"]
    for reference in ni.get("against", ["baseline", "champion"]):
        if reference in differences:
            verdict.gates.append(
                non_inferiority_gate(ni["metric"], reference, differences[reference], float(ni["margin"]))
            )
    return verdict
