"""The cloud predictor serves the format the version names, not an assumed int8: an MLP version
its int8 file, a tree version (float32 only, family hist-gbt) its float32 file; V2 metadata and
``shopfloor_model_info`` say what is served; an explicit format the version lacks is one line.

Real processes (``python -m shopfloor.serving``, ``shopfloor serve``) on loopback, with the real
trained version of ``tests/fixtures/registry-schema1`` and a tree-like copy of it
(:func:`tests.fixtures.versions.as_tree_version`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest

from shopfloor.data import schema
from shopfloor.inference.predictor import Predictor
from tests.conftest import run_cli
from tests.fixtures.versions import PUBLISHED_MLP, as_tree_version
from tests.integration.predictor import MODEL, free_port, running_predictor
from tests.v2_cases import INFER, ROWS, tensors


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formats")
    mlp = Path(shutil.copytree(PUBLISHED_MLP, root / "mlp" / "v0001"))
    tree = as_tree_version(Path(shutil.copytree(PUBLISHED_MLP, root / "tree" / "v0001")))
    return {"mlp": mlp, "tree": tree}


@pytest.mark.parametrize(("family", "expected"), [("mlp", "int8"), ("tree", "float32")])
def test_auto_serves_the_version_s_own_format(versions: dict[str, Path], tmp_path: Path, family: str,
                                              expected: str) -> None:
    version_dir = versions[family]
    with running_predictor(version_dir, tmp_path, "--grpc-port", "0") as p:  # no --format: auto
        meta = httpx.get(f"{p.url}/v2/models/{MODEL}", timeout=10).json()
        metrics = httpx.get(f"{p.url}/metrics", timeout=10).text
        answer = httpx.post(p.url + INFER.format(model=MODEL), json={"inputs": tensors()}, timeout=10).json()
    assert (meta["platform"], meta["versions"]) == ("tflite", ["v0001"])
    (info,) = [line for line in metrics.splitlines() if line.startswith("shopfloor_model_info{")]
    assert re.search(rf'format="{expected}",.*platform="tflite"', info), info
    served = {o["name"]: o["data"] for o in answer["outputs"]}
    core = Predictor.load(version_dir, expected)  # the file named: same answers, bit for bit
    columns = {k: np.asarray(v, dtype=object if k == schema.PRODUCT_TYPE else np.float64)
               for k, v in ROWS.items()}
    want = core.predict(columns).probability.astype(np.float32)
    assert np.asarray(served["failure_probability"], dtype=np.float32).tobytes() == want.tobytes()


def test_an_explicit_format_the_version_lacks_is_one_line(versions: dict[str, Path], tmp_path: Path) -> None:
    port = free_port()  # should the refusal ever not happen, the server binds loopback only
    done = run_cli("serve", "--model-dir", str(versions["tree"]), "--format", "int8",
                   "--http-port", str(port), "--grpc-port", "0", cwd=tmp_path, timeout=120)
    assert done.returncode == 3, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines == ["error: version v0001 (hist-gbt) has no int8 model; it has saved_model, float32"], lines


def test_an_explicit_format_the_version_has_is_served(versions: dict[str, Path], tmp_path: Path) -> None:
    """The MLP version's float32 file on request (the default would be int8)."""
    with running_predictor(versions["mlp"], tmp_path, "--grpc-port", "0", "--format", "float32") as p:
        metrics = httpx.get(f"{p.url}/metrics", timeout=10).text
    assert 'format="float32"' in metrics and 'format="int8"' not in metrics
