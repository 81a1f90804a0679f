"""examples/quickstart.ipynb, executed top to bottom with nbclient in a real Python kernel.

The notebook runs the real pipeline twice (a candidate, then a challenger judged against it as
champion) in a temporary directory with its own registry; the cluster cell stays off (no
SHOPFLOOR_KFP_HOST). The repository copy must carry no outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "examples" / "quickstart.ipynb"


def _text(cell: Any) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out:
            parts.append(str(out["data"].get("text/plain", "")))
            parts.append(str(out["data"].get("text/html", "")))
    return "\n".join(parts)


def test_repository_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, "the quickstart has code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.slow
def test_quickstart_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nbclient import NotebookClient

    monkeypatch.setenv("SHOPFLOOR_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.delenv("SHOPFLOOR_KFP_HOST", raising=False)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    nb = nbformat.read(work / NOTEBOOK.name, as_version=4)
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(work)}}
    )
    client.execute()

    code = [c for c in nb.cells if c.cell_type == "code"]
    by_source = {c.source.splitlines()[0] if c.source else "": c for c in code}
    outputs = "\n".join(_text(c) for c in code)
    assert "Traceback" not in outputs
    first = by_source["run = shopfloor.run_pipeline(output=OUTPUT)"]
    for step in ("ingest", "validate", "train", "evaluate", "convert", "register"):
        assert f"  {step}" in _text(first), step  # live progress lines
    assert "'passed'" in _text(first)
    display = _text(by_source["run"])
    assert "PR-AUC [95% CI]" in display and "data:image/png;base64," in display
    images = [o for c in code for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 2, "the PR curve and the per-product-type plot are shown inline"
    assert "compared with champion: v0001" in outputs
    shipped = _text(by_source["run.shipped"])
    assert "'family':" in shipped and "'pr_auc':" in shipped and ".tflite" in shipped
    assert "skipping the cluster submission" in outputs
    assert list((work / "runs").glob("shopfloor-training-*/report.html")), "each run writes its report"
