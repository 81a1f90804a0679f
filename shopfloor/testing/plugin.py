"""The pytest plugin (entry point ``pytest11: shopfloor``): options, per-test seeds, the
family correction, the summary table and the JUnit XML properties.

Each statistical assertion reports its own verdict while its test runs (at the run's alpha).
When the session ends, the family -- every statistical assertion that ran; a ``-k``/``-m``
subset is its own family -- is corrected (Holm by default): a pass whose adjusted p-value
exceeds alpha becomes inconclusive, is reported as changed, and fails the run (exit code 1).
Drift checks are listed but not corrected: their pass is a power statement, not a rejection.

Alpha is one-sided and family-wise. The pipeline's gates decide each gate on a two-sided
95 % interval, i.e. one-sided at 0.025 per gate with no correction: the same decision as
``--stat-alpha=0.025 --stat-correction=none``.
"""

from __future__ import annotations

from typing import NoReturn

import pytest

from shopfloor.testing import _state

RUN_KEY = pytest.StashKey[_state.Run]()
_CORRECTIONS = ("holm", "bonferroni", "none")
_DEFAULTS = {"alpha": "0.05", "correction": "holm", "seed": "0", "inconclusive": "fail"}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("shopfloor", "statistical assertions (shopfloor.testing)")
    group.addoption("--stat-alpha", type=float, default=None, metavar="ALPHA",
                    help="one-sided family-wise error rate of the run's statistical assertions "
                         f"(default {_DEFAULTS['alpha']}; ini: stat_alpha)")
    group.addoption("--stat-correction", choices=_CORRECTIONS, default=None,
                    help="family correction applied when the run ends (default holm; ini: stat_correction)")
    group.addoption("--stat-seed", type=int, default=None, metavar="SEED",
                    help="session seed; each assertion's resampling seed derives from it and the "
                         "test's node id (default 0; ini: stat_seed)")
    group.addoption("--stat-inconclusive", choices=_state.INCONCLUSIVE_MODES, default=None,
                    help="what an inconclusive verdict does to its test "
                         "(default fail; ini: stat_inconclusive)")
    for name, default in _DEFAULTS.items():
        parser.addini(f"stat_{name}", f"default of --stat-{name}", default=default)


def _setting(config: pytest.Config, name: str) -> str:
    value = config.getoption(f"--stat-{name}")
    return str(value) if value is not None else str(config.getini(f"stat_{name}"))


def _settings(config: pytest.Config) -> _state.Settings:
    raw = {name: _setting(config, name) for name in _DEFAULTS}
    try:
        alpha, seed = float(raw["alpha"]), int(raw["seed"])
    except ValueError:
        raise pytest.UsageError(f"stat_alpha must be a number and stat_seed an integer, got "
                                f"{raw['alpha']!r} and {raw['seed']!r}") from None
    if not 0.0 < alpha < 0.5:
        raise pytest.UsageError(f"--stat-alpha must be in (0, 0.5), got {alpha}")
    if raw["correction"] not in _CORRECTIONS:
        raise pytest.UsageError(f"stat_correction must be one of {', '.join(_CORRECTIONS)}")
    if raw["inconclusive"] not in _state.INCONCLUSIVE_MODES:
        raise pytest.UsageError(f"stat_inconclusive must be one of {', '.join(_state.INCONCLUSIVE_MODES)}")
    return _state.Settings(alpha, raw["correction"], seed, raw["inconclusive"])


def _xfail(message: str) -> NoReturn:
    __tracebackhide__ = True
    pytest.xfail(f"statistical assertion inconclusive: {message}")


def pytest_configure(config: pytest.Config) -> None:
    run = _state.Run(_settings(config), keep=True, xfail=_xfail)
    config.stash[RUN_KEY] = run
    _state.push(run)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is not None:
        _state.pop(run)


def pytest_deselected(items: list[pytest.Item]) -> None:
    if items:
        run = items[0].config.stash.get(RUN_KEY, None)
        if run is not None:
            run.deselected += len(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    run = item.config.stash.get(RUN_KEY, None)
    if run is None:
        return (yield)
    run.begin(item.nodeid, item.user_properties)
    try:
        return (yield)
    finally:
        run.end()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Correct the family; fail the run when a pass does not survive; add the adjusted
    verdicts to the JUnit XML report (before it is written)."""
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.records:
        return
    from shopfloor.evaluation.decision import adjust, adjusted_verdict

    family = [r for r in run.records if r.in_family]
    for record, p in zip(family, adjust([r.result.p_value for r in family], run.settings.correction),
                         strict=True):
        record.adjusted_p = p
        record.adjusted_verdict = adjusted_verdict(record.result, p).verdict.value
    for record in run.records:
        if not record.in_family:
            record.adjusted_verdict = record.verdict
    if any(r.changed for r in run.records) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    _junit_properties(session.config, run)


def _family_line(run: _state.Run) -> str:
    s = run.settings
    family = [r for r in run.records if r.in_family]
    tests = len({r.nodeid for r in run.records})
    line = (f"family: {len(family)} assertions in {tests} tests that ran; {s.correction} correction, "
            f"one-sided alpha {s.alpha:g}, seed {s.seed}")
    if run.deselected:
        line += f"; a subset ({run.deselected} tests deselected): its own family"
    if len(family) < len(run.records):
        line += "; drift checks listed, not corrected (a pass is a power statement)"
    return line


def _row(record: _state.Record) -> list[str]:
    r = record.result
    if hasattr(r, "power"):
        estimate, interval = f"{r.statistic:.4g}", f"power {r.power:.2f}"
    else:
        estimate, interval = f"{r.estimate:.4g}", r.interval()
    adjusted = record.adjusted_verdict or "-"
    if record.changed:
        adjusted = f"{adjusted} (was {record.verdict})"
    p = f"{record.adjusted_p:.3g}" if record.adjusted_p is not None else "-"
    return [record.label, r.claim, estimate, interval, p, record.verdict, adjusted]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else "…" + text[-(width - 1):]


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None or not run.records:
        return
    tr = terminalreporter
    tr.write_sep("=", "statistical assertions")
    tr.write_line(_family_line(run))
    header = ["assertion", "claim", "estimate", "interval", "adj. p", "verdict", "adjusted"]
    rows = [header] + [_row(r) for r in run.records]
    rows = [[_fit(row[0], 60), _fit(row[1], 50), *row[2:]] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        changed = i > 0 and run.records[i - 1].changed
        tr.write_line(line, red=changed, bold=i == 0)
    demoted = [r for r in run.records if r.changed]
    if demoted:
        tr.write_line(f"{len(demoted)} pass(es) did not survive {run.settings.correction} correction "
                      f"(now inconclusive): the run fails", red=True, bold=True)


def _junit_properties(config: pytest.Config, run: _state.Run) -> None:
    """The family's adjusted verdicts as test-suite properties of the JUnit XML report (each
    test case carries its own assertion's figures as test-case properties already)."""
    try:
        from _pytest.junitxml import xml_key  # what record_testsuite_property uses
    except ImportError:  # pragma: no cover - a pytest without junitxml
        return
    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    xml.add_global_property("stat.family", _family_line(run))
    for record in run.records:
        xml.add_global_property(f"stat.{record.label}.adjusted_verdict", record.adjusted_verdict or "")
        if record.adjusted_p is not None:
            xml.add_global_property(f"stat.{record.label}.adjusted_p", f"{record.adjusted_p:.6g}")
