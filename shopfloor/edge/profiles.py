"""Device profiles: what a class of factory-floor hardware can take.

One YAML file per device class in ``profiles/`` (package data). A profile bounds a push before
anything reaches a site (:func:`check_fits`: static figures from the version's manifest, no
download), tells the on-device store which LiteRT format it prefers (``variant``: a preference,
not a demand; a version without it runs the format it has, e.g. a tree ensemble's float32 file,
see :func:`shopfloor.contract.choose_format`) and which per-row latency to hold it to, and
feeds the Kubernetes resources and ``kubernetes.io/arch`` node selection of the edge workload
(:func:`chart_values`). The on-device check stays the final word: only the device can measure
its own latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from shopfloor import contract, names
from shopfloor.errors import InvalidInputError, NotFoundError, excerpt

ARCHES: tuple[str, ...] = ("amd64", "arm64")
#: The default profile (a laptop fleet) when a site names none.
DEFAULT_PROFILE = "laptop"
#: A profile file is a few lines; anything bigger is not one.
MAX_PROFILE_BYTES = 16 * 1024
_FIELDS = ("name", "description", "arch", "cores", "cpu_request_millicores", "memory_limit_mib",
           "max_model_bytes", "latency_budget_us", "variant")


@dataclass(frozen=True)
class DeviceProfile:
    """One device class. Memory and CPU are the edge workload's share, not the whole device."""

    name: str
    arch: str
    cores: int
    memory_limit_mib: int
    max_model_bytes: int
    latency_budget_us: float
    #: The LiteRT format this device prefers: loaded when a version has it, else the version's
    #: own (:meth:`format_for`). A tree version has only float32, whatever the preference.
    variant: str
    description: str = ""
    #: CPU the scheduler reserves for the runtime (limit: ``cores``).
    cpu_request_millicores: int = 250

    def problems(self) -> list[str]:
        found = [names.DNS1123_LABEL.problem(self.name, "profile name")]
        if self.arch not in ARCHES:
            found.append(f"arch {excerpt(self.arch)} must be one of {list(ARCHES)}")
        if self.variant not in contract.LITERT_FORMATS:
            found.append(f"variant {excerpt(self.variant)} must be one of {list(contract.LITERT_FORMATS)}")
        for what, value, low in (("cores", self.cores, 1), ("memory_limit_mib", self.memory_limit_mib, 32),
                                 ("max_model_bytes", self.max_model_bytes, 1),
                                 ("cpu_request_millicores", self.cpu_request_millicores, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                found.append(f"{what} {excerpt(value)} must be an integer >= {low}")
        if isinstance(self.cores, int) and isinstance(self.cpu_request_millicores, int) \
                and self.cpu_request_millicores > self.cores * 1000:
            found.append(f"cpu_request_millicores {self.cpu_request_millicores} exceeds cores {self.cores}")
        budget = self.latency_budget_us
        if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget < 10_000_000:
            found.append(f"latency_budget_us {excerpt(budget)} must be a number within (0, 1e7)")
        return [p for p in found if p]

    def format_for(self, manifest: contract.VersionManifest) -> str | None:
        """The LiteRT format this device runs ``manifest``'s version in (None: it has none)."""
        return contract.choose_format(manifest.formats, self.variant)

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in _FIELDS}

    @classmethod
    def from_dict(cls, data: Any, where: str = "profile") -> DeviceProfile:
        if not isinstance(data, dict):
            raise InvalidInputError(f"{where}: a profile must be a mapping of {list(_FIELDS)}")
        unknown = sorted(set(data) - set(_FIELDS))
        missing = sorted({"name", "arch", "cores", "memory_limit_mib", "max_model_bytes", "latency_budget_us",
                          "variant"} - set(data))
        if unknown or missing:
            raise InvalidInputError(f"{where}: unknown keys {unknown}, missing keys {missing}")
        profile = cls(**{k: data[k] for k in _FIELDS if k in data})
        found = profile.problems()
        if found:
            raise InvalidInputError(f"{where}: " + "; ".join(found))
        return profile


def _builtin_dir() -> Any:
    return resources.files("shopfloor.edge").joinpath("profiles")


def list_profiles() -> list[DeviceProfile]:
    """The built-in profiles, by name."""
    found = [_parse(entry.read_text(), f"profiles/{entry.name}") for entry in _builtin_dir().iterdir()
             if entry.name.endswith(".yaml")]
    return sorted(found, key=lambda p: p.name)


def _parse(text: str, where: str) -> DeviceProfile:
    if len(text.encode()) > MAX_PROFILE_BYTES:
        raise InvalidInputError(f"{where}: larger than {MAX_PROFILE_BYTES} bytes, not a device profile")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidInputError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from exc
    return DeviceProfile.from_dict(data, where)


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """A built-in profile by name, or a profile file (a path, or anything ending in .yaml/.yml)."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise NotFoundError(f"device profile file {path} does not exist")
        if path.stat().st_size > MAX_PROFILE_BYTES:
            raise InvalidInputError(f"{path}: larger than {MAX_PROFILE_BYTES} bytes, not a device profile")
        return _parse(path.read_text(), str(path))
    known = {p.name: p for p in list_profiles()}
    if text not in known:
        raise NotFoundError(f"no device profile {excerpt(text)}; known: {sorted(known)}")
    return known[text]


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


def check_fits(manifest: contract.VersionManifest, profile: DeviceProfile) -> list[str]:
    """The figures by which ``manifest``'s version breaks ``profile`` ([] when it fits).

    Static, from the manifest's recorded file sizes, for the file the device will actually run
    (:meth:`DeviceProfile.format_for`: the preferred format when the version has it, else the
    version's own, e.g. a tree ensemble's float32 file on an int8-preferring device): it must be
    within the profile's largest model file and leave room in the memory limit (the interpreter
    maps the whole file). Latency is measured on the device itself.
    """
    where = f"{manifest.model} {manifest.version} on profile {profile.name}"
    fmt = profile.format_for(manifest)
    if fmt is None:
        return [f"{where}: the version has no LiteRT model to run (it has {list(manifest.formats)})"]
    name = contract.litert_file(fmt)
    entry = manifest.files.get(name)
    if entry is None:
        return [f"{where}: {name} is not among the version's files"]
    problems = []
    if entry.size > profile.max_model_bytes:
        problems.append(f"{where}: {name} ({manifest.model_family}, {fmt}) is {entry.size:,} bytes "
                        f"({_mib(entry.size)}), over the profile's largest model file "
                        f"{profile.max_model_bytes:,} bytes ({_mib(profile.max_model_bytes)})")
    memory = profile.memory_limit_mib * 1024 * 1024
    if entry.size * 2 > memory:
        problems.append(f"{where}: {name} ({manifest.model_family}, {fmt}) needs about "
                        f"{_mib(entry.size * 2)} resident (file + tensors), over the memory limit "
                        f"{profile.memory_limit_mib} MiB")
    return problems


def chart_values(profile: DeviceProfile, manifest: contract.VersionManifest | None = None) -> dict[str, Any]:
    """The chart values a profile decides: resources, node architecture, budget, and the model
    format (the one the device runs ``manifest``'s version in; without a version, its preference)."""
    memory = f"{profile.memory_limit_mib}Mi"
    fmt = profile.format_for(manifest) if manifest is not None else None
    return {
        "profile": profile.name,
        "arch": profile.arch,
        "modelFormat": fmt or profile.variant,
        "resources": {
            "requests": {"cpu": f"{profile.cpu_request_millicores}m", "memory": memory},
            "limits": {"cpu": str(profile.cores), "memory": memory},
        },
    }
