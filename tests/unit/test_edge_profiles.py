"""Device profiles: the built-in classes load, bad profile files are refused in one line, and
check_fits gives the figures by which a real version breaks a profile."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from shopfloor import contract
from shopfloor.edge.profiles import (
    DEFAULT_PROFILE,
    DeviceProfile,
    chart_values,
    check_fits,
    list_profiles,
    load_profile,
)
from shopfloor.errors import InvalidInputError, NotFoundError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "registry-schema1" / "ai4i-failure" / "v0001"
GOOD = {"name": "press-box", "arch": "arm64", "cores": 2, "memory_limit_mib": 128, "max_model_bytes": 4096,
        "latency_budget_us": 500.0, "variant": "int8", "description": "test box"}


@pytest.fixture(scope="module")
def manifest() -> contract.VersionManifest:
    return contract.VersionManifest.from_dict(json.loads((FIXTURE / contract.MANIFEST).read_text()))


def _tree_like(manifest: contract.VersionManifest) -> contract.VersionManifest:
    """The same version as a tree ensemble ships it: no int8 file, family hist-gbt."""
    int8 = contract.litert_file("int8")
    return replace(manifest, formats=("saved_model", "float32"), model_family=contract.HIST_GBT,
                   files={k: v for k, v in manifest.files.items() if k != int8 and "golden_int8" not in k})


def test_builtin_profiles_are_real_device_classes() -> None:
    profiles = {p.name: p for p in list_profiles()}
    assert {"rpi4-arm64-4g", "gateway-arm64-1g", "fanless-amd64-8g", DEFAULT_PROFILE} <= set(profiles)
    assert profiles["rpi4-arm64-4g"].arch == profiles["gateway-arm64-1g"].arch == "arm64"
    assert profiles["fanless-amd64-8g"].arch == profiles["laptop"].arch == "amd64"
    # the gateway is the tightest class: least memory, smallest model, loosest latency budget
    gateway = profiles["gateway-arm64-1g"]
    assert gateway.memory_limit_mib == min(p.memory_limit_mib for p in profiles.values())
    assert gateway.max_model_bytes == min(p.max_model_bytes for p in profiles.values())
    for profile in profiles.values():
        assert profile.problems() == []
        assert profile.variant in contract.LITERT_FORMATS
        assert load_profile(profile.name) == profile
        assert profile.description


def test_a_profile_file_loads_by_path(tmp_path: Path) -> None:
    path = tmp_path / "box.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    profile = load_profile(path)
    assert profile == DeviceProfile.from_dict(GOOD)
    assert load_profile(str(path)) == profile


def test_variant_is_a_preference_the_version_has_the_last_word(manifest: contract.VersionManifest) -> None:
    """An int8-preferring device runs an MLP version's int8 file and a tree version's float32
    file; a float32-preferring one runs float32 either way."""
    int8_box = DeviceProfile.from_dict(GOOD)
    float_box = DeviceProfile.from_dict({**GOOD, "variant": "float32"})
    tree = _tree_like(manifest)
    assert (int8_box.format_for(manifest), int8_box.format_for(tree)) == ("int8", "float32")
    assert (float_box.format_for(manifest), float_box.format_for(tree)) == ("float32", "float32")
    assert int8_box.format_for(replace(manifest, formats=("saved_model",))) is None


@pytest.mark.parametrize(("change", "words"), [
    ({"arch": "x86_64"}, "arch 'x86_64' must be one of ['amd64', 'arm64']"),
    ({"variant": "fp16"}, "variant 'fp16' must be one of"),
    ({"cores": 0}, "cores 0 must be an integer >= 1"),
    ({"cores": True}, "cores True must be an integer"),
    ({"memory_limit_mib": "1Gi"}, "memory_limit_mib '1Gi' must be an integer"),
    ({"latency_budget_us": -1}, "latency_budget_us -1 must be a number"),
    ({"name": "Press_Box"}, "profile name 'Press_Box' must be a DNS-1123 label"),
    ({"cpu_request_millicores": 3000}, "cpu_request_millicores 3000 exceeds cores 2"),
    ({"gpu": 1}, "unknown keys ['gpu']"),
])
def test_bad_profiles_are_refused_naming_the_field(tmp_path: Path, change: dict[str, object],
                                                   words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    with pytest.raises(InvalidInputError) as caught:
        load_profile(path)
    assert words in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_and_unknown_profiles(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no device profile 'toaster'; known: \[.*'laptop'"):
        load_profile("toaster")
    with pytest.raises(NotFoundError, match="does not exist"):
        load_profile(tmp_path / "nope.yaml")
    (tmp_path / "junk.yaml").write_text("name: [unclosed")
    with pytest.raises(InvalidInputError, match="not valid YAML"):
        load_profile(tmp_path / "junk.yaml")
    (tmp_path / "big.yaml").write_text("#" * 20000)
    with pytest.raises(InvalidInputError, match="larger than"):
        load_profile(tmp_path / "big.yaml")
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump({"name": "x"}))
    with pytest.raises(InvalidInputError, match="missing keys"):
        load_profile(tmp_path / "missing.yaml")


def test_a_real_version_fits_every_builtin_profile(manifest: contract.VersionManifest) -> None:
    for profile in list_profiles():
        assert check_fits(manifest, profile) == [], profile.name


def test_too_big_a_model_is_refused_with_the_figures(manifest: contract.VersionManifest) -> None:
    size = manifest.files[contract.litert_file("int8")].size
    tight = DeviceProfile.from_dict({**GOOD, "max_model_bytes": size - 1})
    (problem,) = check_fits(manifest, tight)
    assert f"model_int8.tflite (keras-mlp, int8) is {size:,} bytes" in problem
    assert f"largest model file {size - 1:,} bytes" in problem
    assert problem.startswith(f"{manifest.model} {manifest.version} on profile press-box")
    assert check_fits(manifest, replace(tight, max_model_bytes=size)) == []  # the boundary fits


def test_memory_limit_is_checked_too(manifest: contract.VersionManifest) -> None:
    name = contract.litert_file("int8")
    huge = replace(manifest, files={**manifest.files, name: contract.FileEntry("0" * 64, 40 * 1024 * 1024)})
    profile = DeviceProfile.from_dict({**GOOD, "memory_limit_mib": 64, "max_model_bytes": 10**9})
    (problem,) = check_fits(huge, profile)
    assert "needs about 80.0 MiB resident" in problem and "memory limit 64 MiB" in problem


def test_a_tree_version_is_checked_by_the_float32_file_it_runs(manifest: contract.VersionManifest) -> None:
    """An int8-preferring profile takes a tree version's float32 file, within its budget: the
    float32 file's size is what is checked (the int8 file of an MLP would have fitted)."""
    tree = _tree_like(manifest)
    size = tree.files[contract.litert_file("float32")].size
    int8_size = manifest.files[contract.litert_file("int8")].size
    assert int8_size < size
    roomy = DeviceProfile.from_dict({**GOOD, "max_model_bytes": size})
    assert check_fits(tree, roomy) == [] and check_fits(manifest, roomy) == []  # the boundary fits
    tight = replace(roomy, max_model_bytes=size - 1)
    assert check_fits(manifest, tight) == []  # the MLP runs int8 here, which fits
    (problem,) = check_fits(tree, tight)
    assert problem == (f"{tree.model} {tree.version} on profile press-box: model_float32.tflite (hist-gbt, "
                       f"float32) is {size:,} bytes (0.0 MiB), over the profile's largest model file "
                       f"{size - 1:,} bytes (0.0 MiB)")


def test_a_version_without_the_file_it_would_run_is_refused(manifest: contract.VersionManifest) -> None:
    (problem,) = check_fits(replace(manifest, formats=("saved_model",)), DeviceProfile.from_dict(GOOD))
    assert "the version has no LiteRT model to run (it has ['saved_model'])" in problem
    no_file = replace(manifest, files={k: v for k, v in manifest.files.items() if k != "model_int8.tflite"})
    (problem,) = check_fits(no_file, DeviceProfile.from_dict(GOOD))
    assert "model_int8.tflite is not among the version's files" in problem


def test_profiles_feed_the_chart_values(manifest: contract.VersionManifest) -> None:
    gateway = load_profile("gateway-arm64-1g")
    values = chart_values(gateway)
    assert values["arch"] == "arm64" and values["modelFormat"] == gateway.variant == "int8"
    # with the version: the format the site will load, not just the preference
    assert chart_values(gateway, manifest)["modelFormat"] == "int8"
    assert chart_values(gateway, _tree_like(manifest))["modelFormat"] == "float32"
    assert values["resources"] == {"requests": {"cpu": "100m", "memory": "128Mi"},
                                   "limits": {"cpu": "2", "memory": "128Mi"}}
