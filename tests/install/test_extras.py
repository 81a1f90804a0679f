"""Each install extra, alone in a fresh venv, does its role's job.

The dev venv holds every dependency, so a module that imports something only ``dev`` installs
passes every other test and still fails in an image (``deploy cloud --render`` once needed
kubernetes-validate that only ``dev`` had). Here the wheel is built once, installed with one
extra and the lock as constraints into a venv without system site packages (the dev venv's pip
runs against it with ``--python``: same pip, same cache), ``pip check`` must be clean, and the
role's real command runs from a folder outside the checkout.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from shopfloor import contract
from shopfloor.data.schema import INPUT_COLUMNS, PRODUCT_TYPE
from shopfloor.settings import DEFAULT_MODEL_NAME

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "lock.txt"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
#: What the edge box runs, as ``module:class`` (the one place to change if they move): the
#: LiteRT model (``Class(path).predict_proba(x)``) and the feature code in front of it
#: (``Class.from_version(version_dir).transform(readings)``).
EDGE_RUNTIME = "shopfloor.inference.runtime:LiteRTModel"
EDGE_FEATURIZER = "shopfloor.inference.features:Featurizer"
#: Each image installs exactly one extra; the role tests below install the same ones.
IMAGE_EXTRAS = {
    "Dockerfile": "pipeline", "docker/predictor.Dockerfile": "serve", "docker/edge.Dockerfile": "edge",
}
#: Source folders and the package each becomes (pyproject's package-dir).
SOURCE_ROOTS = {
    "shopfloor": "shopfloor", "components": "shopfloor/components", "pipelines": "shopfloor/pipelines",
}
PIP_TIMEOUT = 1200
#: A real trained version written by older shopfloor code (schema 1).
FIXTURE_REGISTRY = REPO / "tests" / "fixtures" / "registry-schema1"
RUN_TIMEOUT = 300

install = pytest.mark.install


# --- pyproject, lock and images agree (fast) -------------------------------------------------


def _lock_pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"lock line {line!r} is not an exact pin"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def _extra_requirements(extra: str | None) -> list[Requirement]:
    """The requirements of the base set (None) or of one extra, self-references expanded."""
    project = PYPROJECT["project"]
    raw = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    out: list[Requirement] = []
    for text in raw:
        req = Requirement(text)
        if canonicalize_name(req.name) == canonicalize_name(project["name"]):
            for inner in sorted(req.extras):
                out.extend(_extra_requirements(inner))
        else:
            out.append(req)
    return out


@pytest.mark.parametrize("extra", [None, *PYPROJECT["project"]["optional-dependencies"]])
def test_lock_pins_every_requirement_inside_its_range(extra: str | None) -> None:
    pins = _lock_pins()
    problems = []
    for req in _extra_requirements(extra):
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req.name}: not in {LOCK.name}")
        elif not req.specifier.contains(pin, prereleases=True):
            problems.append(f"{req.name}: lock pins {pin}, pyproject allows {req.specifier}")
    assert not problems, f"extra {extra or '(base)'}: " + "; ".join(problems)


def test_all_is_the_union_of_the_role_extras() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    roles = {"serve", "edge", "deploy", "pipeline", "testing"}
    assert roles <= set(extras)
    union = {str(r) for role in roles for r in _extra_requirements(role)}
    assert {str(r) for r in _extra_requirements("all")} == union
    assert union <= {str(r) for r in _extra_requirements("dev")}


def _third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the source files importing it (anywhere, lazy imports included)."""
    found: dict[str, set[str]] = {}
    for folder in SOURCE_ROOTS:
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in {"shopfloor", "__future__"}:
                        found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def test_every_imported_distribution_is_declared() -> None:
    declared = {canonicalize_name(r.name) for extra in (None, "all") for r in _extra_requirements(extra)}
    providers = importlib.metadata.packages_distributions()
    undeclared = {
        module: sorted(files)
        for module, files in _third_party_imports().items()
        if not {canonicalize_name(d) for d in providers.get(module, [module])} & declared
    }
    assert undeclared == {}, f"imported but declared in no extra of pyproject.toml: {undeclared}"


@pytest.mark.parametrize(("dockerfile", "extra"), sorted(IMAGE_EXTRAS.items()))
def test_image_installs_exactly_its_extra_from_the_lock(dockerfile: str, extra: str) -> None:
    text = (REPO / dockerfile).read_text()
    installs = [m.strip() for m in re.findall(r"pip install[^\n\\&]*", text)]
    assert installs == [f"pip install -c requirements/lock.txt '.[{extra}]'"]
    assert re.search(r"^USER 10001$", text, re.M), f"{dockerfile} must run as the non-root user"


# --- the wheel -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    src: Path  # the copy of the sources the wheel was built from
    wheel: Path


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The project's wheel, built once from a copy of the sources (the checkout stays clean)."""
    src = tmp_path_factory.mktemp("wheel-src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    for folder in SOURCE_ROOTS:
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False,
    )
    assert result.returncode == 0, f"building the wheel failed:\n{result.stdout}{result.stderr}"
    (built,) = out.glob("shopfloor-*.whl")
    return Build(src, built)


@pytest.fixture(scope="session")
def wheel(build: Build) -> Path:
    return build.wheel


def test_wheel_ships_every_source_file(build: Build) -> None:
    with zipfile.ZipFile(build.wheel) as archive:
        shipped = set(archive.namelist())
    expected = {
        f"{package}/{path.relative_to(build.src / folder).as_posix()}"
        for folder, package in SOURCE_ROOTS.items()
        for path in (build.src / folder).rglob("*")
        if path.is_file()
    }
    assert sorted(expected - shipped) == []


# --- one fresh venv per role -----------------------------------------------------------------


@dataclass(frozen=True)
class Venv:
    root: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    def script(self, name: str) -> str:
        return str(self.root / "bin" / name)


def _env(cwd: Path) -> dict[str, str]:
    """The caller's environment minus anything that points Python at the dev venv or the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", COLUMNS="200", SHOPFLOOR_REGISTRY=str(cwd / "registry"))
    return env


def _run(cmd: list[str], cwd: Path, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True, timeout=timeout,
                          check=False)


def _pip(venv: Venv, *args: str, what: str) -> None:
    result = _run([sys.executable, "-m", "pip", "--python", venv.python, *args], venv.root.parent,
                  timeout=PIP_TIMEOUT)
    if result.returncode != 0:
        said = [line for line in (result.stdout + result.stderr).splitlines()
                if line.strip() and not line.startswith("WARNING:")]
        tail = "\n".join(said[-20:])
        pytest.fail(f"{what} failed (pip exit {result.returncode}). These tests need pip to reach the "
                    f"package index: if pip names a connection error below, this machine has no network "
                    f"for pip; otherwise the extra does not install from the lock. pip said:\n{tail}",
                    pytrace=False)


def _install(extra: str, wheel: Path, root: Path) -> Venv:
    """A venv without system site packages holding ``<wheel>[extra]`` at the lock's pins."""
    venv = Venv(root / f"venv-{extra}")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv.root)], check=True, timeout=120)
    started = time.monotonic()
    # --no-compile: byte-compiling TensorFlow & co. would be most of the install time, and
    # imports compile what they use anyway.
    _pip(venv, "install", "--no-compile", "-c", str(LOCK), f"{wheel}[{extra}]",
         what=f"installing shopfloor[{extra}] with -c {LOCK.relative_to(REPO)}")
    print(f"shopfloor[{extra}] installed in {time.monotonic() - started:.0f} s")
    _pip(venv, "check", what=f"pip check of shopfloor[{extra}]")
    origin = _run([venv.python, "-c", "import shopfloor; print(shopfloor.__file__)"], root).stdout.strip()
    assert Path(origin).is_relative_to(venv.root), f"shopfloor imported from {origin!r}, not the venv"
    return venv


_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
        found[name] = "ok"
    except ModuleNotFoundError as exc:
        found[name] = "missing" if exc.name == name else f"broken: {exc}"
    except Exception as exc:
        found[name] = f"broken: {type(exc).__name__}: {exc}"
print(json.dumps(found))
"""


def _imports(venv: Venv, cwd: Path, *modules: str) -> dict[str, str]:
    """``ok``, ``missing`` or ``broken: why`` for each module, imported in the venv."""
    result = _run([venv.python, "-c", _PROBE, *modules], cwd)
    assert result.returncode == 0, result.stderr
    found: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def model_version(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model version directory, made in the dev venv (training needs TensorFlow)."""
    from shopfloor.serving.sample import sample_version_dir

    return sample_version_dir(tmp_path_factory.mktemp("model") / "v0001", REPO / "runs")


def _readings(frame: pd.DataFrame, n: int) -> dict[str, list[Any]]:
    rows = frame.head(n)
    return {name: rows[name].tolist() for name in INPUT_COLUMNS}


def _load(target: str) -> Any:
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


def _expected(version_dir: Path, fmt: str, readings: dict[str, list[Any]]) -> np.ndarray:
    """Probabilities from the dev venv's feature code and LiteRT: what every role must answer."""
    x = _load(EDGE_FEATURIZER).from_version(version_dir).transform(
        {name: np.asarray(values) for name, values in readings.items()})
    return np.asarray(_load(EDGE_RUNTIME)(version_dir / contract.litert_file(fmt)).predict_proba(x))


@install
def test_deploy_extra_renders_and_validates_an_inference_service(wheel: Path, tmp_path: Path) -> None:
    venv = _install("deploy", wheel, tmp_path)
    assert _imports(venv, tmp_path, "tensorflow", "kserve", "kfp") == dict.fromkeys(
        ("tensorflow", "kserve", "kfp"), "missing")
    uri = f"s3://models/{DEFAULT_MODEL_NAME}/v0001"
    result = _run([venv.script("shopfloor"), "deploy", "cloud", "--render", "--model-uri", uri, "v0001"],
                  tmp_path)
    assert result.returncode == 0, result.stderr
    objects = [obj for obj in yaml.safe_load_all(result.stdout) if obj]
    (isvc,) = [obj for obj in objects if obj["kind"] == "InferenceService"]
    assert isvc["metadata"]["name"] == DEFAULT_MODEL_NAME
    assert isvc["metadata"]["labels"]["shopfloor.io/model-version"] == "v0001"
    assert uri in isvc["spec"]["predictor"]["containers"][0]["args"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Loopback only, and never through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"predictor exited {proc.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
        try:
            with _HTTP.open(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    pytest.fail(f"predictor not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}", pytrace=False)


@contextmanager
def _predictor(venv: Venv, version_dir: Path, cwd: Path) -> Iterator[str]:
    """``shopfloor serve`` from the venv on a free loopback port; yields its base URL."""
    port = _free_port()
    log_path = cwd / "predictor.log"
    with log_path.open("wb") as log:  # a file, not a pipe: an unread pipe blocks the server
        proc = subprocess.Popen(
            [venv.script("shopfloor"), "serve", "--model-dir", str(version_dir), "--model-name",
             DEFAULT_MODEL_NAME, "--http-port", str(port), "--grpc-port", "0"],
            cwd=cwd, env=_env(cwd), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(proc, f"{base}/v2/models/{DEFAULT_MODEL_NAME}/ready", log_path)
            yield base
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _v2_body(readings: dict[str, list[Any]]) -> dict[str, Any]:
    return {"inputs": [
        {"name": name, "datatype": "BYTES" if name == PRODUCT_TYPE else "FP64", "shape": [len(values)],
         "data": values}
        for name, values in readings.items()
    ]}


@install
def test_serve_extra_answers_a_v2_request_without_tensorflow(
    wheel: Path, model_version: Path, real_frame: pd.DataFrame, tmp_path: Path
) -> None:
    venv = _install("serve", wheel, tmp_path)
    found = _imports(venv, tmp_path, "tensorflow", "kserve", "ai_edge_litert")
    assert found == {"tensorflow": "missing", "kserve": "ok", "ai_edge_litert": "ok"}
    # The predictor image's entry point imports in this venv, too.
    entry = _run([venv.python, "-m", "shopfloor.serving", "--help"], tmp_path)
    assert entry.returncode == 0, entry.stderr

    readings = _readings(real_frame, 8)
    with _predictor(venv, model_version, tmp_path) as base:
        request = urllib.request.Request(
            f"{base}/v2/models/{DEFAULT_MODEL_NAME}/infer", data=json.dumps(_v2_body(readings)).encode(),
            headers={"content-type": "application/json"}, method="POST",
        )
        with _HTTP.open(request, timeout=30) as response:
            answer = json.loads(response.read())
    outputs = {output["name"]: output for output in answer["outputs"]}
    assert "failure_probability" in outputs, answer
    served = np.asarray(outputs["failure_probability"]["data"], dtype=np.float64)
    served_format = contract.load_manifest(model_version).edge_format  # what the predictor serves by default
    assert served_format is not None
    np.testing.assert_allclose(served, _expected(model_version, served_format, readings), rtol=0, atol=1e-6)


_EDGE_SCRIPT = """
import importlib, json, sys
import numpy as np
def load(target):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)
runtime, featurizer, version_dir, model_file, readings, out = sys.argv[1:]
raw = {k: np.asarray(v) for k, v in json.loads(open(readings).read()).items()}
x = load(featurizer).from_version(version_dir).transform(raw)
np.save(out, load(runtime)(model_file).predict_proba(x))
"""


@install
def test_edge_extra_predicts_with_litert_alone(
    wheel: Path, model_version: Path, real_frame: pd.DataFrame, tmp_path: Path
) -> None:
    venv = _install("edge", wheel, tmp_path)
    heavy = ("tensorflow", "kserve", "pandas")
    assert _imports(venv, tmp_path, *heavy) == dict.fromkeys(heavy, "missing")
    readings = _readings(real_frame, 256)
    (tmp_path / "readings.json").write_text(json.dumps(readings))
    # Every LiteRT file the version has (an MLP version: float32 and int8; trees: float32).
    formats = [f for f in contract.LITERT_FORMATS if (model_version / contract.litert_file(f)).is_file()]
    assert formats
    for fmt in formats:
        out = tmp_path / f"p-{fmt}.npy"
        result = _run([venv.python, "-c", _EDGE_SCRIPT, EDGE_RUNTIME, EDGE_FEATURIZER, str(model_version),
                       str(model_version / contract.litert_file(fmt)), str(tmp_path / "readings.json"),
                       str(out)], tmp_path)
        assert result.returncode == 0, result.stderr
        np.testing.assert_allclose(np.load(out), _expected(model_version, fmt, readings), rtol=0, atol=1e-6)


@install
def test_edge_extra_serves_a_signed_version_it_pulls_from_a_registry(
    wheel: Path, real_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """The edge role end to end: the console command of a fresh ``[edge]`` venv pulls a signed
    version from a registry, verifies and self-tests it, and answers a V2 request."""
    from shopfloor.edge.signing import TrustStore, generate_keypair, load_public_key, sign_manifest
    from shopfloor.registry import open_registry

    venv = _install("edge", wheel, tmp_path)
    registry_root = tmp_path / "registry"
    shutil.copytree(FIXTURE_REGISTRY, registry_root, ignore=shutil.ignore_patterns("README.md"))
    registry = open_registry(registry_root)
    key = generate_keypair(tmp_path / "keys", "release")
    registry.add_signature("v0001", sign_manifest(registry.manifest_bytes("v0001"), key.private_path))
    trust = tmp_path / "trust.yaml"
    TrustStore().with_key(load_public_key(key.public_path), "release").save(trust)

    port = _free_port()
    log_path = tmp_path / "edge.log"
    readings = _readings(real_frame, 8)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [venv.script("shopfloor"), "edge", "serve", "--store", str(tmp_path / "store"),
             "--port", str(port), "--pull", str(registry_root), "--version", "v0001", "--trust", str(trust)],
            cwd=tmp_path, env=_env(tmp_path), stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_ready(proc, f"{base}/v2/health/ready", log_path)
            request = urllib.request.Request(
                f"{base}/v2/models/{DEFAULT_MODEL_NAME}/infer", data=json.dumps(_v2_body(readings)).encode(),
                headers={"content-type": "application/json"}, method="POST",
            )
            with _HTTP.open(request, timeout=30) as response:
                answer = json.loads(response.read())
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    assert answer["model_version"] == "v0001", answer
    outputs = {output["name"]: output for output in answer["outputs"]}
    served = np.asarray(outputs["failure_probability"]["data"], dtype=np.float64)
    version_dir = FIXTURE_REGISTRY / DEFAULT_MODEL_NAME / "v0001"
    np.testing.assert_allclose(served, _expected(version_dir, "int8", readings), rtol=0, atol=1e-6)


@install
def test_pipeline_extra_compiles_the_training_pipeline(wheel: Path, tmp_path: Path) -> None:
    venv = _install("pipeline", wheel, tmp_path)
    needed = ("tensorflow", "great_expectations", "kfp", "kfp.kubernetes", "sklearn", "kubernetes_validate")
    assert _imports(venv, tmp_path, *needed) == dict.fromkeys(needed, "ok")
    result = _run([venv.script("shopfloor"), "compile", "-o", "pipeline.yaml"], tmp_path)
    assert result.returncode == 0, result.stderr
    # The dev venv compiles the checkout; the installed wheel must compile the same pipeline.
    reference = subprocess.run(
        [sys.executable, "-m", "shopfloor", "compile", "-o", str(tmp_path / "reference.yaml")],
        cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )
    assert reference.returncode == 0, reference.stderr
    assert (tmp_path / "pipeline.yaml").read_text() == (tmp_path / "reference.yaml").read_text()
