"""The model-version contract: what a version holds, under which names, in which shapes.

Conversion writes these files, assembly gathers them, the registry publishes and verifies
them, the predictors and the edge read them, and the run summary reports them: all through
this module. It is the one place the file names of a version are spelled (in the spirit of
TFX's ``standard_component_specs.py``) and the one definition of each JSON document, as
frozen dataclasses with strict ``from_dict`` (unknown or missing keys and wrong types are
refused with the field's name) and ``to_dict`` (in the spirit of MLflow's registry entities).

Schema evolution: the version manifest carries ``schema_version``. Readers accept every
older schema (fields added later get the defaults documented on the field); writers always
write :data:`SCHEMA_VERSION`; a manifest from a newer shopfloor is refused with a clear
message rather than half-understood. Standard library only: the edge runtime reads it too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, TypeVar

from shopfloor.errors import IntegrityError, InvalidInputError, NotFoundError, excerpt

# -- file names of a version directory ---------------------------------------------------------
MANIFEST = "manifest.json"
SAVED_MODEL_DIR = "saved_model"
SAVED_MODEL_PB = f"{SAVED_MODEL_DIR}/saved_model.pb"
FEATURE_SPEC = "feature_spec.json"
DECISION = "decision.json"
EVIDENCE_DIR = "evidence"
#: LiteRT formats a version may carry, best-compressed first.
LITERT_FORMATS: tuple[str, ...] = ("float32", "int8")
#: Format name of the SavedModel in a manifest's ``formats`` (serving it needs TensorFlow).
SAVED_MODEL_FORMAT = "saved_model"
#: Every servable format: LiteRT files plus the SavedModel (serving it needs TensorFlow).
SERVABLE_FORMATS: tuple[str, ...] = ("int8", "float32", "saved_model")
#: Evidence documents copied into every version (key -> path inside the version).
EVIDENCE: dict[str, str] = {
    "evaluation": f"{EVIDENCE_DIR}/evaluation.json",
    "verdict": f"{EVIDENCE_DIR}/verdict.json",
    "equivalence": f"{EVIDENCE_DIR}/equivalence.json",
    "validation": f"{EVIDENCE_DIR}/validation.json",
}
#: Format name meaning "the one the version runs by default" (:func:`choose_format`).
AUTO_FORMAT = "auto"
#: V2 metadata ``platform`` per servable format.
PLATFORMS: dict[str, str] = {"int8": "tflite", "float32": "tflite", "saved_model": "tensorflow_savedmodel"}

# -- model families -----------------------------------------------------------------------------
#: The Keras MLP (SavedModel from Keras; LiteRT float32 and int8).
KERAS_MLP = "keras-mlp"
#: scikit-learn's HistGradientBoostingClassifier compiled to tensor operations. float32 only:
#: a tree compares a feature with a threshold exactly, and quantisation moves both.
HIST_GBT = "hist-gbt"
#: Candidate families, the LiteRT formats each converts to (most compact first), and the key
#: of its scores in evaluation documents and run summaries.
FAMILY_FORMATS: dict[str, tuple[str, ...]] = {KERAS_MLP: ("int8", "float32"), HIST_GBT: ("float32",)}
FAMILY_KEYS: dict[str, str] = {KERAS_MLP: "keras", HIST_GBT: "trees"}
MODEL_FAMILIES: tuple[str, ...] = tuple(FAMILY_FORMATS)
#: Key of the fixed reference model (a logistic regression; never shipped) in evaluation documents.
YARDSTICK_KEY = "baseline"
#: Key of the shipped LiteRT file's metrics on the test split (whatever its family and format).
EDGE_KEY = "edge"


def choose_format(formats: Iterable[str], preferred: str | None = None) -> str | None:
    """The LiteRT format to run from those a version has: ``preferred`` when it is there, else
    the most compact one there (int8 before float32; a tree version has only float32), else
    None. Everything that picks a file (serving, deploy, edge) asks this, so nothing assumes int8."""
    have = [f for f in formats if f in LITERT_FORMATS]
    if preferred is not None and preferred in have:
        return preferred
    for fmt in ("int8", "float32"):
        if fmt in have:
            return fmt
    return None


def litert_file(fmt: str) -> str:
    """``model_<fmt>.tflite``: the LiteRT file of a format."""
    if fmt not in LITERT_FORMATS:
        raise InvalidInputError(f"unknown LiteRT format {fmt!r}; expected one of {list(LITERT_FORMATS)}")
    return f"model_{fmt}.tflite"


def model_artifact(fmt: str) -> str:
    """The file (or directory) that holds a servable format inside a version."""
    if fmt == "saved_model":
        return SAVED_MODEL_DIR
    if fmt not in SERVABLE_FORMATS:
        raise InvalidInputError(f"unknown model format {fmt!r}; expected one of {list(SERVABLE_FORMATS)}")
    return litert_file(fmt)


def golden_stem(fmt: str) -> str:
    """``golden_<fmt>``: golden inputs/outputs of a LiteRT format (``.json`` + ``.npz``)."""
    litert_file(fmt)
    return f"golden_{fmt}"


def golden_files(fmt: str) -> tuple[str, str]:
    """(``golden_<fmt>.json``, ``golden_<fmt>.npz``)."""
    stem = golden_stem(fmt)
    return f"{stem}.json", f"{stem}.npz"


# -- the local pipeline run layout (kfp.local: <run>/<task>/<output>) ----------------------------
#: Task output directories of a run, by what they hold.
RUN_OUTPUTS: dict[str, tuple[str, str]] = {
    "dataset": ("ingest", "dataset"),
    "validation": ("validate", "result"),
    "validation_html": ("validate", "report"),
    "model": ("train", "model"),
    "evaluation": ("evaluate", "evaluation"),
    "equivalence": ("convert", "equivalence"),
    "edge_model": ("convert", "edge_model"),
    "registration": ("register", "registration"),
    "validation_figures": ("validate", "figures"),
    "evaluation_figures": ("evaluate", "figures"),
    "conversion_figures": ("convert", "figures"),
    "evaluation_html": ("evaluate", "report"),
}
#: Pipeline tasks in the order they run.
RUN_STEPS: tuple[str, ...] = (
    "ingest", "validate", "train", "evaluate", "convert", "register", "deploy-cloud",
)
#: Files inside step outputs that other steps and the summary read.
EVALUATION_REPORT = "evaluation.json"
VERDICT = "verdict.json"
#: Per-row test scores of every model the evaluate step judged (npz: y, score_<model>, threshold_<model>).
EVALUATION_SCORES = "scores.npz"


def run_output(run_dir: Path, key: str) -> Path:
    """Path of a step output inside a local run directory."""
    task, output = RUN_OUTPUTS[key]
    return Path(run_dir) / task / output


# -- strict parsing helpers ---------------------------------------------------------------------
T = TypeVar("T")


class _Reader:
    """Reads one JSON object strictly, naming the document and field in every complaint."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, Mapping):
            raise IntegrityError(f"{where}: expected a JSON object, got {type(data).__name__}", where)
        self.data = data
        self.where = where
        self.used: set[str] = set()

    def _fail(self, key: str, problem: str) -> IntegrityError:
        return IntegrityError(f"{self.where}: field {key!r} {problem}", self.where)

    def get(self, key: str, check: Callable[[Any], T], default: Any = ..., what: str = "") -> T:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self._fail(key, "is missing")
            return default
        try:
            return check(self.data[key])
        except (TypeError, ValueError) as exc:
            raise self._fail(key, f"must be {what or check.__name__}: {exc}") from None

    def done(self, allow_extra: bool = False) -> None:
        extra = sorted(set(self.data) - self.used)
        if extra and not allow_extra:
            raise IntegrityError(f"{self.where}: unknown field(s) {extra}", self.where)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"got {value}")
    return float(value)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"got {type(value).__name__}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"got {type(value).__name__}")
    return value


def _strs(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"got {type(value).__name__}")
    return tuple(_str(v) for v in value)


def _floats(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"got {type(value).__name__}")
    return tuple(_float(v) for v in value)


def _obj(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"got {type(value).__name__}")
    return dict(value)


def read_json(path: Path, what: str | None = None) -> Any:
    """Parse a JSON file; an unreadable or invalid file is an :class:`IntegrityError` naming it."""
    name = what or Path(path).name
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IntegrityError(f"{name} is missing ({path})", name) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{name} is not valid JSON: {exc}", name) from None


def dumps(payload: Any) -> str:
    """The one JSON style of contract documents: sorted keys, indented, newline-terminated."""
    return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"


# -- documents ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """``decision.json``: the threshold at which the probability becomes a failure alarm."""

    threshold: float
    target: str = "machine_failure"
    inputs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold <= 1.0:
            raise IntegrityError(f"{DECISION}: threshold {self.threshold} is not a probability", DECISION)

    @classmethod
    def from_dict(cls, data: Any) -> Decision:
        r = _Reader(data, DECISION)
        made = cls(
            threshold=r.get("threshold", _float, what="a number"),
            target=r.get("target", _str, "machine_failure", "a string"),
            inputs=r.get("inputs", _strs, (), "a list of strings"),
        )
        r.done()
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "target": self.target, "inputs": list(self.inputs)}


#: Version of the feature-spec document (and of the feature code that reads it).
FEATURE_SPEC_VERSION = "1"


@dataclass(frozen=True)
class FeatureSpec:
    """``feature_spec.json``: feature names in model-input order and their standardisation."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    version: str = FEATURE_SPEC_VERSION

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.mean) == len(self.scale)) or not self.names:
            raise IntegrityError(
                f"{FEATURE_SPEC}: names, mean and scale must be non-empty and of one length "
                f"(got {len(self.names)}, {len(self.mean)}, {len(self.scale)})", FEATURE_SPEC)
        if any(s <= 0 for s in self.scale):
            raise IntegrityError(f"{FEATURE_SPEC}: every scale must be positive", FEATURE_SPEC)
        if self.version != FEATURE_SPEC_VERSION:
            raise IntegrityError(f"{FEATURE_SPEC}: feature spec version {self.version!r}, this code reads "
                                 f"{FEATURE_SPEC_VERSION!r}", FEATURE_SPEC)

    @classmethod
    def from_dict(cls, data: Any) -> FeatureSpec:
        r = _Reader(data, FEATURE_SPEC)
        made = cls(
            names=r.get("names", _strs, what="a list of strings"),
            mean=r.get("mean", _floats, what="a list of finite numbers"),
            scale=r.get("scale", _floats, what="a list of finite numbers"),
            version=r.get("version", _str, what="a string"),
        )
        r.done()
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": list(self.mean), "scale": list(self.scale),
                "version": self.version}


@dataclass(frozen=True)
class Golden:
    """``golden_<fmt>.json``: how many golden rows, their width, the tolerance, the npz name."""

    n: int
    n_features: int
    tolerance: float
    npz: str

    @classmethod
    def from_dict(cls, data: Any, where: str = "golden") -> Golden:
        r = _Reader(data, where)
        files = r.get("files", _obj, what="an object")
        npz = files.get("npz")
        if not isinstance(npz, str) or not npz.endswith(".npz") or "/" in npz:
            raise IntegrityError(f"{where}: files.npz must name an .npz file beside it", where)
        made = cls(r.get("n", _int, what="an integer"), r.get("n_features", _int, what="an integer"),
                   r.get("tolerance", _float, what="a number"), npz)
        r.done()
        if made.n < 1 or made.n_features < 1 or made.tolerance < 0:
            raise IntegrityError(f"{where}: n and n_features must be positive, tolerance not negative", where)
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "n_features": self.n_features, "tolerance": self.tolerance,
                "files": {"npz": self.npz}}


@dataclass(frozen=True)
class Interval:
    """A metric estimate with its confidence interval."""

    value: float
    ci_low: float
    ci_high: float

    @classmethod
    def from_dict(cls, data: Any, where: str = "interval") -> Interval:
        r = _Reader(data, where)
        made = cls(r.get("value", _float, what="a number"), r.get("ci_low", _float, what="a number"),
                   r.get("ci_high", _float, what="a number"))
        r.done(allow_extra=True)  # evaluation reports may add e.g. "n" or "method"
        return made

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}


#: Newest schema of the version manifest; see :class:`VersionManifest` for what each added.
SCHEMA_VERSION = 2
MANIFEST_KIND = "shopfloor-model-version"


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size}


def safe_relative_path(rel: str) -> bool:
    """A manifest path that stays inside its version and is not the manifest itself."""
    p = PurePosixPath(rel)
    return (bool(rel) and not p.is_absolute() and ".." not in p.parts and "." not in p.parts
            and rel != MANIFEST and "\\" not in rel and "\n" not in rel)


@dataclass(frozen=True)
class VersionManifest:
    """``manifest.json`` of a published version: identity, lineage, evidence, checksums.

    Schema history (readers accept all; writers write the newest):

    * 1: the first registry manifest (key ``schema``).
    * 2: key renamed to ``schema_version``; ``model_family`` added (default ``"keras-mlp"``:
      every schema-1 version was the Keras MLP).
    """

    model: str
    version: str
    created_at: str
    run_id: str
    files: Mapping[str, FileEntry]
    threshold: float
    formats: tuple[str, ...]
    data_version: str | None = None
    code_version: str | None = None
    champion: str | None = None
    evaluated_against: str | None = None
    validation_suite: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Mapping[str, Interval]] = field(default_factory=dict)
    gates: Mapping[str, Any] = field(default_factory=dict)
    golden: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    lineage: Mapping[str, Any] = field(default_factory=dict)
    model_family: str = "keras-mlp"
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST) -> VersionManifest:
        r = _Reader(data, where)
        if "schema_version" in r.data:
            schema = r.get("schema_version", _int, what="an integer")
        else:
            schema = r.get("schema", _int, what="an integer")
        if schema > SCHEMA_VERSION:
            raise IntegrityError(f"{where}: manifest schema {schema} is newer than this shopfloor reads "
                                 f"({SCHEMA_VERSION}); upgrade shopfloor", where)
        if schema < 1:
            raise IntegrityError(f"{where}: manifest schema {schema} is not a known schema", where)
        kind = r.get("kind", _str, what="a string")
        if kind != MANIFEST_KIND:
            raise IntegrityError(f"{where}: kind is {kind!r}, expected {MANIFEST_KIND!r}", where)

        def files(value: Any) -> dict[str, FileEntry]:
            out = {}
            for rel, meta in _obj(value).items():
                if not safe_relative_path(rel):
                    raise ValueError(f"unsafe path {rel!r}")
                m = _obj(meta)
                sha, size = m.get("sha256"), m.get("size")
                if not isinstance(sha, str) or len(sha) != 64 or not isinstance(size, int) or size < 0:
                    raise ValueError(f"entry {rel!r} needs a sha256 hex digest and a size")
                out[rel] = FileEntry(sha, size)
            return out

        def metrics(value: Any) -> dict[str, dict[str, Interval]]:
            return {model: {name: Interval.from_dict(iv, f"{where}: metrics.{model}.{name}")
                            for name, iv in _obj(block).items()}
                    for model, block in _obj(value).items()}

        def golden(value: Any) -> dict[str, dict[str, str]]:
            return {fmt: {k: _str(v) for k, v in _obj(names).items()} for fmt, names in _obj(value).items()}

        made = cls(
            model=r.get("model", _str, what="a string"),
            version=r.get("version", _str, what="a string"),
            created_at=r.get("created_at", _str, what="a string"),
            run_id=r.get("run_id", _str, what="a string"),
            files=r.get("files", files, what="a map of safe paths to {sha256, size}"),
            threshold=r.get("threshold", _float, what="a number"),
            formats=r.get("formats", _strs, what="a list of strings"),
            data_version=r.get("data_version", _opt_str, None, "a string or null"),
            code_version=r.get("code_version", _opt_str, None, "a string or null"),
            champion=r.get("champion", _opt_str, None, "a string or null"),
            evaluated_against=r.get("evaluated_against", _opt_str, None, "a string or null"),
            validation_suite=r.get("validation_suite", _obj, {}, "an object"),
            metrics=r.get("metrics", metrics, {}, "metric intervals"),
            gates=r.get("gates", _obj, {}, "an object"),
            golden=r.get("golden", golden, {}, "an object of file names"),
            lineage=r.get("lineage", _obj, {}, "an object"),
            model_family=r.get("model_family", _str, "keras-mlp", "a string"),
            schema_version=SCHEMA_VERSION,
        )
        r.done()
        unknown = sorted(set(made.formats) - set(SERVABLE_FORMATS))
        if unknown:
            raise IntegrityError(f"{where}: unknown formats {unknown}", where)
        return made

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "kind": MANIFEST_KIND,
            "model": self.model,
            "version": self.version,
            "created_at": self.created_at,
            "run_id": self.run_id,
            "files": {rel: e.to_dict() for rel, e in sorted(self.files.items())},
            "threshold": self.threshold,
            "formats": list(self.formats),
            "data_version": self.data_version,
            "code_version": self.code_version,
            "champion": self.champion,
            "evaluated_against": self.evaluated_against,
            "validation_suite": dict(self.validation_suite),
            "metrics": {m: {k: iv.to_dict() for k, iv in block.items()} for m, block in self.metrics.items()},
            "gates": dict(self.gates),
            "golden": {f: dict(v) for f, v in self.golden.items()},
            "lineage": dict(self.lineage),
            "model_family": self.model_family,
        }

    def metric(self, model: str, name: str) -> Interval | None:
        """One metric of one model (e.g. ``("edge", "pr_auc")``), or None. Versions published
        before the shipped file had its own key kept the int8 file's metrics under ``int8``."""
        found = self.metrics.get(model, {}).get(name)
        if found is None and model == EDGE_KEY:
            found = self.metrics.get("int8", {}).get(name)
        return found

    @property
    def edge_format(self) -> str | None:
        """The LiteRT format this version runs by default (:func:`choose_format`)."""
        return choose_format(self.formats)

    def resolve_format(self, requested: str | None = None, prefer: str | None = None) -> str:
        """The format to serve this version in: ``requested`` when it names one (``auto`` or
        None: :func:`choose_format` with ``prefer``). One line naming the formats the version has
        when it lacks the one asked for (NotFoundError) or has no LiteRT file; InvalidInputError
        for a name that is no format at all."""
        if requested is None or requested == AUTO_FORMAT:
            chosen = choose_format(self.formats, prefer)
            if chosen is None:
                raise NotFoundError(f"version {self.version} has no LiteRT model to run; it has "
                                    f"{', '.join(self.formats) or 'no formats'} (name one)")
            return chosen
        if requested not in SERVABLE_FORMATS:
            raise InvalidInputError(f"model format {excerpt(requested)} is not one of "
                                    f"{[AUTO_FORMAT, *SERVABLE_FORMATS]}")
        if requested not in self.formats:
            raise NotFoundError(f"version {self.version} ({self.model_family}) has no {requested} model; "
                                f"it has {', '.join(self.formats)}")
        return requested

    @property
    def total_bytes(self) -> int:
        return sum(e.size for e in self.files.values())


DRAFT_KIND = "shopfloor-model-draft"


@dataclass(frozen=True)
class VersionDraft:
    """``manifest.json`` of an assembled, not yet published version: the lineage that
    assembly knows and the registry cannot derive from the files (it adds the rest)."""

    data_version: str | None = None
    code_version: str | None = None
    evaluated_against: str | None = None
    lineage: Mapping[str, Any] = field(default_factory=dict)
    #: The shipped family (from the convert step's lineage); None: the MLP (runs before issue 10).
    model_family: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST) -> VersionDraft:
        r = _Reader(data, where)
        kind = r.get("kind", _str, what="a string")
        if kind != DRAFT_KIND:
            raise IntegrityError(f"{where}: kind is {kind!r}, expected {DRAFT_KIND!r}", where)
        made = cls(
            data_version=r.get("data_version", _opt_str, None, "a string or null"),
            code_version=r.get("code_version", _opt_str, None, "a string or null"),
            evaluated_against=r.get("evaluated_against", _opt_str, None, "a string or null"),
            lineage=r.get("lineage", _obj, {}, "an object"),
            model_family=r.get("model_family", _opt_str, None, "a string or null"),
        )
        r.done()
        if made.model_family is not None and made.model_family not in MODEL_FAMILIES:
            raise IntegrityError(f"{where}: unknown model_family {excerpt(made.model_family)}", where)
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"kind": DRAFT_KIND, "data_version": self.data_version, "code_version": self.code_version,
                "evaluated_against": self.evaluated_against, "lineage": dict(self.lineage),
                "model_family": self.model_family}


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: kept forever in the alias document's history."""

    id: str
    at: str
    action: str
    version: str
    previous: str | None
    reason: str = ""

    @classmethod
    def from_dict(cls, data: Any, where: str = "alias history") -> AliasMove:
        r = _Reader(data, where)
        made = cls(
            id=r.get("id", _str, what="a string"),
            at=r.get("at", _str, what="a string"),
            action=r.get("action", _str, what="a string"),
            version=r.get("version", _str, what="a string"),
            previous=r.get("previous", _opt_str, None, "a string or null"),
            reason=r.get("reason", _str, "", "a string"),
        )
        r.done()
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at, "action": self.action, "version": self.version,
                "previous": self.previous, "reason": self.reason}


@dataclass(frozen=True)
class AliasDocument:
    """``_aliases/<env>/<alias>.json``: where an alias points now, and every move before."""

    model: str
    env: str
    alias: str
    version: str | None
    history: tuple[AliasMove, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str = "alias") -> AliasDocument:
        r = _Reader(data, where)

        def history(value: Any) -> tuple[AliasMove, ...]:
            if not isinstance(value, list):
                raise TypeError(f"got {type(value).__name__}")
            return tuple(AliasMove.from_dict(e, f"{where}: history[{i}]") for i, e in enumerate(value))

        made = cls(
            model=r.get("model", _str, what="a string"),
            env=r.get("env", _str, what="a string"),
            alias=r.get("alias", _str, what="a string"),
            version=r.get("version", _opt_str, what="a string or null"),
            history=r.get("history", history, (), "a list of moves"),
        )
        r.done()
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "env": self.env, "alias": self.alias, "version": self.version,
                "history": [m.to_dict() for m in self.history]}


# -- the release policy -------------------------------------------------------------------------
#: Metrics the gates may name (computed by shopfloor.evaluation.metrics).
GATE_METRICS: tuple[str, ...] = ("pr_auc", "roc_auc", "recall_at_precision", "f1")


@dataclass(frozen=True)
class Gate:
    metric: str
    min_ci_low: float


@dataclass(frozen=True)
class NonInferiority:
    metric: str
    margin: float
    against: tuple[str, ...] = ("baseline", "champion")


@dataclass(frozen=True)
class EquivalenceLimits:
    min_agreement_ci_low: float
    max_abs_probability_diff: float
    max_pr_auc_drop: float

    def to_dict(self) -> dict[str, float]:
        return {"min_agreement_ci_low": self.min_agreement_ci_low,
                "max_abs_probability_diff": self.max_abs_probability_diff,
                "max_pr_auc_drop": self.max_pr_auc_drop}


@dataclass(frozen=True)
class Selection:
    """Which gated candidate ships: the highest ``metric`` on the validation split, unless a
    family earlier in ``prefer`` (smaller or faster on the edge) is non-inferior to it within
    ``margin`` (lower bound of the paired difference at the policy's confidence)."""

    metric: str = "pr_auc"
    margin: float = 0.01
    prefer: tuple[str, ...] = (KERAS_MLP, HIST_GBT)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "margin": self.margin, "prefer": list(self.prefer)}


@dataclass(frozen=True)
class ReleasePolicy:
    """``policy.yaml``: the gates a model must pass before it may leave the pipeline."""

    policy_version: str
    gates: tuple[Gate, ...]
    non_inferiority: NonInferiority
    equivalence: Mapping[str, EquivalenceLimits]
    target_precision: float
    confidence: float = 0.95
    bootstrap_resamples: int = 1000
    source: str = ""
    #: Families trained, gated and eligible to ship (policies before issue 10: both).
    candidates: tuple[str, ...] = MODEL_FAMILIES
    selection: Selection = field(default_factory=Selection)

    @classmethod
    def from_dict(cls, data: Any, source: str = "policy") -> ReleasePolicy:
        """Strict: a typo must fail loudly, never disable a gate silently."""

        def bad(problem: str) -> InvalidInputError:
            return InvalidInputError(f"policy {source}: {problem}")

        if not isinstance(data, Mapping):
            raise bad("must be a mapping")
        known = {"policy_version", "gates", "non_inferiority", "equivalence", "threshold", "confidence",
                 "bootstrap_resamples", "candidates", "selection"}
        required = {"policy_version", "gates", "non_inferiority", "equivalence", "threshold"}
        missing = sorted(required - set(data))
        if missing:
            raise bad(f"missing {missing}")
        unknown = sorted(set(data) - known)
        if unknown:
            raise bad(f"unknown keys {unknown}")

        def number(value: Any, what: str, lo: float, hi: float) -> float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
                raise bad(f"{what} must be a number in [{lo}, {hi}], got {value!r}")
            return float(value)

        gates = []
        if not isinstance(data["gates"], list):
            raise bad("gates must be a list")
        for gate in data["gates"]:
            if not isinstance(gate, Mapping) or set(gate) != {"metric", "min_ci_low"} \
                    or gate["metric"] not in GATE_METRICS:
                raise bad(f"bad gate {gate!r}; each needs metric (one of {list(GATE_METRICS)}) "
                          "and min_ci_low")
            gates.append(Gate(gate["metric"], number(gate["min_ci_low"], "min_ci_low", 0.0, 1.0)))
        ni = data["non_inferiority"]
        if not isinstance(ni, Mapping) or ni.get("metric") not in GATE_METRICS or "margin" not in ni:
            raise bad(f"non_inferiority needs a metric from {list(GATE_METRICS)} and a margin")
        against = ni.get("against", ["baseline", "champion"])
        if not isinstance(against, list) or not set(against) <= {"baseline", "champion"}:
            raise bad("non_inferiority.against must list baseline and/or champion")
        equivalence = {}
        eq = data["equivalence"]
        if not isinstance(eq, Mapping):
            raise bad("equivalence must be a mapping of format -> limits")
        for fmt in LITERT_FORMATS:
            limits = eq.get(fmt)
            keys = {"min_agreement_ci_low", "max_abs_probability_diff", "max_pr_auc_drop"}
            if not isinstance(limits, Mapping) or set(limits) != keys:
                raise bad(f"equivalence.{fmt} needs exactly {sorted(keys)}")
            equivalence[fmt] = EquivalenceLimits(
                number(limits["min_agreement_ci_low"], f"equivalence.{fmt}.min_agreement_ci_low", 0.0, 1.0),
                number(limits["max_abs_probability_diff"], f"equivalence.{fmt}.max_abs_probability_diff",
                       0.0, 1.0),
                number(limits["max_pr_auc_drop"], f"equivalence.{fmt}.max_pr_auc_drop", 0.0, 1.0))
        threshold = data["threshold"]
        if not isinstance(threshold, Mapping) or set(threshold) != {"target_precision"}:
            raise bad("threshold needs exactly target_precision")
        resamples = data.get("bootstrap_resamples", 1000)
        if isinstance(resamples, bool) or not isinstance(resamples, int) or not 100 <= resamples <= 100_000:
            raise bad(f"bootstrap_resamples must be an integer in [100, 100000], got {resamples!r}")
        candidates = data.get("candidates", list(MODEL_FAMILIES))
        if not isinstance(candidates, list) or not candidates or len(set(candidates)) != len(candidates) \
                or not set(candidates) <= set(MODEL_FAMILIES):
            raise bad(f"candidates must list distinct families from {list(MODEL_FAMILIES)}, "
                      f"got {excerpt(candidates)}")
        sel = data.get("selection", {})
        if not isinstance(sel, Mapping) or not set(sel) <= {"metric", "margin", "prefer"}:
            raise bad("selection may hold only metric, margin and prefer")
        prefer = sel.get("prefer", list(MODEL_FAMILIES))
        if not isinstance(prefer, list) or len(set(prefer)) != len(prefer) \
                or set(prefer) != set(MODEL_FAMILIES):
            raise bad(f"selection.prefer must order every family of {list(MODEL_FAMILIES)}, "
                      f"got {excerpt(prefer)}")
        if sel.get("metric", "pr_auc") not in GATE_METRICS:
            raise bad(f"selection.metric must be one of {list(GATE_METRICS)}")
        selection = Selection(str(sel.get("metric", "pr_auc")),
                              number(sel.get("margin", 0.01), "selection.margin", 0.0, 1.0), tuple(prefer))
        return cls(
            policy_version=str(data["policy_version"]),
            gates=tuple(gates),
            non_inferiority=NonInferiority(
                ni["metric"], number(ni["margin"], "non_inferiority.margin", 0.0, 1.0), tuple(against)),
            equivalence=equivalence,
            target_precision=number(threshold["target_precision"], "threshold.target_precision", 0.0, 1.0),
            confidence=number(data.get("confidence", 0.95), "confidence", 0.5, 0.999),
            bootstrap_resamples=resamples,
            source=source,
            candidates=tuple(candidates),
            selection=selection,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy_version": self.policy_version,
            "gates": [{"metric": g.metric, "min_ci_low": g.min_ci_low} for g in self.gates],
            "non_inferiority": {"metric": self.non_inferiority.metric, "margin": self.non_inferiority.margin,
                                "against": list(self.non_inferiority.against)},
            "equivalence": {f: lim.to_dict() for f, lim in self.equivalence.items()},
            "threshold": {"target_precision": self.target_precision},
            "confidence": self.confidence,
            "bootstrap_resamples": self.bootstrap_resamples,
            "candidates": list(self.candidates),
            "selection": self.selection.to_dict(),
        }


# -- signatures and reference statistics --------------------------------------------------------
#: Directory of detached signatures beside a version on a device or in a bundle
#: (``signatures/<key_id>.json``); in the registry they live under ``<model>/_signatures/<version>/``.
SIGNATURES_DIR = "signatures"
SIGNATURE_SCHEMA_VERSION = 1
SIGNATURE_ALGORITHM = "ed25519"
#: Largest signature document read (they are ~400 bytes).
MAX_SIGNATURE_BYTES = 64 << 10
_KEY_ID_CHARS = frozenset("0123456789abcdef")


def is_key_id(value: object) -> bool:
    """A key id: 16 lowercase hex characters (sha256 of the raw public key, cut)."""
    return isinstance(value, str) and len(value) == 16 and set(value) <= _KEY_ID_CHARS


@dataclass(frozen=True)
class SignatureDoc:
    """A detached ed25519 signature over the exact bytes of a version's ``manifest.json``.

    Holds only public material: which key signed (its id), what (model, version, manifest
    digest) and the signature itself. Never the private key.
    """

    key_id: str
    model: str
    version: str
    manifest_sha256: str
    signature: str
    signed_at: str
    algorithm: str = SIGNATURE_ALGORITHM
    schema_version: int = SIGNATURE_SCHEMA_VERSION

    @property
    def file_name(self) -> str:
        return f"{self.key_id}.json"

    @classmethod
    def from_dict(cls, data: Any, where: str = "signature") -> SignatureDoc:
        r = _Reader(data, where)
        made = cls(
            key_id=r.get("key_id", _str, what="a string"),
            model=r.get("model", _str, what="a string"),
            version=r.get("version", _str, what="a string"),
            manifest_sha256=r.get("manifest_sha256", _str, what="a string"),
            signature=r.get("signature", _str, what="a string"),
            signed_at=r.get("signed_at", _str, what="a string"),
            algorithm=r.get("algorithm", _str, what="a string"),
            schema_version=r.get("schema_version", _int, what="an integer"),
        )
        r.done()
        if made.schema_version != SIGNATURE_SCHEMA_VERSION:
            raise IntegrityError(f"{where}: signature schema {made.schema_version} is not "
                                 f"{SIGNATURE_SCHEMA_VERSION}", where)
        if not is_key_id(made.key_id):
            raise IntegrityError(f"{where}: key_id must be 16 lowercase hex characters", where)
        if len(made.manifest_sha256) != 64 or not set(made.manifest_sha256) <= _KEY_ID_CHARS:
            raise IntegrityError(f"{where}: manifest_sha256 must be a sha256 hex digest", where)
        if len(made.signature) > 256:
            raise IntegrityError(f"{where}: signature is longer than an ed25519 signature", where)
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "algorithm": self.algorithm, "key_id": self.key_id,
                "model": self.model, "version": self.version, "manifest_sha256": self.manifest_sha256,
                "signature": self.signature, "signed_at": self.signed_at}


#: Reference statistics of the training data, carried by every version since issue 8
#: (older versions have none: readers treat it as optional).
REFERENCE_STATS = "reference_stats.json"
REFERENCE_STATS_VERSION = 1
#: Bounds of the document: it travels to every edge site with the model.
MAX_REFERENCE_STATS_BYTES = 256 << 10
MAX_REFERENCE_VARIABLES = 128
MAX_REFERENCE_BINS = 64
MAX_QUANTILE_LEVELS = 33


@dataclass(frozen=True)
class Distribution:
    """One variable's distribution on the training rows: moments, quantiles, a histogram."""

    name: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    quantiles: tuple[float, ...]
    bin_edges: tuple[float, ...]
    bin_counts: tuple[int, ...]

    @classmethod
    def from_dict(cls, data: Any, where: str = "distribution") -> Distribution:
        r = _Reader(data, where)

        def ints(value: Any) -> tuple[int, ...]:
            if not isinstance(value, list | tuple):
                raise TypeError(f"got {type(value).__name__}")
            return tuple(_int(v) for v in value)

        made = cls(
            name=r.get("name", _str, what="a string"),
            count=r.get("count", _int, what="an integer"),
            mean=r.get("mean", _float, what="a number"),
            std=r.get("std", _float, what="a number"),
            min=r.get("min", _float, what="a number"),
            max=r.get("max", _float, what="a number"),
            quantiles=r.get("quantiles", _floats, what="a list of finite numbers"),
            bin_edges=r.get("bin_edges", _floats, what="a list of finite numbers"),
            bin_counts=r.get("bin_counts", ints, what="a list of integers"),
        )
        r.done()
        bins = len(made.bin_counts)
        if not 1 <= bins <= MAX_REFERENCE_BINS or len(made.bin_edges) != bins + 1:
            raise IntegrityError(f"{where}: needs 1-{MAX_REFERENCE_BINS} bins and one more edge than bins",
                                 where)
        if any(b < a for a, b in zip(made.bin_edges, made.bin_edges[1:], strict=False)) \
                or any(b < a for a, b in zip(made.quantiles, made.quantiles[1:], strict=False)):
            raise IntegrityError(f"{where}: bin edges and quantiles must not decrease", where)
        if made.count < 1 or any(c < 0 for c in made.bin_counts) or sum(made.bin_counts) != made.count:
            raise IntegrityError(f"{where}: bin counts must be non-negative and add up to count", where)
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "mean": self.mean, "std": self.std, "min": self.min,
                "max": self.max, "quantiles": list(self.quantiles), "bin_edges": list(self.bin_edges),
                "bin_counts": list(self.bin_counts)}


@dataclass(frozen=True)
class ReferenceStats:
    """``reference_stats.json``: the training data as the model saw it, for drift checks on site.

    ``features`` are the model inputs (standardised by ``feature_spec.json``) in model-input
    order; ``predictions`` the predicted failure probability of each LiteRT format on the
    same rows. Quantiles are at ``quantile_levels``.
    """

    n_rows: int
    quantile_levels: tuple[float, ...]
    features: tuple[Distribution, ...]
    predictions: Mapping[str, Distribution]
    data_version: str | None = None
    space: str = "model_input"
    schema_version: int = REFERENCE_STATS_VERSION

    @classmethod
    def from_dict(cls, data: Any, where: str = REFERENCE_STATS) -> ReferenceStats:
        r = _Reader(data, where)

        def dists(value: Any) -> tuple[Distribution, ...]:
            if not isinstance(value, list) or len(value) > MAX_REFERENCE_VARIABLES:
                raise TypeError(f"a list of at most {MAX_REFERENCE_VARIABLES}")
            return tuple(Distribution.from_dict(v, f"{where}: features[{i}]") for i, v in enumerate(value))

        def preds(value: Any) -> dict[str, Distribution]:
            return {fmt: Distribution.from_dict(v, f"{where}: predictions.{fmt}")
                    for fmt, v in _obj(value).items()}

        made = cls(
            n_rows=r.get("n_rows", _int, what="an integer"),
            quantile_levels=r.get("quantile_levels", _floats, what="a list of finite numbers"),
            features=r.get("features", dists, what="a list of distributions"),
            predictions=r.get("predictions", preds, what="an object of distributions"),
            data_version=r.get("data_version", _opt_str, None, "a string or null"),
            space=r.get("space", _str, "model_input", "a string"),
            schema_version=r.get("schema_version", _int, what="an integer"),
        )
        r.done()
        if made.schema_version > REFERENCE_STATS_VERSION:
            raise IntegrityError(f"{where}: schema {made.schema_version} is newer than this shopfloor reads "
                                 f"({REFERENCE_STATS_VERSION})", where)
        levels = made.quantile_levels
        if not 1 <= len(levels) <= MAX_QUANTILE_LEVELS or any(not 0.0 <= q <= 1.0 for q in levels):
            raise IntegrityError(f"{where}: 1-{MAX_QUANTILE_LEVELS} quantile levels in [0, 1]", where)
        for d in (*made.features, *made.predictions.values()):
            if len(d.quantiles) != len(levels):
                raise IntegrityError(f"{where}: {d.name} has {len(d.quantiles)} quantiles for "
                                     f"{len(levels)} levels", where)
        unknown = sorted(set(made.predictions) - set(LITERT_FORMATS))
        if unknown:
            raise IntegrityError(f"{where}: predictions of unknown formats {unknown}", where)
        return made

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "space": self.space, "n_rows": self.n_rows,
                "data_version": self.data_version, "quantile_levels": list(self.quantile_levels),
                "features": [d.to_dict() for d in self.features],
                "predictions": {f: d.to_dict() for f, d in sorted(self.predictions.items())}}

    def feature(self, name: str) -> Distribution | None:
        return next((d for d in self.features if d.name == name), None)


# -- reading a version directory ----------------------------------------------------------------
def load_decision(version_dir: Path) -> Decision:
    return Decision.from_dict(read_json(Path(version_dir) / DECISION, DECISION))


def load_feature_spec(version_dir: Path) -> FeatureSpec:
    return FeatureSpec.from_dict(read_json(Path(version_dir) / FEATURE_SPEC, FEATURE_SPEC))


def load_golden(version_dir: Path, fmt: str) -> Golden:
    name = golden_files(fmt)[0]
    return Golden.from_dict(read_json(Path(version_dir) / name, name), name)


def load_manifest(version_dir: Path) -> VersionManifest:
    return VersionManifest.from_dict(read_json(Path(version_dir) / MANIFEST, MANIFEST))


def load_reference_stats(version_dir: Path) -> ReferenceStats | None:
    """The version's reference statistics, or None for a version published before them."""
    path = Path(version_dir) / REFERENCE_STATS
    if not path.exists():
        return None
    if path.stat().st_size > MAX_REFERENCE_STATS_BYTES:
        raise IntegrityError(f"{REFERENCE_STATS} is larger than {MAX_REFERENCE_STATS_BYTES} bytes",
                             REFERENCE_STATS)
    return ReferenceStats.from_dict(read_json(path, REFERENCE_STATS))
