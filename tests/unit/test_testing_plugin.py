"""The pytest plugin, driven through pytester: verdicts, options, seeds, the family
correction, the summary table and the JUnit XML properties."""

from __future__ import annotations

import importlib.metadata
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import numpy as np
import pytest
import scipy.optimize
import scipy.stats

import shopfloor.evaluation.decision
import shopfloor.evaluation.drift
import shopfloor.evaluation.metrics
from shopfloor.testing import (
    StatisticalAssertionError,
    _state,
    assert_agreement,
    assert_latency,
    assert_metric,
    assert_no_drift,
    assert_non_inferior,
)

pytest_plugins = ["pytester"]
#: Imported here, before any in-process pytester run: a run drops the modules it imported
#: first, and numpy's extensions cannot be imported twice in one process.
PRELOADED = (scipy.optimize, scipy.stats, shopfloor.evaluation.decision, shopfloor.evaluation.drift,
             shopfloor.evaluation.metrics)

DATA = """
import numpy as np
from shopfloor.testing import assert_agreement, assert_metric

rng = np.random.default_rng(0)
y = (rng.random(3000) < 0.1).astype(int)
good = rng.normal(0, 1, 3000) + 3 * y
weak = rng.normal(0, 1, 3000) + 1 * y
"""


@pytest.fixture
def isolated() -> Iterator[_state.Run]:
    """A run of its own, so these direct calls stay out of this suite's family."""
    run = _state.Run(_state.Settings(alpha=0.05), keep=True)
    _state.push(run)
    yield run
    _state.pop(run)


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The plugin is the installed entry point; shopfloor is imported already in-process."""
    quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning")
    return pytester.runpytest("-p", "no:cacheprovider", *quiet, *args)


def test_installing_shopfloor_registers_the_plugin() -> None:
    points = importlib.metadata.entry_points(group="pytest11")
    assert any(p.name == "shopfloor" and p.value == "shopfloor.testing.plugin" for p in points)


def test_pass_fail_and_inconclusive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DATA + """
def test_good():
    assert_metric(y, good, metric="roc_auc", at_least=0.9)

def test_weak():
    assert_metric(y, weak, metric="roc_auc", at_least=0.9)

def test_few():
    assert_metric(y[:80], weak[:80], metric="roc_auc", at_least=0.75)
""")
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines([
        "*roc_auc >= 0.9: fail (the whole interval is on the wrong side of the limit)*",
        "*roc_auc >= 0.75: inconclusive (the interval straddles the limit: too few cases; about * more*",
        "*statistical assertions*",
        "family: 3 assertions in 3 tests that ran; holm correction, one-sided alpha 0.05, seed 0",
        "*test_good#1*roc_auc >= 0.9*pass*pass*",
        "*test_weak#1*roc_auc >= 0.9*fail*fail*",
        "*test_few#1*roc_auc >= 0.75*inconclusive*inconclusive*",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(("mode", "outcome"), [
    ("xfail", {"xfailed": 1}), ("warn", {"passed": 1, "warnings": 1}), ("fail", {"failed": 1})])
def test_inconclusive_is_never_a_silent_pass(
    pytester: pytest.Pytester, mode: str, outcome: dict[str, int],
) -> None:
    pytester.makepyfile(DATA + """
def test_few():
    assert_metric(y[:80], weak[:80], metric="roc_auc", at_least=0.75)
""")
    result = _run(pytester, f"--stat-inconclusive={mode}", "-rx")
    result.assert_outcomes(**outcome)
    result.stdout.fnmatch_lines(["*test_few#1*inconclusive*"])
    if mode == "warn":
        result.stdout.fnmatch_lines(["*InconclusiveWarning: roc_auc >= 0.75: inconclusive*"])
    if mode == "xfail":
        result.stdout.fnmatch_lines(["*XFAIL*statistical assertion inconclusive*"])


HOLM = """
from shopfloor.testing import assert_agreement

def test_clear():
    assert_agreement([1] * 1000, [1] * 1000, at_least=0.98)

def test_borderline():  # p = 0.034: a pass at 0.05 alone, not among three
    assert_agreement([1] * 992 + [0] * 8, [1] * 1000, at_least=0.985)

def test_unsettled():
    assert_agreement([1] * 95 + [0] * 5, [1] * 100, at_least=0.95)
"""


def test_a_pass_that_does_not_survive_holm_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HOLM)
    result = _run(pytester, "--stat-inconclusive=warn")
    result.assert_outcomes(passed=3, warnings=1)
    result.stdout.fnmatch_lines([
        "*test_borderline#1*agreement >= 0.985*pass*inconclusive (was pass)*",
        "*1 pass(es) did not survive holm correction (now inconclusive): the run fails*",
    ])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    uncorrected = _run(pytester, "--stat-inconclusive=warn", "--stat-correction=none")
    assert uncorrected.ret == pytest.ExitCode.OK
    alone = _run(pytester, "-k", "borderline")
    assert alone.ret == pytest.ExitCode.OK  # a subset is its own family: one claim, nothing to correct
    alone.stdout.fnmatch_lines(["family: 1 assertions in 1 tests that ran*a subset (2 tests deselected): "
                                "its own family*"])


def test_seeds_come_from_the_node_id_and_the_session_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(DATA + """
def test_a():
    assert_metric(y, good, metric="pr_auc", at_least=0.5, resamples=200)
""")
    first, again = (_run(pytester) for _ in range(2))
    other = _run(pytester, "--stat-seed=7")

    def row(result: pytest.RunResult) -> str:
        return next(line for line in result.outlines if "test_a#1" in line)

    assert row(first) == row(again)
    assert row(first) != row(other)


def test_junit_xml_carries_each_assertion(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HOLM)
    _run(pytester, "--stat-inconclusive=warn", "--junitxml=report.xml")
    root = ET.parse(pytester.path / "report.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_borderline")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["stat.1.assertion"] == "assert_agreement: agreement >= 0.985"
    assert props["stat.1.verdict"] == "pass" and props["stat.1.method"] == "wilson"
    assert float(props["stat.1.estimate"]) == 0.992 and float(props["stat.1.limit"]) == 0.985
    assert float(props["stat.1.ci_low"]) < float(props["stat.1.estimate"]) < float(props["stat.1.ci_high"])
    suite = {p.get("name"): p.get("value") for p in root.iter("property")
             if p.get("name", "").startswith("stat.test")}
    label = "stat.test_junit_xml_carries_each_assertion.py::test_borderline#1"
    assert suite[f"{label}.adjusted_verdict"] == "inconclusive"
    assert float(suite[f"{label}.adjusted_p"]) > 0.05


def test_bad_options_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = _run(pytester, "--stat-alpha=0.7")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--stat-alpha must be in (0, 0.5), got 0.7*"])
    pytester.makeini("[pytest]\nstat_correction = fdr\n")
    assert _run(pytester).ret == pytest.ExitCode.USAGE_ERROR


def test_ini_options_set_the_defaults(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nstat_alpha = 0.01\nstat_inconclusive = xfail\n")
    pytester.makepyfile(DATA + """
def test_few():
    assert_metric(y[:80], weak[:80], metric="roc_auc", at_least=0.75)
""")
    result = _run(pytester)
    result.assert_outcomes(xfailed=1)
    result.stdout.fnmatch_lines(["family:*one-sided alpha 0.01*"])


# -- the public assertions called directly --------------------------------------------------------
def test_assertions_outside_the_plugin(isolated: _state.Run) -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.1).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, 4000) + 3 * y - 3)))
    machines = rng.integers(0, 40, 4000)
    assert assert_metric(y, p, metric="pr_auc", at_least=0.5, groups=machines).unit == "groups"
    assert assert_metric(y, p, metric="brier", at_most=0.1).passed
    assert assert_non_inferior(y, p, p, metric="roc_auc", margin=0.01).estimate == 0.0
    with pytest.raises(StatisticalAssertionError, match="fail"):
        assert_non_inferior(y, rng.random(4000), p, metric="roc_auc", margin=0.05)
    assert assert_agreement(p > 0.5, p > 0.5, at_least=0.99).passed
    assert_no_drift(rng.normal(size=3000), rng.normal(size=3000))
    assert [r.assertion for r in isolated.records] == [
        "assert_metric", "assert_metric", "assert_non_inferior", "assert_non_inferior", "assert_agreement",
        "assert_no_drift"]
    assert [r.index for r in isolated.records] == [1, 2, 3, 4, 5, 6]


def test_clustered_cases_give_wider_intervals(isolated: _state.Run) -> None:
    """Readings of one machine share its quirks: resampling machines, not rows, says so."""
    rng = np.random.default_rng(2)
    machines = np.repeat(np.arange(20), 200)
    quirk = rng.normal(0, 1.0, 20)[machines]  # a machine-level offset hits every reading
    y = (rng.random(4000) < 0.1).astype(int)
    score = y * 2.0 + quirk * (1 - 2 * (rng.random(20)[machines] < 0.5)) + rng.normal(0, 1, 4000)
    rows = assert_metric(y, score, metric="roc_auc", at_least=0.5)
    whole = assert_metric(y, score, metric="roc_auc", at_least=0.5, groups=machines)
    assert whole.high - whole.low > 1.3 * (rows.high - rows.low)


def test_latency_with_an_injected_clock(isolated: _state.Run) -> None:
    ticks = iter(range(10**6))
    slow_every_50th = [5.0 if i % 50 == 0 else 1.0 for i in range(2000)]
    state = {"call": 0}

    def clock() -> float:  # advances by the duration of the call in progress
        return float(next(ticks) // 2 * 0 + sum(slow_every_50th[: state["call"]]))

    def work() -> None:
        state["call"] += 1

    judged = assert_latency(work, at_most=2.0, quantile=0.9, calls=1000, warmup=0, clock=clock)
    assert judged.estimate == 1.0 and judged.high <= 2.0
    with pytest.raises(StatisticalAssertionError, match="latency p99 <= 2: fail"):
        assert_latency(slow_every_50th[:1000], at_most=2.0, quantile=0.99)
