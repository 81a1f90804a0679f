"""The run report in a real headless browser (Debian's chromium, scripts/install-services.sh).

Through the Chrome DevTools Protocol: the page loads with no console error or uncaught
exception, every image has decoded (natural width above zero), and the numbers a reader needs
(PR-AUC with its interval, every gate's verdict, the data version) are on the page, for a
passing run and for a run that failed validation. A control page with a broken image and a
console error proves the checks can fail.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless chromium on a loopback DevTools port; ``load`` opens a file in a fresh tab."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM, "chromium is not installed: run scripts/install-services.sh"
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = self._port()

    def _port(self) -> int:
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                return int(found.group(1))
            if not line and self.proc.poll() is not None:
                break
        raise AssertionError("chromium did not start its DevTools endpoint")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def load(self, page: Path) -> dict[str, Any]:
        """Open ``page``; return console errors, each image's natural width, and the page text."""
        import websocket

        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?about:blank", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            target = json.loads(response.read())
        ws = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=30)
        errors: list[str] = []
        ids = iter(range(1, 1_000_000))

        def call(method: str, **params: Any) -> dict[str, Any]:
            call_id = next(ids)
            ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
            while True:
                message = json.loads(ws.recv())
                collect(message)
                if message.get("id") == call_id:
                    assert "error" not in message, message
                    return dict(message.get("result", {}))

        def collect(message: dict[str, Any]) -> None:
            method, params = message.get("method"), message.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(str(params["exceptionDetails"].get("text")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(str(params["entry"].get("text")))

        try:
            for domain in ("Page", "Runtime", "Log"):
                call(f"{domain}.enable")
            call("Page.navigate", url=page.resolve().as_uri())
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = json.loads(ws.recv())
                collect(message)
                if message.get("method") == "Page.loadEventFired":
                    break
            else:
                raise AssertionError(f"{page} did not finish loading")
            script = (
                "JSON.stringify({images: Array.from(document.images).map(i => "
                "({alt: i.alt, complete: i.complete, width: i.naturalWidth})), "
                "text: document.body.innerText})"
            )
            value = call("Runtime.evaluate", expression=script, returnByValue=True)["result"]["value"]
            time.sleep(0.2)  # late console messages
            ws.settimeout(0.5)
            try:
                while True:
                    collect(json.loads(ws.recv()))
            except websocket.WebSocketTimeoutException:
                pass
            return {"errors": errors, **json.loads(value)}
        finally:
            ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, real_frame: pd.DataFrame) -> dict[str, Any]:
    """A passing run on the embedded data and a run whose data fails validation (Celsius)."""
    from shopfloor.data import schema
    from shopfloor.notebook import run_pipeline

    work = tmp_path_factory.mktemp("report-runs")
    bad = real_frame.copy()
    for column in (schema.AIR_TEMPERATURE, schema.PROCESS_TEMPERATURE):
        bad[column] = (bad[column] - 273.15).round(1)
    bad.to_csv(work / "celsius.csv", index=False)
    common = {"output": work / "runs", "registry": work / "registry", "progress": False}
    return {"passed": run_pipeline(**common), "failed": run_pipeline(str(work / "celsius.csv"), **common)}


def _interval(estimate: dict[str, float]) -> str:
    return f"{estimate['value']:.3f} [{estimate['ci_low']:.3f}, {estimate['ci_high']:.3f}]"


def test_passing_run_report_renders_with_its_numbers(browser: Browser, runs: dict[str, Any]) -> None:
    run = runs["passed"]
    assert run.passed, run.reason
    page = browser.load(run.report_path)
    assert page["errors"] == []
    assert len(page["images"]) >= 7  # PR, ROC, calibration, confusion, per type, equivalence, sensors
    assert all(img["complete"] and img["width"] > 0 for img in page["images"]), page["images"]
    text = page["text"]
    assert run.data_version and run.data_version in text
    assert _interval(run.summary["metrics"]["keras"]["pr_auc"]) in text
    shipped = run.shipped
    assert shipped and _interval(shipped["pr_auc"]) in text and f"{shipped['family']} (LiteRT" in text
    for gate in run.summary["gates"]["gates"]:
        assert re.search(rf"{re.escape(gate['name'])}\s+pass\b", text), gate["name"]
    assert "passed" in text and run.registered and run.registered in text


def test_failed_validation_report_names_the_failure(browser: Browser, runs: dict[str, Any]) -> None:
    run = runs["failed"]
    assert run.status == "failed" and run.checks["validation"] == "failed"
    page = browser.load(run.report_path)
    assert page["errors"] == []
    assert len(page["images"]) >= 1  # the sensors against the reference profile
    assert all(img["complete"] and img["width"] > 0 for img in page["images"]), page["images"]
    text = page["text"]
    assert run.data_version and run.data_version in text
    assert "FAIL" in text and "air_temperature_k" in text
    assert re.search(r"gates\s+not_run", text), "gates did not run and the page says so"
    assert run.summary["failure"]["step"] == "validate"


def test_the_checks_see_a_broken_page(browser: Browser, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html><body><img alt="x" src="data:image/png;base64,AAAA">'
        "<script>console.error('boom')</script></body></html>"
    )
    loaded = browser.load(page)
    assert any("boom" in e for e in loaded["errors"])
    assert loaded["images"] and loaded["images"][0]["width"] == 0
