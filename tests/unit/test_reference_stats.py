"""Reference statistics of the training data: computed, bounded, strict, carried by new versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopfloor import contract
from shopfloor.contract import ReferenceStats
from shopfloor.edge.reference_stats import QUANTILE_LEVELS, compute_reference_stats, write_reference_stats
from shopfloor.errors import IntegrityError, InvalidInputError
from shopfloor.registry import AssemblyError, assemble_version, describe_version, open_registry
from tests.fixtures.versions import SCHEMA1_REGISTRY, make_run_dir, make_version_dir, write_edge_model


def _data(n: int = 2000, f: int = 4) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, f)) * np.arange(1, f + 1) + np.arange(f)
    p = 1.0 / (1.0 + np.exp(-x[:, 0]))
    return x, p


def test_quantiles_histograms_and_moments_describe_the_data() -> None:
    x, p = _data()
    names = ("a", "b", "c", "d")
    stats = compute_reference_stats(x, names, {"int8": p, "float32": p}, data_version="sha256:x")
    assert stats.n_rows == 2000 and [d.name for d in stats.features] == list(names)
    for i, d in enumerate(stats.features):
        assert d.quantiles == pytest.approx(np.quantile(x[:, i], QUANTILE_LEVELS))
        assert d.mean == pytest.approx(x[:, i].mean()) and d.std == pytest.approx(x[:, i].std())
        assert sum(d.bin_counts) == 2000 and d.bin_edges[0] == d.min and d.bin_edges[-1] == d.max
        counts, _ = np.histogram(x[:, i], bins=np.array(d.bin_edges))
        assert list(counts) == list(d.bin_counts)
    pred = stats.predictions["int8"]
    assert 0.0 <= pred.min <= pred.quantiles[5] <= pred.max <= 1.0
    assert pred.quantiles[5] == pytest.approx(np.median(p))
    assert stats.feature("c") is stats.features[2] and stats.feature("nope") is None
    assert ReferenceStats.from_dict(json.loads(contract.dumps(stats.to_dict()))) == stats


def test_a_constant_feature_still_gets_a_valid_histogram() -> None:
    x = np.zeros((10, 1))
    d = compute_reference_stats(x, ("type_L",), {}).features[0]
    assert d.min == d.max == 0.0 and d.bin_counts[0] == 10 and sum(d.bin_counts) == 10


def test_bounded_size_for_a_wide_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = tuple(f"f{i}" for i in range(contract.MAX_REFERENCE_VARIABLES))
    stats = compute_reference_stats(rng.normal(size=(500, len(names))), names, {"int8": rng.random(500)})
    path = write_reference_stats(tmp_path, stats)
    assert path.stat().st_size <= contract.MAX_REFERENCE_STATS_BYTES
    assert contract.load_reference_stats(tmp_path) == stats
    with pytest.raises(InvalidInputError, match="at most"):
        compute_reference_stats(np.zeros((5, len(names) + 1)), (*names, "extra"), {})


@pytest.mark.parametrize(("change", "problem"), [
    (lambda d: d.update(surprise=1), "unknown field"),
    (lambda d: d["features"][0].update(bin_counts=[1]), "one more edge than bins"),
    (lambda d: d["features"][0].update(count=3), "add up to count"),
    (lambda d: d["features"][0].update(quantiles=[0.0]), "quantiles for"),
    (lambda d: d["predictions"].update(fp16=d["predictions"]["int8"]), "unknown formats"),
    (lambda d: d.update(schema_version=99), "newer than this shopfloor reads"),
    (lambda d: d["features"][0].update(mean="high"), "must be a number"),
])
def test_the_document_is_read_strictly(change: object, problem: str) -> None:
    x, p = _data(100, 2)
    doc = compute_reference_stats(x, ("a", "b"), {"int8": p}).to_dict()
    change(doc)  # type: ignore[operator]
    with pytest.raises(IntegrityError, match=problem):
        ReferenceStats.from_dict(doc)
    with pytest.raises(InvalidInputError, match="all finite"):
        compute_reference_stats(np.array([[np.nan]]), ("a",), {})


def test_new_versions_carry_it_and_older_ones_read_without(tmp_path: Path) -> None:
    version_dir = make_version_dir(tmp_path / "build")
    registry = open_registry(tmp_path / "registry")
    manifest = registry.publish(version_dir, run_id="r1")
    assert contract.REFERENCE_STATS in manifest.files
    fetched = registry.fetch(manifest.version, tmp_path / "fetched")
    stats = contract.load_reference_stats(fetched)
    assert stats is not None and [d.name for d in stats.features] == ["torque_nm", "tool_wear_min", "power_w"]
    old = open_registry(SCHEMA1_REGISTRY)
    old_version = old.list_versions()[0]
    assert contract.REFERENCE_STATS not in old.show(old_version).files
    assert contract.load_reference_stats(old.fetch(old_version, tmp_path / "old")) is None


def test_assembly_copies_it_from_the_edge_model_and_refuses_a_broken_one(tmp_path: Path) -> None:
    run = make_run_dir(tmp_path / "runs")
    edge = contract.run_output(run, "edge_model")
    # A run converted before reference statistics existed still assembles, without them.
    (edge / contract.REFERENCE_STATS).unlink()
    assert not (assemble_version(run, tmp_path / "v-old") / contract.REFERENCE_STATS).exists()
    write_edge_model(edge)
    assembled = assemble_version(run, tmp_path / "v-new")
    copied = (assembled / contract.REFERENCE_STATS).read_bytes()
    assert copied == (edge / contract.REFERENCE_STATS).read_bytes()
    assert contract.REFERENCE_STATS in describe_version(assembled).files
    doc = json.loads((assembled / contract.REFERENCE_STATS).read_text())
    doc["features"][0]["bin_counts"] = [1]
    (assembled / contract.REFERENCE_STATS).write_text(json.dumps(doc))
    with pytest.raises(AssemblyError, match=r"reference_stats\.json does not load"):
        describe_version(assembled)


def test_the_convert_step_writes_it_from_the_training_rows(tmp_path: Path) -> None:
    """The real convert step on the real trained model of the schema-1 fixture (TensorFlow)."""
    import shutil

    from shopfloor.conversion.step import convert_step
    from shopfloor.data import EMBEDDED_DATASET
    from shopfloor.data.ingest import ingest, read_split
    from shopfloor.inference.features import Featurizer

    ingest(EMBEDDED_DATASET, tmp_path / "data")
    trained = SCHEMA1_REGISTRY / "ai4i-failure" / "v0001"
    model = tmp_path / "model"
    shutil.copytree(trained / contract.SAVED_MODEL_DIR, model / contract.SAVED_MODEL_DIR)
    shutil.copy(trained / contract.FEATURE_SPEC, model / contract.FEATURE_SPEC)
    (tmp_path / "evaluation").mkdir()
    (tmp_path / "evaluation" / contract.EVALUATION_REPORT).write_text(
        json.dumps({"threshold": 0.5, "bootstrap": {"seed": 0}}))
    result = convert_step(tmp_path / "data", model, tmp_path / "evaluation", tmp_path / "edge",
                          tmp_path / "equivalence.json", data_version="sha256:test")
    assert result.outputs.get("edge_model"), result.reason
    stats = contract.load_reference_stats(tmp_path / "edge")
    assert stats is not None and stats.data_version == "sha256:test"
    featurizer = Featurizer.load(model / contract.FEATURE_SPEC)
    x_train = featurizer.transform(read_split(tmp_path / "data", "train"))
    assert stats.n_rows == len(x_train) and [d.name for d in stats.features] == list(featurizer.names)
    assert stats.features[0].quantiles[5] == pytest.approx(float(np.median(x_train[:, 0])))
    assert set(stats.predictions) == set(contract.LITERT_FORMATS)
    lineage = json.loads((tmp_path / "edge" / contract.MANIFEST).read_text())
    assert contract.REFERENCE_STATS in lineage["files"]  # hashed with the rest of the edge model
