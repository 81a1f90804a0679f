"""Turn a training run's artifacts into a model-version directory, and check one before publishing.

The layout and every document in it are defined by :mod:`shopfloor.contract`; this module
only gathers the files (:func:`assemble_from_artifacts`) and proves that a directory is a
version that loads (:func:`describe_version`): each JSON part parses through the contract,
each LiteRT file opens in the LiteRT interpreter with the feature spec's input width, and the
SavedModel has its files (it is not loaded: the registry never imports TensorFlow).

Only runs that passed validation, the evaluation gates and conversion equivalence can be
assembled: the registry is where deployable models come from, so a failed run is refused
here with the reason, not discovered later on an edge box. Symbolic links and anything that
is not a regular file or directory are refused before a byte is copied: a link inside a run
directory must not smuggle a file from elsewhere on the machine into the registry.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from shopfloor import contract, lineage
from shopfloor.contract import (
    DECISION,
    EVIDENCE,
    FEATURE_SPEC,
    LITERT_FORMATS,
    MANIFEST,
    MANIFEST_KIND,
    SAVED_MODEL_DIR,
    SAVED_MODEL_FORMAT,
    SAVED_MODEL_PB,
    Decision,
    FeatureSpec,
    Golden,
    Interval,
    VersionDraft,
    VersionManifest,
    golden_files,
    litert_file,
    run_output,
)
from shopfloor.errors import IntegrityError
from shopfloor.lineage import atomic_writer, write_text_atomic
from shopfloor.registry.errors import AssemblyError, GatesNotPassedError, RunNotFoundError

#: Largest JSON part of a version (decision, feature spec, golden, evidence) read into memory.
MAX_JSON_BYTES = 32 << 20
#: Largest LiteRT file accepted (edge models are kilobytes to a few megabytes).
MAX_LITERT_BYTES = 256 << 20
#: Metrics a version's manifest carries, and where they come from: every evaluated model from
#: the evaluation, the shipped LiteRT file from the equivalence report (runs converted before
#: issue 10 kept the int8 file's metrics under ``int8``).
_EVALUATED_MODELS = (*contract.FAMILY_KEYS.values(), contract.YARDSTICK_KEY)
_EQUIVALENCE_KEYS = (contract.EDGE_KEY, "int8")
_LITERT_FILES = tuple(litert_file(f) for f in LITERT_FORMATS)


@dataclass(frozen=True)
class VersionContent:
    """What a checked version directory holds: its file names, and the manifest fields the
    registry derives from them (``manifest``; its identity, time, run and checksums are left
    blank here: the registry fills them when it publishes)."""

    files: tuple[str, ...]
    manifest: VersionManifest


# -- regular files only -------------------------------------------------------------------------
def open_regular(path: Path, name: str) -> int:
    """A read descriptor of ``path`` if it is a regular file; never follows a final symbolic
    link and never blocks on a FIFO. Anything else is an :class:`AssemblyError` naming it."""
    try:
        return lineage.open_regular(path)
    except lineage.NotRegularFileError as exc:
        message = {
            "missing": f"missing {name}: {path}",
            "link": f"refusing symbolic link {name}: {path}",
            "special": f"refusing {name}: {path} is not a regular file",
        }.get(exc.kind, f"cannot read {name}: {path}: {exc.strerror}")
        raise AssemblyError(message, name) from None


def read_regular(path: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`), at most ``max_bytes``."""
    with os.fdopen(open_regular(path, name), "rb") as fh:
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise AssemblyError(f"{name} is larger than {max_bytes} bytes: {path}", name)
    return data


def regular_tree(root: Path, name: str = "") -> Iterator[str]:
    """Relative POSIX paths of the regular files below ``root`` (sorted); a symbolic link or
    special file anywhere below, or ``root`` itself not a real directory, is refused. Entries
    are named ``<name>/<rel>`` in errors (just ``<rel>`` without a name)."""
    label = name or "version directory"
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        raise AssemblyError(f"missing {label}: {root}", name) from None
    if not stat.S_ISDIR(mode):
        raise AssemblyError(f"refusing {label}: {root} is {_kind(mode)}, not a directory", name)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for entry in sorted((*dirnames, *filenames)):
            full = here / entry
            rel = full.relative_to(root).as_posix()
            entry_mode = os.lstat(full).st_mode
            if stat.S_ISREG(entry_mode):
                found.append(rel)
            elif not stat.S_ISDIR(entry_mode):
                where = f"{name}/{rel}" if name else rel
                raise AssemblyError(f"refusing {where}: {_kind(entry_mode)} (only regular files and "
                                    "directories can be published)", where)
    return iter(sorted(found))


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISREG(mode):
        return "a file"
    return "not a regular file"


def _no_links_between(base: Path, target: Path) -> None:
    """Refuse a symbolic link on the way from ``base`` down to ``target``."""
    current = base
    for part in target.relative_to(base).parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return  # reported by the caller with the piece's own name
        if stat.S_ISLNK(mode):
            rel = current.relative_to(base).as_posix()
            raise AssemblyError(f"refusing symbolic link {rel} in run directory {base}", rel)


def _copy(source: Path, dest: Path, name: str) -> None:
    """Copy one regular file without following links (mode: the one artifact rule)."""
    with os.fdopen(open_regular(source, name), "rb") as src, atomic_writer(dest) as fh:
        while chunk := src.read(1 << 20):
            fh.write(chunk)


def _copy_tree(source: Path, dest: Path, name: str) -> None:
    for rel in regular_tree(source, name):
        _copy(source / rel, dest / rel, f"{name}/{rel}")


# -- JSON parts ---------------------------------------------------------------------------------
def _json(path: Path, name: str) -> Any:
    try:
        return json.loads(read_regular(path, name, MAX_JSON_BYTES))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AssemblyError(f"{name} is not valid JSON: {path}: {exc}", name) from None


def _object(path: Path, name: str) -> dict[str, Any]:
    loaded = _json(path, name)
    if not isinstance(loaded, dict):
        raise AssemblyError(f"{name} is not a JSON object: {path}", name)
    return loaded


def _parsed(name: str, parse: Any, *args: Any) -> Any:
    """Run a contract parser; its IntegrityError (the document does not load) becomes an
    AssemblyError naming the file: bad input to publishing, not a damaged registry."""
    try:
        return parse(*args)
    except IntegrityError as exc:
        raise AssemblyError(f"{name} does not load: {exc}", name) from None


def _lineage_manifest(directory: Path) -> dict[str, Any]:
    """A step output's lineage manifest, leniently: lineage is informative, not a gate."""
    try:
        loaded = _json(directory / MANIFEST, MANIFEST)
    except AssemblyError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _check_passed(verdict: Mapping[str, Any], equivalence: Mapping[str, Any],
                  validation: Mapping[str, Any]) -> None:
    if validation.get("success") is not True:
        raise GatesNotPassedError("refusing to register: data validation failed")
    if verdict.get("passed") is not True:
        raise GatesNotPassedError(f"refusing to register: evaluation gates failed: {verdict.get('reason')}")
    if equivalence.get("passed") is not True:
        raise GatesNotPassedError(
            f"refusing to register: conversion equivalence failed: {equivalence.get('reason')}")


# -- assembly -----------------------------------------------------------------------------------
def assemble_from_artifacts(
    model_dir: Path,
    edge_dir: Path,
    evaluation_dir: Path,
    equivalence_path: Path,
    validation_path: Path,
    dest: Path,
) -> Path:
    """Build the version layout in ``dest`` from step outputs (KFP artifact paths).

    The artifact paths themselves are the orchestrator's (resolved here, links allowed);
    anything inside them must be a regular file or directory.
    """
    model_dir, edge_dir, evaluation_dir = (Path(p).resolve() for p in (model_dir, edge_dir, evaluation_dir))
    equivalence_path, validation_path = Path(equivalence_path).resolve(), Path(validation_path).resolve()
    dest = Path(dest)
    edge_files = set(regular_tree(edge_dir, "edge model")) if os.path.lexists(edge_dir) else set()
    # The shipped family's SavedModel travels with the edge model (the tree ensemble's exists
    # only there); runs converted before issue 10 shipped the MLP from the model artifact.
    saved_model_dir = edge_dir if SAVED_MODEL_PB in edge_files else model_dir
    saved_model = list(regular_tree(saved_model_dir / SAVED_MODEL_DIR, SAVED_MODEL_DIR)) \
        if os.path.lexists(saved_model_dir / SAVED_MODEL_DIR) else []
    if PurePosixPath(SAVED_MODEL_PB).relative_to(SAVED_MODEL_DIR).as_posix() not in saved_model:
        raise AssemblyError(f"missing trained SavedModel: {saved_model_dir / SAVED_MODEL_PB}", SAVED_MODEL_PB)
    if not any(litert_file(f) in edge_files for f in LITERT_FORMATS):
        raise AssemblyError(f"run has no converted edge model (no {' or '.join(_LITERT_FILES)} in "
                            f"{edge_dir})")
    if DECISION not in edge_files:
        raise AssemblyError(f"missing {DECISION} in edge model {edge_dir}", DECISION)
    _object(evaluation_dir / contract.EVALUATION_REPORT, "evaluation report")
    verdict = _object(evaluation_dir / contract.VERDICT, "gate verdict")
    equivalence = _object(Path(equivalence_path), "conversion equivalence report")
    validation = _object(Path(validation_path), "data validation result")
    _check_passed(verdict, equivalence, validation)
    spec_source = edge_dir / FEATURE_SPEC if FEATURE_SPEC in edge_files else model_dir / FEATURE_SPEC
    if dest.exists() and any(dest.iterdir()):
        raise AssemblyError(f"destination {dest} is not empty")

    dest.mkdir(parents=True, exist_ok=True)
    _copy_tree(saved_model_dir / SAVED_MODEL_DIR, dest / SAVED_MODEL_DIR, SAVED_MODEL_DIR)
    _copy(spec_source, dest / FEATURE_SPEC, FEATURE_SPEC)
    _copy(edge_dir / DECISION, dest / DECISION, DECISION)
    for fmt in LITERT_FORMATS:
        for name in (litert_file(fmt), *golden_files(fmt)):
            if name in edge_files:
                _copy(edge_dir / name, dest / name, name)
    if contract.REFERENCE_STATS in edge_files:  # since issue 8; runs converted before have none
        _copy(edge_dir / contract.REFERENCE_STATS, dest / contract.REFERENCE_STATS, contract.REFERENCE_STATS)
    for key, source in (("evaluation", evaluation_dir / contract.EVALUATION_REPORT),
                        ("verdict", evaluation_dir / contract.VERDICT),
                        ("equivalence", Path(equivalence_path)), ("validation", Path(validation_path))):
        _copy(source, dest / EVIDENCE[key], EVIDENCE[key])

    model_m, eval_m, edge_m = (_lineage_manifest(d) for d in (model_dir, evaluation_dir, edge_dir))
    family = edge_m.get("model_family")
    draft = VersionDraft(
        model_family=family if family in contract.MODEL_FAMILIES else None,
        code_version=_opt_str(model_m.get("code_version") or edge_m.get("code_version")),
        data_version=_opt_str(model_m.get("data_version") or verdict.get("data_version")),
        evaluated_against=_opt_str(eval_m.get("champion")),
        lineage={
            name: {k: m.get(k) for k in ("kind", "data_version", "code_version", "created_at")}
            for name, m in (("model", model_m), ("evaluation", eval_m), ("edge_model", edge_m)) if m
        },
    )
    write_text_atomic(dest / MANIFEST, contract.dumps(draft.to_dict()))
    describe_version(dest)  # what was assembled must load, or it is refused here, naming the file
    return dest


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def assemble_version(run_dir: Path, dest: Path) -> Path:
    """Build the version layout from a local run directory (``shopfloor run`` output)."""
    run = Path(run_dir)
    if not run.is_dir():
        raise RunNotFoundError(f"run directory not found: {run}")
    run = run.resolve()  # the directory named may be a link; nothing inside it may
    parts = {key: run_output(run, key) for key in ("model", "edge_model", "evaluation", "equivalence",
                                                   "validation")}
    for path in parts.values():
        _no_links_between(run, path)
    return assemble_from_artifacts(
        model_dir=parts["model"],
        edge_dir=parts["edge_model"],
        evaluation_dir=parts["evaluation"],
        equivalence_path=parts["equivalence"],
        validation_path=parts["validation"],
        dest=dest,
    )


# -- checking a version directory ---------------------------------------------------------------
def _check_litert(path: Path, name: str, n_features: int) -> None:
    """Open the file in the LiteRT interpreter: one input ``[batch, n_features]``, one
    output ``[batch, 1]``, tensors allocatable."""
    content = read_regular(path, name, MAX_LITERT_BYTES)  # the bytes checked are the bytes read
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise AssemblyError(f"cannot check {name}: the LiteRT interpreter (ai-edge-litert) is not installed, "
                            "and a version is published only once its LiteRT files load", name) from None
    try:
        # Builtin kernels without the XNNPACK delegate: a load check, not a benchmark (and no
        # delegate banner on stderr).
        interpreter = Interpreter(model_content=content, num_threads=1,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    except (ValueError, RuntimeError) as exc:
        raise AssemblyError(f"{name} does not load in the LiteRT interpreter: "
                            f"{' '.join(str(exc).split())[:200]}", name) from None
    if len(inputs) != 1 or len(outputs) != 1:
        raise AssemblyError(f"{name}: expected 1 input and 1 output, got {len(inputs)} and {len(outputs)}",
                            name)
    in_shape, out_shape = [int(d) for d in inputs[0]["shape"]], [int(d) for d in outputs[0]["shape"]]
    if len(in_shape) != 2 or in_shape[1] != n_features:
        raise AssemblyError(f"{name}: input shape {in_shape} does not take the {n_features} features of "
                            f"{FEATURE_SPEC} ([batch, {n_features}])", name)
    if len(out_shape) != 2 or out_shape[1] != 1 or out_shape[0] != in_shape[0]:
        raise AssemblyError(f"{name}: output shape {out_shape} is not one probability per row "
                            f"([batch, 1])", name)


def _intervals(block: Any, name: str, where: str) -> dict[str, Interval] | None:
    """The overall metric intervals of one model from an evidence document, or None."""
    if not isinstance(block, Mapping) or "overall" not in block:
        return None
    overall = block["overall"]
    if not isinstance(overall, Mapping):
        raise AssemblyError(f"{name}: {where}.overall is not an object", name)
    return {metric: _parsed(name, Interval.from_dict, iv, f"{name}: {where}.overall.{metric}")
            for metric, iv in overall.items()}


def describe_version(version_dir: Path) -> VersionContent:
    """Check a version directory and derive its manifest fields; refuses (naming the file) a
    missing or unloadable part, a link or special file, a hidden file, or a failed gate."""
    root = Path(version_dir)
    files = list(regular_tree(root))
    for rel in files:
        if any(part.startswith(".") for part in rel.split("/")):
            raise AssemblyError(f"hidden files cannot be published: {rel}", rel)
        if not contract.safe_relative_path(rel) and rel != MANIFEST:
            raise AssemblyError(f"file name {rel!r} cannot be published (backslash or line break)", rel)
    present = set(files)
    if SAVED_MODEL_PB not in present:
        raise AssemblyError(f"version directory {root} has no {SAVED_MODEL_PB}", SAVED_MODEL_PB)
    formats = [f for f in LITERT_FORMATS if litert_file(f) in present]
    if not formats:
        raise AssemblyError(f"version directory {root} has no {' or '.join(_LITERT_FILES)}")
    spec: FeatureSpec = _parsed(FEATURE_SPEC, FeatureSpec.from_dict, _json(root / FEATURE_SPEC, FEATURE_SPEC))
    decision: Decision = _parsed(DECISION, Decision.from_dict, _json(root / DECISION, DECISION))
    golden: dict[str, dict[str, str]] = {}
    for fmt in LITERT_FORMATS:
        gjson, gnpz = golden_files(fmt)
        if gjson not in present and gnpz not in present:
            continue
        if gjson not in present or gnpz not in present or fmt not in formats:
            raise AssemblyError(f"golden set of {fmt} is incomplete: needs {litert_file(fmt)}, {gjson} and "
                                f"{gnpz}", gjson if gjson not in present else gnpz)
        meta: Golden = _parsed(gjson, Golden.from_dict, _json(root / gjson, gjson), gjson)
        if meta.npz != gnpz:
            raise AssemblyError(f"{gjson} names {meta.npz!r}, expected {gnpz!r}", gjson)
        if meta.n_features != len(spec.names):
            raise AssemblyError(f"{gjson}: {meta.n_features} features, {FEATURE_SPEC} has {len(spec.names)}",
                                gjson)
        golden[fmt] = {"json": gjson, "npz": gnpz}
    for fmt in formats:
        _check_litert(root / litert_file(fmt), litert_file(fmt), len(spec.names))
    if contract.REFERENCE_STATS in present:  # optional: versions before issue 8 have none
        if os.lstat(root / contract.REFERENCE_STATS).st_size > contract.MAX_REFERENCE_STATS_BYTES:
            raise AssemblyError(f"{contract.REFERENCE_STATS} is larger than "
                                f"{contract.MAX_REFERENCE_STATS_BYTES} bytes", contract.REFERENCE_STATS)
        _parsed(contract.REFERENCE_STATS, contract.ReferenceStats.from_dict,
                _json(root / contract.REFERENCE_STATS, contract.REFERENCE_STATS), contract.REFERENCE_STATS)
    ev = {key: _object(root / rel, rel) for key, rel in EVIDENCE.items()}
    _check_passed(ev["verdict"], ev["equivalence"], ev["validation"])

    draft = VersionDraft()
    model_family = "keras-mlp"
    if MANIFEST in present:
        raw = _object(root / MANIFEST, MANIFEST)
        if raw.get("kind") == MANIFEST_KIND:  # a fetched version being re-published elsewhere
            published: VersionManifest = _parsed(MANIFEST, VersionManifest.from_dict, raw)
            draft = VersionDraft(published.data_version, published.code_version, published.evaluated_against,
                                 published.lineage)
            model_family = published.model_family
        else:
            draft = _parsed(MANIFEST, VersionDraft.from_dict, raw)
            model_family = draft.model_family or model_family

    evaluation, equivalence = ev["evaluation"], ev["equivalence"]
    models = evaluation.get("models", {})
    models = models if isinstance(models, Mapping) else {}
    metrics = {name: _intervals(models.get(name), EVIDENCE["evaluation"], f"models.{name}")
               for name in _EVALUATED_MODELS}
    eq_metrics = equivalence.get("metrics", {})
    eq_metrics = eq_metrics if isinstance(eq_metrics, Mapping) else {}
    shipped_key = next((k for k in _EQUIVALENCE_KEYS if k in eq_metrics), contract.EDGE_KEY)
    metrics[contract.EDGE_KEY] = _intervals(eq_metrics.get(shipped_key), EVIDENCE["equivalence"],
                                            f"metrics.{shipped_key}")
    verdict, validation = ev["verdict"], ev["validation"]
    gate_list = verdict.get("gates", [])
    eq_formats = equivalence.get("equivalence", {})
    derived = VersionManifest(
        model="", version="", created_at="", run_id="", files={},
        threshold=decision.threshold,
        formats=(SAVED_MODEL_FORMAT, *formats),
        data_version=draft.data_version or _opt_str(verdict.get("data_version"))
        or _opt_str(validation.get("data_version")),
        code_version=draft.code_version,
        evaluated_against=draft.evaluated_against,
        validation_suite={"name": validation.get("suite_name"), "version": validation.get("suite_version")},
        metrics={k: v for k, v in metrics.items() if v is not None},
        gates={
            "passed": True,
            "policy_version": verdict.get("policy_version"),
            "reason": verdict.get("reason"),
            "gates": [
                {k: g.get(k) for k in ("name", "metric", "passed", "value", "ci_low", "ci_high", "limit")}
                for g in (gate_list if isinstance(gate_list, list) else []) if isinstance(g, Mapping)
            ],
            "equivalence": {
                "passed": True,
                "reason": equivalence.get("reason"),
                "formats": {f: bool(r.get("passed")) for f, r in
                            (eq_formats.items() if isinstance(eq_formats, Mapping) else ())
                            if isinstance(r, Mapping)},
            },
            "validation": True,
        },
        golden=golden,
        lineage=draft.lineage,
        model_family=model_family,
    )
    return VersionContent(files=tuple(rel for rel in files if rel != MANIFEST), manifest=derived)

