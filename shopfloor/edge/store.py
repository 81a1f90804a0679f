"""The model store on an edge device: versions verified on the device, one active, rollback.

Layout under the store's root::

    versions/<version>/   a complete, verified version: its files, manifest.json and
                          signatures/<key_id>.json (renamed in whole, never written in place)
    incoming/             staging of installs in progress (cleared on start)
    state.json            active version, activation history, events (atomic replace)
    store.lock            fcntl lock: one process changes the store at a time

A version reaches ``versions/`` only after every check passed on this device, in this order:
size bounds (before a byte is copied), signature over the manifest against the site's trust
file, every file's sha256 and size against the manifest (no missing or extra file), the
LiteRT file this device runs loads (the profile's preferred format when the version has it,
else the version's own: a tree ensemble has only float32; :func:`contract.choose_format`), the
golden inputs reproduce that file's golden outputs within the version's tolerance, and the
per-row latency measured here is within the profile's budget. Any failure leaves nothing in
``versions/`` and the active version untouched.

Crash safety: installs stage in ``incoming/`` and rename; activation replaces ``state.json``
atomically. :meth:`ModelStore.recover` (run at start) clears ``incoming/``, re-verifies the
active version and falls back to the newest previous verified one when it is broken.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import stat
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shopfloor import contract, lineage, settings
from shopfloor.contract import MANIFEST, SIGNATURES_DIR, SignatureDoc, VersionManifest
from shopfloor.errors import (
    ConflictError,
    GateFailedError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    ShopfloorError,
    bounded,
    excerpt,
)
from shopfloor.lineage import FILE_MODE

if TYPE_CHECKING:
    from shopfloor.edge.profiles import DeviceProfile
    from shopfloor.edge.signing import TrustStore

log = logging.getLogger(__name__)

VERSIONS = "versions"
INCOMING = "incoming"
STATE = "state.json"
LOCK = "store.lock"
#: Largest version the store accepts (all files, SavedModel included), checked before copying.
MAX_VERSION_BYTES = settings.EDGE_MAX_UPLOAD_BYTES
MAX_VERSION_FILES = 10_000
MAX_MANIFEST_BYTES = 16 << 20
MAX_STATE_BYTES = 4 << 20
MAX_GOLDEN_BYTES = 64 << 20
#: Activation history and event entries kept in state.json.
MAX_HISTORY = 100
MAX_EVENTS = 50
#: Single-row calls timed for the latency check (after a warm-up).
LATENCY_CALLS = 300
LATENCY_WARMUP = 30
#: Steps at which the fault hook (settings.EDGE_FAULT, tests only) kills the process.
FAULT_STEPS: tuple[str, ...] = ("after_download", "after_verify", "after_self_test", "during_switch")
_VERSION = re.compile(r"v\d{4,12}")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _fault(step: str) -> None:
    """Tests: die here, as a power cut or OOM kill would, when SHOPFLOOR_EDGE_FAULT names this step."""
    if settings.EDGE_FAULT.get() == step:
        log.warning("fault hook: SIGKILL at %s", step)
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_regular(path: Path, rel: str) -> int:
    try:
        return lineage.open_regular(path)
    except lineage.NotRegularFileError as exc:
        message = {
            "missing": f"{rel} is in the manifest but missing",
            "link": f"{rel} is a symbolic link",
            "special": f"{rel} is not a regular file",
        }.get(exc.kind, f"cannot read {rel}: {exc.strerror}")
        raise IntegrityError(message, rel) from None


def _read_bounded(path: Path, rel: str, limit: int) -> bytes:
    with os.fdopen(_open_regular(path, rel), "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise IntegrityError(f"{rel} is larger than {limit} bytes", rel)
    return data


def _tree(root: Path) -> dict[str, int]:
    """Regular files below ``root`` (relative POSIX path -> size), signatures excluded; a
    link or special file anywhere is refused."""
    found: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == root and SIGNATURES_DIR in dirnames:
            dirnames.remove(SIGNATURES_DIR)
        for name in (*dirnames, *filenames):
            full = here / name
            rel = full.relative_to(root).as_posix()
            st = os.lstat(full)
            if stat.S_ISREG(st.st_mode):
                found[rel] = st.st_size
            elif not stat.S_ISDIR(st.st_mode):
                raise IntegrityError(f"{rel} is not a regular file or directory", rel)
            if len(found) > MAX_VERSION_FILES:
                raise IntegrityError(f"version holds more than {MAX_VERSION_FILES} files")
    return found


def _parse_manifest(data: bytes, where: str) -> VersionManifest:
    try:
        loaded = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise IntegrityError(f"{where} is not valid JSON: {exc}", MANIFEST) from None
    manifest = VersionManifest.from_dict(loaded, where)
    if not _VERSION.fullmatch(manifest.version):
        raise IntegrityError(f"{where}: version {excerpt(manifest.version)} is not a version id (v0001, ...)",
                             MANIFEST)
    return manifest


def _check_files(root: Path, manifest: VersionManifest) -> None:
    """Every file of ``root`` against the manifest: none missing, none extra, sha256 and size."""
    present = _tree(root)
    present.pop(MANIFEST, None)
    extra = sorted(set(present) - set(manifest.files))
    if extra:
        raise IntegrityError(f"{manifest.version}: {excerpt(extra, 120)} not in the manifest", extra[0])
    for rel, entry in sorted(manifest.files.items()):
        if rel not in present:
            raise IntegrityError(f"{manifest.version}/{rel} is in the manifest but missing", rel)
        if present[rel] != entry.size:
            raise IntegrityError(f"{manifest.version}/{rel} has {present[rel]} bytes, manifest says "
                                 f"{entry.size}", rel)
        digest = hashlib.sha256()
        with os.fdopen(_open_regular(root / rel, rel), "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        if digest.hexdigest() != entry.sha256:
            raise IntegrityError(f"{manifest.version}/{rel} does not match its manifest sha256", rel)


@dataclass(frozen=True)
class SelfTest:
    #: The LiteRT format tested: the one this device runs the version in.
    format: str
    golden_rows: int
    max_abs_diff: float
    tolerance: float
    latency_us_median: float
    latency_us_p99: float


def self_test(version_dir: Path, fmt: str) -> SelfTest:
    """Load the format's LiteRT file, reproduce its golden outputs (batch and single-row
    paths) within the version's tolerance, and time single-row calls on this device."""
    from shopfloor.inference.runtime import LiteRTModel

    root = Path(version_dir)
    golden = contract.load_golden(root, fmt)
    spec = contract.load_feature_spec(root)
    npz = _read_bounded(root / golden.npz, golden.npz, MAX_GOLDEN_BYTES)
    import io

    try:
        with np.load(io.BytesIO(npz), allow_pickle=False) as data:
            x = np.asarray(data["inputs"], dtype=np.float32)
            expected = np.asarray(data["outputs"], dtype=np.float64).reshape(-1)
    except (KeyError, ValueError, OSError) as exc:
        raise IntegrityError(f"{golden.npz} does not hold golden inputs and outputs: "
                             f"{bounded(str(exc), 120)}", golden.npz) from None
    if x.shape != (golden.n, golden.n_features) or expected.shape != (golden.n,) \
            or golden.n_features != len(spec.names):
        raise IntegrityError(f"{golden.npz}: arrays {list(x.shape)}/{list(expected.shape)} do not match "
                             f"{golden.n} rows x {len(spec.names)} features", golden.npz)
    model_file = contract.litert_file(fmt)
    model = LiteRTModel(root / model_file)
    if model.n_features != len(spec.names):
        raise IntegrityError(f"{model_file} takes {model.n_features} features, the feature spec makes "
                             f"{len(spec.names)}", model_file)
    batch = model.predict_proba(x)
    single = np.array([model.predict_one(row) for row in x[:16]])
    worst = max(float(np.max(np.abs(batch - expected))),
                float(np.max(np.abs(single - expected[: len(single)]))))
    if not np.isfinite(worst) or worst > golden.tolerance:
        raise GateFailedError(f"self-test failed: the golden outputs of {model_file} do not reproduce on "
                              f"this device (largest difference {worst:.6g} > tolerance "
                              f"{golden.tolerance:.6g})")
    rows = [x[i % len(x)].reshape(1, -1) for i in range(LATENCY_CALLS + LATENCY_WARMUP)]
    timings = []
    for i, row in enumerate(rows):
        t0 = time.perf_counter_ns()
        model.predict_one(row)
        if i >= LATENCY_WARMUP:
            timings.append((time.perf_counter_ns() - t0) / 1000.0)
    return SelfTest(fmt, golden.n, worst, golden.tolerance, float(np.median(timings)),
                    float(np.percentile(timings, 99)))


@dataclass(frozen=True)
class InstallReport:
    """What :meth:`ModelStore.install` checked and measured."""

    model: str
    version: str
    key_id: str
    #: The model family and the LiteRT format this device runs the version in.
    family: str
    format: str
    files: int
    bytes: int
    self_test: SelfTest
    latency_budget_us: float | None
    profile: str | None
    already_installed: bool
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StateChange:
    action: str
    previous: str | None
    active: str | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RecoverReport:
    active: str | None
    previous_active: str | None
    reason: str | None
    cleared: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _State:
    active: str | None = None
    history: list[str] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    last_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": 1, "active": self.active, "history": self.history[-MAX_HISTORY:],
                "events": self.events[-MAX_EVENTS:], "last_error": self.last_error}

    @classmethod
    def from_dict(cls, data: Any) -> _State:
        if not isinstance(data, dict) or data.get("schema_version") != 1:
            raise IntegrityError(f"{STATE} is not a store state document (schema_version 1)", STATE)
        active, history, events = data.get("active"), data.get("history"), data.get("events")
        last_error = data.get("last_error")
        if not (active is None or (isinstance(active, str) and _VERSION.fullmatch(active))) \
                or not isinstance(history, list) or not all(isinstance(v, str) and _VERSION.fullmatch(v)
                                                            for v in history) \
                or not isinstance(events, list) or not (last_error is None or isinstance(last_error, str)):
            raise IntegrityError(f"{STATE}: malformed active/history/events/last_error", STATE)
        return cls(active, list(history), [e for e in events if isinstance(e, dict)], last_error)

    def event(self, action: str, version: str | None, reason: str = "") -> None:
        self.events.append({"at": _now(), "action": action, "version": version,
                            "reason": bounded(reason, 300)})
        del self.events[:-MAX_EVENTS]


class ModelStore:
    """The versions on one device, which one is active, and how it got there (see module doc)."""

    def __init__(self, root: Path, *, trust: TrustStore, profile: DeviceProfile | None = None,
                 keep: int = settings.EDGE_KEEP_VERSIONS, max_version_bytes: int = MAX_VERSION_BYTES,
                 lock_timeout: float = 60.0) -> None:
        if keep < 1:
            raise InvalidInputError(f"keep must be at least 1, got {keep} (the active and the previous "
                                    "version are always kept)")
        self.root = Path(root)
        self.trust = trust
        self.profile = profile
        self.keep = keep
        self.max_version_bytes = max_version_bytes
        self.lock_timeout = lock_timeout
        #: The profile's preferred LiteRT format (None: the version's own edge format).
        self.preferred_format: str | None = profile.variant if profile is not None else None
        for sub in (VERSIONS, INCOMING):
            try:
                (self.root / sub).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInputError(
                    f"model store {self.root} cannot be used: {exc.strerror or exc}") from None

    def __repr__(self) -> str:
        return f"ModelStore({str(self.root)!r}, active={self.active()!r})"

    # -- locking and state ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive across processes (and across threads: each call opens its own descriptor)."""
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        try:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ConflictError(f"model store {self.root} is busy: another process is changing "
                                            f"it (waited {self.lock_timeout:g} s)") from None
                    time.sleep(0.05)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _read_state(self) -> _State:
        path = self.root / STATE
        if not path.exists():
            return _State()
        try:
            data = json.loads(_read_bounded(path, STATE, MAX_STATE_BYTES))
        except (UnicodeDecodeError, ValueError) as exc:
            raise IntegrityError(f"{STATE} is not valid JSON: {exc}", STATE) from None
        return _State.from_dict(data)

    def _write_state(self, state: _State, *, switch: bool = False) -> None:
        """Temp file + fsync + rename: readers see the old state or the new one."""
        path = self.root / STATE
        tmp = self.root / f".{STATE}.{uuid.uuid4().hex[:12]}.tmp"
        data = (json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n").encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), FILE_MODE)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            if switch:
                _fault("during_switch")
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def _record_error(self, what: str, exc: ShopfloorError) -> None:
        message = bounded(f"{what}: {exc}")
        log.error("%s", message)
        try:
            state = self._read_state()
        except IntegrityError:
            return
        state.last_error = message
        state.event("refused", None, message)
        self._write_state(state)

    # -- reading ----------------------------------------------------------------------------------
    def version_dir(self, version: str) -> Path:
        return self.root / VERSIONS / version

    def installed(self) -> list[str]:
        """Installed versions, oldest id first."""
        base = self.root / VERSIONS
        names = [p.name for p in base.iterdir() if _VERSION.fullmatch(p.name) and p.is_dir()
                 and not p.is_symlink()] if base.is_dir() else []
        return sorted(names, key=lambda v: int(v[1:]))

    def active(self) -> str | None:
        return self._read_state().active

    def active_dir(self) -> Path | None:
        active = self.active()
        return self.version_dir(active) if active else None

    def history(self) -> list[str]:
        """Activation history, oldest first (rollback walks it back)."""
        return list(self._read_state().history)

    def format_for(self, manifest: VersionManifest) -> str | None:
        """The LiteRT format this device runs ``manifest``'s version in (None: it has none)."""
        return contract.choose_format(manifest.formats, self.preferred_format)

    def format_of(self, version: str) -> str | None:
        """The LiteRT format an installed version runs in here (None: unreadable manifest)."""
        try:
            raw = _read_bounded(self.version_dir(version) / MANIFEST, MANIFEST, MAX_MANIFEST_BYTES)
            return self.format_for(_parse_manifest(raw, f"{version}/{MANIFEST}"))
        except ShopfloorError:
            return None

    def status(self) -> dict[str, Any]:
        state = self._read_state()
        installed = self.installed()
        formats = {version: self.format_of(version) for version in installed}
        return {"active": state.active, "installed": installed, "history": state.history,
                "last_error": state.last_error, "events": state.events[-10:],
                "profile": self.profile.name if self.profile else None,
                "preferred_format": self.preferred_format, "formats": formats,
                "active_format": formats.get(state.active) if state.active else None}

    def verify(self, version: str) -> str:
        """Re-check an installed version on disk: files against its manifest and its
        signatures against the trust file. Returns the verifying key id."""
        root = self.version_dir(version)
        if not root.is_dir() or root.is_symlink():
            raise NotFoundError(f"version {excerpt(version, 40)} is not installed in {self.root}")
        raw = _read_bounded(root / MANIFEST, MANIFEST, MAX_MANIFEST_BYTES)
        manifest = _parse_manifest(raw, f"{version}/{MANIFEST}")
        if manifest.version != version:
            raise IntegrityError(f"{version}/{MANIFEST} describes {manifest.version}", MANIFEST)
        _check_files(root, manifest)
        from shopfloor.edge.signing import read_signature_dir

        return self.trust.verify(raw, read_signature_dir(root / SIGNATURES_DIR))

    # -- installing -------------------------------------------------------------------------------
    def _budget_problems(self, manifest: VersionManifest) -> list[str]:
        problems = []
        if manifest.total_bytes > self.max_version_bytes:
            problems.append(f"{manifest.model} {manifest.version} is {manifest.total_bytes:,} bytes, over "
                            f"this store's limit of {self.max_version_bytes:,} bytes")
        if len(manifest.files) > MAX_VERSION_FILES:
            problems.append(f"{manifest.version} has {len(manifest.files)} files, over {MAX_VERSION_FILES}")
        if self.profile is not None:
            from shopfloor.edge.profiles import check_fits

            problems.extend(check_fits(manifest, self.profile))
        elif self.format_for(manifest) is None:
            problems.append(f"{manifest.version} has no LiteRT model to run "
                            f"(it has {list(manifest.formats)})")
        return problems

    def install(self, source_dir: Path, signatures: Sequence[SignatureDoc] = ()) -> InstallReport:
        """Verify ``source_dir`` (a version: its files and ``manifest.json``) on this device and
        add it to ``versions/``; it does not become active (see :meth:`activate`).

        Raises IntegrityError (signature, checksum, missing or extra file, unloadable model)
        or GateFailedError (size or profile budget, self-test, latency), naming the problem;
        nothing is left in ``versions/`` then, and the reason is recorded as ``last_error``.
        """
        started = time.monotonic()
        source = Path(source_dir)
        with self._locked():
            try:
                return self._install(source, list(signatures), started)
            except ShopfloorError as exc:
                self._record_error(f"install from {source.name}", exc)
                raise

    def _install(self, source: Path, signatures: list[SignatureDoc], started: float) -> InstallReport:
        raw = _read_bounded(source / MANIFEST, MANIFEST, MAX_MANIFEST_BYTES)
        manifest = _parse_manifest(raw, f"{source.name}/{MANIFEST}")
        version = manifest.version
        problems = self._budget_problems(manifest)
        if problems:
            raise GateFailedError(f"{manifest.model} {version} refused on this device: {'; '.join(problems)}")
        key = self.trust.verify(raw, signatures)  # cheap, and before a byte is copied

        if version in self.installed():
            try:
                self.verify(version)
            except IntegrityError as exc:
                if self._read_state().active == version:
                    raise  # the served copy is broken: recover() decides, not an upload
                log.warning("installed copy of %s is broken (%s): installing it again", version, exc)
                self._discard(version)
            else:
                test = self_test(self.version_dir(version), str(self.format_for(manifest)))
                self._check_latency(test)
                return self._report(manifest, key, test, started, already=True)

        present = _tree(source)
        present.pop(MANIFEST, None)
        if sum(present.values()) > self.max_version_bytes:
            raise GateFailedError(f"{source} holds {sum(present.values()):,} bytes, over this store's limit "
                                  f"of {self.max_version_bytes:,} bytes")
        extra = sorted(set(present) - set(manifest.files))
        if extra:
            raise IntegrityError(f"{version}: {excerpt(extra, 120)} not in the manifest", extra[0])
        staging = self.root / INCOMING / f"{version}.{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            for rel, entry in sorted(manifest.files.items()):
                self._copy_verified(source / rel, staging / rel, rel, entry, version)
            (staging / MANIFEST).write_bytes(raw)
            from shopfloor.edge.signing import write_signature_dir

            write_signature_dir(staging / SIGNATURES_DIR,
                                [s for s in signatures if (s.model, s.version) == (manifest.model, version)])
            _fault("after_download")
            _check_files(staging, manifest)  # what is on this disk now, not what was read
            self.trust.verify((staging / MANIFEST).read_bytes(), signatures)
            _fault("after_verify")
            test = self_test(staging, str(self.format_for(manifest)))
            self._check_latency(test)
            _fault("after_self_test")
            _fsync_dir(staging)
            os.rename(staging, self.version_dir(version))
            _fsync_dir(self.root / VERSIONS)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        state = self._read_state()
        state.event("installed", version, f"signed by {key}; {manifest.model_family} {test.format} LiteRT; "
                                          f"self-test max diff {test.max_abs_diff:.3g}; "
                                          f"latency {test.latency_us_median:.1f} us/row")
        self._prune(state, version)
        self._write_state(state)
        log.info("installed %s %s (key %s)", manifest.model, version, key)
        return self._report(manifest, key, test, started, already=False)

    def _copy_verified(self, src: Path, dest: Path, rel: str, entry: contract.FileEntry,
                       version: str) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        with os.fdopen(_open_regular(src, rel), "rb") as fh, \
                os.fdopen(os.open(dest, flags, FILE_MODE), "wb") as out:
            while chunk := fh.read(min(1 << 20, entry.size - size + 1)):
                size += len(chunk)
                if size > entry.size:
                    raise IntegrityError(f"{version}/{rel} is larger than the {entry.size} bytes of its "
                                         "manifest", rel)
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != entry.size:
            raise IntegrityError(f"{version}/{rel} has {size} bytes, manifest says {entry.size}", rel)
        if digest.hexdigest() != entry.sha256:
            raise IntegrityError(f"{version}/{rel} does not match its manifest sha256", rel)

    def _check_latency(self, test: SelfTest) -> None:
        if self.profile is not None and test.latency_us_median > self.profile.latency_budget_us:
            raise GateFailedError(
                f"latency check failed: {test.latency_us_median:.1f} us per row (median of {LATENCY_CALLS}) "
                f"measured on this device, over profile {self.profile.name}'s budget of "
                f"{self.profile.latency_budget_us:g} us")

    def _report(self, manifest: VersionManifest, key: str, test: SelfTest, started: float, *,
                already: bool) -> InstallReport:
        return InstallReport(
            model=manifest.model, version=manifest.version, key_id=key, family=manifest.model_family,
            format=test.format,
            files=len(manifest.files), bytes=manifest.total_bytes, self_test=test,
            latency_budget_us=self.profile.latency_budget_us if self.profile else None,
            profile=self.profile.name if self.profile else None, already_installed=already,
            seconds=round(time.monotonic() - started, 3))

    # -- activation -------------------------------------------------------------------------------
    def activate(self, version: str) -> StateChange:
        """Make an installed version active (re-verified first: files and signature)."""
        with self._locked():
            try:
                self.verify(version)
            except ShopfloorError as exc:
                self._record_error(f"activating {excerpt(version, 40)}", exc)
                raise
            state = self._read_state()
            previous = state.active
            if previous == version:
                return StateChange("activate", previous, version, "already active")
            state.active = version
            state.history.append(version)
            del state.history[:-MAX_HISTORY]
            state.last_error = None
            state.event("activate", version, f"runs {self.format_of(version)} LiteRT; previous {previous}")
            self._write_state(state, switch=True)
            self._prune(state)
            self._write_state(state)
            return StateChange("activate", previous, version)

    def rollback(self) -> StateChange:
        """Go back one version in the activation history (re-verified first)."""
        with self._locked():
            state = self._read_state()
            stack = list(state.history)
            if len(stack) < 2:
                raise ConflictError(f"nothing to roll back to: model store {self.root} has no earlier "
                                    f"activation (history {stack})")
            target, previous = stack[-2], state.active
            try:
                self.verify(target)
            except ShopfloorError as exc:
                self._record_error(f"rolling back to {target}", exc)
                raise
            state.history = stack[:-1]
            state.active = target
            state.last_error = None
            state.event("rollback", target, f"runs {self.format_of(target)} LiteRT; from {previous}")
            self._write_state(state, switch=True)
            return StateChange("rollback", previous, target)

    def recover(self) -> RecoverReport:
        """At start: clear ``incoming/``, re-verify the active version, and fall back to the newest
        previous complete verified version when it is broken or missing (recording why)."""
        with self._locked():
            cleared = []
            for entry in sorted((self.root / INCOMING).iterdir()):
                cleared.append(entry.name)
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            for tmp in self.root.glob(f".{STATE}.*.tmp"):
                tmp.unlink()
            reason = None
            try:
                state = self._read_state()
            except IntegrityError as exc:
                reason = f"state unreadable ({exc})"
                state = _State()
            previous_active = state.active
            if state.active is not None:
                try:
                    self.verify(state.active)
                    if reason is None:
                        return RecoverReport(state.active, previous_active, None, tuple(cleared))
                except ShopfloorError as exc:
                    reason = f"active version {state.active} failed verification: {exc}"
                    self._discard(state.active)
            elif reason is None and not state.history:
                return RecoverReport(None, None, None, tuple(cleared))
            else:
                reason = reason or "no active version"
            broken = {previous_active} if previous_active else set()
            candidates = [v for v in reversed(state.history) if v not in broken]
            candidates += [v for v in reversed(self.installed()) if v not in candidates and v not in broken]
            chosen = None
            for candidate in dict.fromkeys(candidates):
                try:
                    self.verify(candidate)
                except NotFoundError:
                    continue
                except ShopfloorError as exc:
                    log.error("recover: %s is broken too: %s", candidate, exc)
                    self._discard(candidate)
                    broken.add(candidate)
                    continue
                chosen = candidate
                break
            state.history = [v for v in state.history if v not in broken and v in self.installed()]
            if chosen is not None and (not state.history or state.history[-1] != chosen):
                state.history.append(chosen)
            state.active = chosen
            message = f"{reason}; now active: {chosen or 'none (no complete verified version left)'}"
            state.last_error = bounded(message)
            state.event("recover", chosen, message)
            log.error("model store recovery: %s", message)
            self._write_state(state)
            return RecoverReport(chosen, previous_active, bounded(message), tuple(cleared))

    def _discard(self, version: str) -> None:
        """Remove a broken version (it will not verify again)."""
        path = self.version_dir(version)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)

    def _prune(self, state: _State, *also: str) -> None:
        """Keep the ``keep`` most recently used versions; never the active or the previous one
        (nor ``also``: a version just installed)."""
        installed = self.installed()
        if len(installed) <= self.keep:
            return
        protected = {state.active, *(state.history[-2:]), *also}

        def last_used(version: str) -> tuple[int, int]:
            used = max((i for i, v in enumerate(state.history) if v == version), default=-1)
            return used, int(version[1:])

        removable = sorted((v for v in installed if v not in protected), key=last_used)
        for version in removable[: len(installed) - self.keep]:
            self._discard(version)
            state.event("pruned", version, f"keeping {self.keep} versions")
        kept = set(self.installed())
        state.history = [v for v in state.history if v in kept]
