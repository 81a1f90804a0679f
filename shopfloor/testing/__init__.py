"""Statistical assertions for model quality in any test suite (and a pytest plugin).

``assert_metric(y_true, y_score, metric="pr_auc", at_least=0.8)`` passes when the metric's
confidence bound clears the limit, fails when the whole interval is on the wrong side and is
inconclusive (never a silent pass) when the cases cannot tell, saying how many more would
likely settle it. Installing shopfloor registers the pytest plugin (``--stat-alpha``,
``--stat-correction``, ``--stat-seed``, ``--stat-inconclusive``), which seeds each assertion
from the test's node id, controls the error rate of the whole run (Holm) and prints a summary
table; see :mod:`shopfloor.testing.plugin`.
"""

from shopfloor.testing.assertions import (
    InconclusiveWarning,
    StatisticalAssertionError,
    assert_agreement,
    assert_calibrated,
    assert_latency,
    assert_metric,
    assert_no_drift,
    assert_non_inferior,
)

__all__ = [
    "InconclusiveWarning",
    "StatisticalAssertionError",
    "assert_agreement",
    "assert_calibrated",
    "assert_latency",
    "assert_metric",
    "assert_no_drift",
    "assert_non_inferior",
]
