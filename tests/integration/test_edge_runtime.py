"""The edge runtime as a site runs it: the ``shopfloor edge serve`` console script, on loopback.

A registry with two signed versions of the real trained model (v0002 = v0001 with a lower
decision threshold, so each answer shows which version made it). The shared malformed V2
cases, what the process imports, the same answers as the cloud predictor, the admin API and
its refusals, and a hot swap under load.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import shutil
import struct
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shopfloor import contract
from shopfloor.data import schema
from shopfloor.edge.client import RuntimeClient, pack_version
from shopfloor.errors import MAX_MESSAGE_CHARS, ExternalServiceError, IntegrityError, NotFoundError
from shopfloor.inference.predictor import Predictor
from tests.integration.edge_runtime import (
    MODEL,
    TOKEN,
    Runtime,
    SignedVersions,
    make_signed_versions,
    running_runtime,
)
from tests.v2_cases import INFER, V2_CASES, V2Case, dumps, tensors

HEAVY = ("tensorflow", "kserve", "pandas")


@pytest.fixture(scope="module")
def versions(tmp_path_factory: pytest.TempPathFactory) -> SignedVersions:
    return make_signed_versions(tmp_path_factory.mktemp("edge-versions"))


@pytest.fixture(scope="module")
def runtime(versions: SignedVersions, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """Pulled v0001 from the registry at start, admin API on, debug log (module check)."""
    root = tmp_path_factory.mktemp("edge-runtime")
    with running_runtime(
        root / "store",
        root,
        "--pull",
        str(versions.registry),
        "--version",
        "v0001",
        "--admin-token-file",
        str(versions.token_file),
        "--log-level",
        "DEBUG",
        trust=versions.trust,
    ) as running:
        yield running


def _send(url: str, case: V2Case) -> tuple[int, bytes]:
    path = case.path.format(model=MODEL, version="v0001")
    req = urllib.request.Request(
        url + urllib.parse.quote(path, safe="/%"),
        data=case.body or None,
        method=case.method,
        headers=case.headers,
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@pytest.mark.parametrize("case", V2_CASES, ids=[c.description for c in V2_CASES])
def test_shared_v2_cases(runtime: Runtime, case: V2Case) -> None:
    status, body = _send(runtime.url, case)
    assert status // 100 == int(case.expected[0]), (status, body[:300])
    if case.expected == "4xx":
        message = json.loads(body)["error"]
        assert isinstance(message, str) and 0 < len(message) <= MAX_MESSAGE_CHARS
        assert len(body) < 2 * MAX_MESSAGE_CHARS + 100


def test_the_console_command_imports_no_tensorflow_kserve_or_pandas(runtime: Runtime) -> None:
    # started as the console script (runtime.proc ran .venv/bin/shopfloor); after checking its
    # options it replaced itself (same pid) with the lean runtime process
    assert Path(runtime.proc.args[0]).name == "shopfloor"
    cmdline = Path(f"/proc/{runtime.proc.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[1:3] == [b"-m", b"shopfloor.edge"], cmdline
    line = re.search(r"imported packages: (.*)", runtime.log())
    assert line, runtime.log()[-2000:]
    packages = set(line.group(1).split())
    assert {"numpy", "ai_edge_litert", "uvicorn", "prometheus_client", "shopfloor"} <= packages
    assert not packages & set(HEAVY), packages & set(HEAVY)
    assert not packages & {"typer", "rich", "pydantic"}  # nor the CLI's libraries
    # and what the process has mapped now, after serving (shared objects of any heavy library)
    maps = Path(f"/proc/{runtime.proc.pid}/maps").read_text()
    mapped = {line.split()[-1] for line in maps.splitlines() if line.split()[-1].startswith("/")}
    assert any("ai_edge_litert" in path for path in mapped)  # the check sees site-packages
    assert not [p for p in mapped if any(f"/{h}/" in p or f"/{h}-" in p for h in HEAVY)]


def test_bound_to_loopback_by_default(runtime: Runtime) -> None:
    listening = []
    for line in Path(f"/proc/{runtime.proc.pid}/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A" and int(local.split(":")[1], 16) == runtime.port:
            listening.append(local.split(":")[0])
    assert listening == ["0100007F"]  # 127.0.0.1, nothing else


def test_health_metadata_and_metrics(runtime: Runtime) -> None:
    client = RuntimeClient(runtime.url)
    assert client.health()
    meta = client.metadata()
    assert meta["versions"] == [RuntimeClient(runtime.url, TOKEN).status()["active"]]
    assert [i["name"] for i in meta["inputs"]] == list(schema.INPUT_COLUMNS)
    answer = client.infer({k: v for k, v in _rows(3).items()})
    assert answer["model_version"] == meta["versions"][0]
    with urllib.request.urlopen(runtime.url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'shopfloor_refused_requests_total{protocol="rest"' in text
    assert "shopfloor_edge_activations_total" in text
    assert re.search(r'shopfloor_predictions_total\{model_name="ai4i-failure",model_version="v000\d"', text)


# -- the same answers as the cloud predictor ----------------------------------------------------


def _rows(n: int, offset: int = 0) -> dict[str, list[Any]]:
    """``n`` real AI4I rows (the vendored table), as V2 columns."""
    from shopfloor.data import loader

    frame = loader.load().frame.iloc[offset : offset + n]
    return {name: frame[name].tolist() for name in schema.INPUT_COLUMNS}


def _binary_request(rows: dict[str, list[Any]]) -> tuple[bytes, dict[str, str]]:
    head_inputs, parts = [], []
    for name, values in rows.items():
        if name == schema.PRODUCT_TYPE:
            raw = b"".join(struct.pack("<I", len(v)) + v.encode() for v in values)
            datatype = "BYTES"
        else:
            raw = np.asarray(values, dtype="<f8").tobytes()
            datatype = "FP64"
        head_inputs.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": [len(values)],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        parts.append(raw)
    head = dumps({"inputs": head_inputs, "parameters": {"binary_data_output": True}})
    return head + b"".join(parts), {
        "inference-header-content-length": str(len(head)),
        "content-type": "application/octet-stream",
    }


def _outputs(body: bytes, header_length: str | None) -> dict[str, bytes]:
    """Output name -> the raw bytes of its values (binary part, or JSON data re-encoded)."""
    if header_length is None:
        document = json.loads(body)
        return {
            o["name"]: np.asarray(o["data"], dtype="<f4" if o["datatype"] == "FP32" else "?").tobytes()
            for o in document["outputs"]
        }
    head_length = int(header_length)
    document = json.loads(body[:head_length])
    out, offset = {}, head_length
    for o in document["outputs"]:
        size = o["parameters"]["binary_data_size"]
        out[o["name"]] = body[offset : offset + size]
        offset += size
    assert offset == len(body)
    return out


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[dict[str, bytes], str]:
    req = urllib.request.Request(url + INFER.format(model=MODEL), data=body, headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as response:
        raw = response.read()
        length = response.headers.get("inference-header-content-length")
    head = json.loads(raw[: int(length)] if length else raw)
    return _outputs(raw, length), head["model_version"]


def test_cloud_and_edge_answer_bit_identically(versions: SignedVersions, tmp_path: Path) -> None:
    """Same version, same readings: the cloud predictor (kserve) and the edge runtime give the
    same bytes for probability and decision, in JSON and in binary, and so does the core."""
    from tests.integration.predictor import running_predictor

    version_dir, _ = versions.fetch("v0001", tmp_path / "fetched")
    rows = _rows(500, offset=1000)
    store = tmp_path / "store"
    with (
        running_runtime(
            store, tmp_path, "--pull", str(versions.registry), "--version", "v0001", trust=versions.trust
        ) as edge,
        running_predictor(version_dir, tmp_path, "--grpc-port", "0") as cloud,
    ):
        for body, headers in (
            (dumps({"inputs": tensors(rows)}), {"content-type": "application/json"}),
            _binary_request(rows),
        ):
            edge_out, edge_version = _post(edge.url, body, headers)
            cloud_out, cloud_version = _post(cloud.url, body, headers)
            assert edge_version == cloud_version == "v0001"
            assert edge_out == cloud_out
    core = Predictor.load(version_dir, "int8")
    columns = {
        k: np.asarray(v, dtype=object if k == schema.PRODUCT_TYPE else np.float64) for k, v in rows.items()
    }
    prediction = core.predict(columns)
    assert prediction.probability.astype("<f4").tobytes() == edge_out["failure_probability"]
    assert len(set(np.frombuffer(edge_out["failure_probability"], "<f4").tolist())) > 100  # real answers


# -- admin API ----------------------------------------------------------------------------------


def test_admin_api_is_off_unless_enabled(versions: SignedVersions, tmp_path: Path) -> None:
    with running_runtime(
        tmp_path / "store", tmp_path, "--pull", str(versions.registry), trust=versions.trust
    ) as plain:
        for method, path in (
            ("GET", "/admin/v1/status"),
            ("POST", "/admin/v1/rollback"),
            ("POST", "/admin/v1/versions"),
        ):
            req = urllib.request.Request(
                plain.url + path,
                method=method,
                data=b"" if method == "POST" else None,
                headers={"authorization": f"Bearer {TOKEN}"},
            )
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(req, timeout=10)
            assert caught.value.code == 404
        # no --version: the registry's newest version (no edge champion in it)
        assert RuntimeClient(plain.url).metadata()["versions"] == ["v0002"]
    # stopped with SIGTERM by the fixture: a graceful shutdown, exit 0
    assert plain.proc.returncode == 0
    assert "edge runtime stopped (signal 15)" in plain.log()


def test_admin_refuses_without_the_token_before_reading_the_body(runtime: Runtime) -> None:
    url = runtime.url.removeprefix("http://")
    for auth in ({}, {"authorization": "Bearer wrong-token-wrong-token"}, {"authorization": TOKEN}):
        conn = http.client.HTTPConnection(url, timeout=10)
        # declares a body far over any limit and sends none: answered 401 at once
        conn.request(
            "POST", "/admin/v1/versions?activate=true", headers={**auth, "content-length": str(2**40)}
        )
        response = conn.getresponse()
        assert response.status == 401
        assert json.loads(response.read())["error"].startswith("admin API")
        conn.close()
    with pytest.raises(Exception, match="HTTP 401"):
        RuntimeClient(runtime.url, "not-the-token-at-all").rollback()


def _refused(client: RuntimeClient, version_dir: Path, signatures: list[Any]) -> str:
    before = client.metadata()["versions"]
    with pytest.raises((IntegrityError, ExternalServiceError, NotFoundError)) as caught:
        client.upload(version_dir, signatures, activate=True)
    assert client.metadata()["versions"] == before  # the previous version keeps serving
    assert client.health()
    status = client.status()
    assert status["last_error"]
    return str(caught.value)


def test_admin_refuses_unsigned_tampered_and_unknown_key(versions: SignedVersions, tmp_path: Path) -> None:
    from shopfloor.edge.signing import generate_keypair, sign_manifest

    with running_runtime(
        tmp_path / "store",
        tmp_path,
        "--pull",
        str(versions.registry),
        "--version",
        "v0001",
        "--admin-token-file",
        str(versions.token_file),
        trust=versions.trust,
    ) as edge:
        client = RuntimeClient(edge.url, TOKEN)
        version_dir, signatures = versions.fetch("v0002", tmp_path / "fetched")
        assert "unsigned" in _refused(client, version_dir, [])
        stranger = generate_keypair(tmp_path / "stranger", "stranger")
        foreign = sign_manifest((version_dir / contract.MANIFEST).read_bytes(), stranger.private_path)
        assert "unknown key" in _refused(client, version_dir, [foreign])
        tampered = tmp_path / "tampered" / "v0002"
        shutil.copytree(version_dir, tampered)
        model = tampered / contract.litert_file("int8")
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0x01
        model.write_bytes(bytes(data))
        assert "sha256" in _refused(client, tampered, signatures)
        assert client.status()["installed"] == ["v0001"]
        # a tar that is not a version
        req = urllib.request.Request(
            edge.url + "/admin/v1/versions",
            data=b"not a tar" * 100,
            method="POST",
            headers={"authorization": f"Bearer {TOKEN}"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(req, timeout=10)
        assert caught.value.code == 400
        with urllib.request.urlopen(edge.url + "/metrics", timeout=10) as response:
            metrics = response.read().decode()
        assert re.search(r'shopfloor_edge_activations_total\{outcome="refused"\} [3-9]', metrics)
        # the real one goes through, and rollback goes back
        assert client.upload(version_dir, signatures)["active"] == "v0002"
        assert client.rollback()["active"] == "v0001"
        assert client.metadata()["versions"] == ["v0001"]


def test_an_upload_is_one_version_archive(versions: SignedVersions, tmp_path: Path) -> None:
    version_dir, signatures = versions.fetch("v0001", tmp_path)
    body = pack_version(version_dir, signatures)
    from shopfloor.edge.server import unpack_version

    unpacked, docs = unpack_version(body, tmp_path / "out")
    assert unpacked.name == "v0001" and [d.key_id for d in docs] == [s.key_id for s in signatures]
    assert sorted(p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()) == sorted(
        p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*") if p.is_file()
    )


# -- hot swap under load ------------------------------------------------------------------------


def _flip_rows(versions: SignedVersions, version_dir: Path) -> dict[str, list[Any]]:
    """Real rows whose decision differs between v0001 and v0002 (probability between the thresholds)."""
    core = Predictor.load(version_dir, "int8")
    rows = _rows(3000)
    columns = {
        k: np.asarray(v, dtype=object if k == schema.PRODUCT_TYPE else np.float64) for k, v in rows.items()
    }
    p = core.predict(columns).probability
    low, high = sorted(versions.thresholds.values())
    chosen = np.flatnonzero((p >= low) & (p < high))[:8]
    assert len(chosen) >= 4
    return {k: [v[i] for i in chosen] for k, v in rows.items()}


def test_hot_swap_under_load_fails_no_request(versions: SignedVersions, tmp_path: Path) -> None:
    v1_dir, _ = versions.fetch("v0001", tmp_path / "v1")
    v2_dir, v2_signatures = versions.fetch("v0002", tmp_path / "v2")
    rows = _flip_rows(versions, v1_dir)
    body = dumps({"inputs": tensors(rows)})
    results: list[tuple[int, float, str, list[bool], list[float]]] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    with running_runtime(
        tmp_path / "store",
        tmp_path,
        "--pull",
        str(versions.registry),
        "--version",
        "v0001",
        "--admin-token-file",
        str(versions.token_file),
        trust=versions.trust,
    ) as edge:
        host = edge.url.removeprefix("http://")

        def client(worker: int) -> None:
            conn = http.client.HTTPConnection(host, timeout=10)
            while not stop.is_set():
                try:
                    conn.request(
                        "POST",
                        INFER.format(model=MODEL),
                        body=body,
                        headers={"content-type": "application/json"},
                    )
                    response = conn.getresponse()
                    data = response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
                    document = json.loads(data)
                    outputs = {o["name"]: o["data"] for o in document["outputs"]}
                    with lock:
                        results.append(
                            (
                                worker,
                                time.monotonic(),
                                document["model_version"],
                                outputs["failure_predicted"],
                                outputs["failure_probability"],
                            )
                        )
                except Exception as exc:  # every failure is counted, none ends the test early
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(host, timeout=10)
                time.sleep(0.002)  # bounded load
            conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        pushed = time.monotonic()
        report = RuntimeClient(edge.url, TOKEN).upload(v2_dir, v2_signatures)
        acknowledged = time.monotonic()
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)

    assert report["active"] == "v0002"
    assert failures == []
    seen = {r[2] for r in results}
    assert seen == {"v0001", "v0002"}, seen
    for worker, _, version, predicted, probability in results:
        # every answer is wholly one version's: its decisions at that version's threshold
        assert predicted == [p >= versions.thresholds[version] for p in probability], (worker, version)
        other = next(v for v in versions.thresholds if v != version)
        assert predicted != [p >= versions.thresholds[other] for p in probability]
    for worker in range(4):  # per client: v0001 answers, then v0002 only
        order = [r[2] for r in results if r[0] == worker]
        assert order == sorted(order), worker
    first_v2 = min(t for _, t, v, _, _ in results if v == "v0002")
    assert first_v2 - pushed < 5.0
    assert first_v2 <= acknowledged + 0.5  # the push returns once v0002 answers
    assert len(results) > 100


# -- hot swap between model families ------------------------------------------------------------


@pytest.fixture(scope="module")
def with_tree(tmp_path_factory: pytest.TempPathFactory) -> SignedVersions:
    """v0001/v0002 (the MLP) and v0003: v0001 as a tree ensemble ships it (float32 only)."""
    return make_signed_versions(tmp_path_factory.mktemp("edge-tree-versions"), tree=True)


def _info_formats(url: str) -> set[str]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    return set(re.findall(r'^shopfloor_model_info\{[^}]*format="(\w+)"', text, re.MULTILINE))


def test_hot_swap_between_an_mlp_and_a_tree_version(with_tree: SignedVersions, tmp_path: Path) -> None:
    """An int8-preferring device (laptop profile) serving the MLP (int8) swaps under load to a
    tree version (float32: it has no int8 file) and rolls back: no request fails, each answer
    is wholly one version's in that version's format, and status, metadata and metrics say
    which format runs."""
    assert with_tree.tree == "v0003"
    mlp_dir, _ = with_tree.fetch("v0001", tmp_path / "mlp")
    tree_dir, tree_signatures = with_tree.fetch("v0003", tmp_path / "tree")
    rows = _rows(16, offset=200)
    columns = {
        k: np.asarray(v, dtype=object if k == schema.PRODUCT_TYPE else np.float64) for k, v in rows.items()
    }
    expected = {
        "v0001": Predictor.load(mlp_dir, "int8").predict(columns).probability.astype("<f4").tobytes(),
        "v0003": Predictor.load(tree_dir, "float32").predict(columns).probability.astype("<f4").tobytes(),
    }
    assert expected["v0001"] != expected["v0003"]  # the format shows in every answer
    body = dumps({"inputs": tensors(rows)})
    results: list[tuple[int, str, bytes]] = []
    failures: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    with running_runtime(
        tmp_path / "store", tmp_path, "--pull", str(with_tree.registry), "--version", "v0001",
        "--admin-token-file", str(with_tree.token_file), "--profile", "laptop", trust=with_tree.trust,
    ) as edge:
        host = edge.url.removeprefix("http://")
        admin = RuntimeClient(edge.url, TOKEN)
        formats = [(admin.status()["format"], _info_formats(edge.url))]

        def client(worker: int) -> None:
            conn = http.client.HTTPConnection(host, timeout=10)
            while not stop.is_set():
                try:
                    conn.request("POST", INFER.format(model=MODEL), body=body,
                                 headers={"content-type": "application/json"})
                    response = conn.getresponse()
                    data = response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
                    document = json.loads(data)
                    outputs = {o["name"]: o["data"] for o in document["outputs"]}
                    probability = np.asarray(outputs["failure_probability"], dtype="<f4").tobytes()
                    with lock:
                        results.append((worker, document["model_version"], probability))
                except Exception as exc:  # every failure is counted, none ends the test early
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection(host, timeout=10)
                time.sleep(0.002)
            conn.close()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.8)
        report = admin.upload(tree_dir, tree_signatures)
        formats.append((admin.status()["format"], _info_formats(edge.url)))
        metadata = RuntimeClient(edge.url).metadata()
        time.sleep(0.8)
        back = admin.rollback()
        formats.append((admin.status()["format"], _info_formats(edge.url)))
        time.sleep(0.8)
        stop.set()
        for thread in threads:
            thread.join(timeout=20)
        store_formats = admin.status()["formats"]

    assert report["active"] == "v0003" and report["report"]["format"] == "float32"
    assert report["report"]["family"] == "hist-gbt"
    assert (metadata["versions"], metadata["platform"]) == (["v0003"], "tflite")
    assert back["active"] == "v0001"
    assert formats == [("int8", {"int8"}), ("float32", {"float32"}), ("int8", {"int8"})]
    assert store_formats == {"v0001": "int8", "v0003": "float32"}
    assert failures == []
    assert {version for _, version, _ in results} == {"v0001", "v0003"}
    for worker, version, probability in results:
        assert probability == expected[version], (worker, version)
    for worker in range(4):  # per client: MLP, then tree, then MLP again; never interleaved
        order = [version for w, version, _ in results if w == worker]
        changes = [b for a, b in itertools.pairwise(order) if a != b]
        assert changes in ([], ["v0003"], ["v0003", "v0001"]), (worker, changes)
    assert len(results) > 100
