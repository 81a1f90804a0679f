"""docker/edge.Dockerfile, checked statically (no Docker on this machine to build it).

What a build would otherwise show: a multi-stage build from a pinned slim base, the edge extra
from the lock and nothing heavier, a non-root user, the runtime as entry point, and the
buildx command for both floor architectures documented in the file.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from shopfloor import settings

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "edge.Dockerfile"
HEAVY = ("tensorflow", "kserve", "pandas", "keras", "kfp", "fastapi", "grpcio")


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    text = re.sub(
        r"\\\n",
        " ",
        "\n".join(line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_multi_stage_from_a_pinned_slim_base() -> None:
    stages = _stages()
    assert len(stages) >= 2
    for stage in stages:
        image = stage[0][1].split()[0]
        if image in {s[0][1].split()[-1] for s in stages}:  # FROM <earlier stage name>
            continue
        tag = image.partition(":")[2]
        assert "@sha256:" in image or re.fullmatch(r"\d+\.\d+\.\d+-slim(-[a-z]+)?", tag), image
        assert "slim" in image or "@sha256:" in image, image
    runtime = stages[-1]
    assert any(i == "COPY" and "--from=" in a for i, a in runtime), "runtime stage copies the build"
    assert not any(i == "RUN" and "pip install" in a for i, a in runtime), "no installs in the runtime stage"


def test_runs_as_a_non_root_user() -> None:
    users = [a for i, a in _stages()[-1] if i == "USER"]
    assert users, "the runtime stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == str(settings.RUN_AS_USER)


def test_installs_the_edge_extra_from_the_lock_and_nothing_heavy() -> None:
    runs = " ".join(a for i, a in _instructions() if i == "RUN")
    assert re.search(r"pip install [^&]*-c requirements/lock\.txt [^&]*'\.\[edge\]'", runs), runs
    assert not re.search(r"\.\[(serve|pipeline|all|dev)", runs)
    edge_extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"][
        "edge"
    ]
    names = [re.split(r"[<>=\[ ;]", dep)[0].lower() for dep in edge_extra]
    for heavy in HEAVY:
        assert heavy not in names and heavy not in runs.lower().replace(
            "'tensorflow', 'kserve', 'pandas'", ""
        )
    # the extras the edge extra pulls in stay light too
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for dep in edge_extra:
        if dep.startswith("shopfloor["):
            for sub in dep[len("shopfloor[") : -1].split(","):
                assert not [d for d in extras[sub] if any(d.lower().startswith(h) for h in HEAVY)], sub


def test_entry_point_is_the_edge_runtime_and_buildx_is_documented() -> None:
    entry = [a for i, a in _stages()[-1] if i == "ENTRYPOINT"]
    assert entry and '"edge", "serve"' in entry[-1]
    assert f'"{settings.EDGE_PORT}"' in entry[-1]
    assert f'"--store", "{settings.EDGE_STORE_PATH}"' in entry[-1]  # the chart mounts the volume there
    comments = DOCKERFILE.read_text()
    assert re.search(
        r"docker buildx build --platform linux/amd64,linux/arm64 -f docker/edge\.Dockerfile", comments
    )


@pytest.mark.parametrize("path", ["requirements/lock.txt", "pyproject.toml", "shopfloor"])
def test_what_it_copies_exists(path: str) -> None:
    copies = " ".join(a for i, a in _instructions() if i == "COPY")
    assert path in copies
    assert (REPO / path).exists()
