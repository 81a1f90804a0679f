"""The site inventory: the documented example loads, every mode's keys are checked, names follow
shopfloor.names, saving is atomic; and `shopfloor edge status` reads each site's side."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from shopfloor import settings
from shopfloor.cli import app
from shopfloor.edge import sites as sites_module
from shopfloor.edge.sites import Inventory, Site, load_inventory, parse_inventory, save_inventory
from shopfloor.errors import InvalidInputError, NotFoundError
from shopfloor.registry import open_registry


def _documented_example() -> str:
    doc = sites_module.__doc__ or ""
    block = doc.split("::\n", 1)[1].split("\n\n")[0]
    return "\n".join(line[4:] for line in block.splitlines())


def test_the_documented_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "sites.yaml"
    path.write_text(_documented_example())
    inventory = load_inventory(path)
    assert [s.mode for s in inventory.sites] == ["direct", "gitops", "local", "bundle"]
    direct, gitops, local, bundle = inventory.sites
    assert direct.pilot and direct.context == "plant-a" and direct.namespace == "shopfloor-edge"
    assert direct.device_profile().arch == "arm64"
    assert gitops.gitops is not None and gitops.gitops.path == "sites/plant-b-line-2/values.yaml"
    assert gitops.namespace == settings.DEFAULT_NAMESPACE
    assert local.profile == "laptop" and local.url == "http://127.0.0.1:8091"
    assert bundle.registry is None
    assert inventory.get("plant-c-isolated") is bundle


def test_relative_paths_resolve_from_the_inventory(tmp_path: Path) -> None:
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "box.yaml").write_text(yaml.safe_dump(
        {"name": "box", "arch": "arm64", "cores": 1, "memory_limit_mib": 64, "max_model_bytes": 10**6,
         "latency_budget_us": 100, "variant": "int8"}))
    path = tmp_path / "sites.yaml"
    entry = {"name": "a", "mode": "local", "url": "http://127.0.0.1:1", "profile": "profiles/box.yaml",
             "admin_token_file": "a.token"}
    path.write_text(yaml.safe_dump({"sites": [entry]}))
    (site,) = load_inventory(path).sites
    assert site.device_profile().name == "box"
    assert site.resolve("a.token") == tmp_path / "a.token"


def test_save_and_load_round_trip_atomically(tmp_path: Path) -> None:
    path = tmp_path / "edge" / "sites.yaml"
    inventory = Inventory((Site("line-1", "direct", "rpi4-arm64-4g", registry="s3://mirror/registry",
                                context="plant-a", namespace="edge", pilot=True),))
    save_inventory(inventory, path)
    loaded = load_inventory(path)
    assert loaded.sites == inventory.sites
    grown = loaded.with_site(Site("laptop-1", "local", url="http://127.0.0.1:8091"))
    save_inventory(grown)  # back to where it was loaded from
    assert [s.name for s in load_inventory(path).sites] == ["line-1", "laptop-1"]
    before = path.read_text()
    with pytest.raises(InvalidInputError, match="name 'Line_2' must be a DNS-1123 label"):
        save_inventory(grown.with_site(Site("Line_2", "bundle")), path)
    assert path.read_text() == before  # nothing half-written
    assert [p.name for p in path.parent.iterdir()] == ["sites.yaml"]


def test_default_location_is_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inv.yaml"
    monkeypatch.setenv(settings.EDGE_SITES.name, str(path))
    with pytest.raises(NotFoundError, match=f"no site inventory at {path}"):
        load_inventory()
    path.write_text("sites: []\n")
    assert load_inventory().sites == ()


LOCAL = {"name": "a", "mode": "local", "url": "http://127.0.0.1:8091"}


@pytest.mark.parametrize(("sites", "words"), [
    ([{**LOCAL, "name": "Plant_A"}], "name 'Plant_A' must be a DNS-1123 label"),
    ([{**LOCAL, "name": "a" * 64}], "must be a DNS-1123 label"),
    ([{**LOCAL, "name": "plant\n"}], "must be a DNS-1123 label"),
    ([LOCAL, LOCAL], "site 'a' appears more than once"),
    ([{**LOCAL, "mode": "ftp"}], "mode 'ftp' must be one of ['local', 'direct', 'gitops', 'bundle']"),
    ([{"name": "a", "mode": "local"}], "mode local needs url"),
    ([{"name": "a", "mode": "direct"}], "mode direct needs registry"),
    ([{"name": "a", "mode": "gitops", "registry": "s3://mirror"}], "mode gitops needs gitops"),
    ([{**LOCAL, "colour": "red"}], "unknown keys ['colour']"),
    ([{**LOCAL, "url": "ftp://x"}], "url 'ftp://x' must be http(s)://host:port"),
    ([{"name": "a", "mode": "direct", "registry": "/tmp/reg"}], "must be the s3://bucket[/prefix] mirror"),
    ([{"name": "a", "mode": "direct", "registry": "s3://Mirror"}], "bucket must be lowercase"),
    ([{"name": "a", "mode": "direct", "registry": "s3://mirror", "namespace": "Edge"}],
     "namespace 'Edge' must be a DNS-1123 label"),
    ([{"name": "a", "mode": "gitops", "registry": "s3://mirror",
       "gitops": {"repo": "r", "path": "../x.yaml"}}],
     "must be relative to the repo and stay inside it"),
    ([{"name": "a", "mode": "gitops", "registry": "s3://mirror", "gitops": {"repo": "r"}}],
     "gitops must be {repo:"),
    ([{**LOCAL, "profile": "toaster"}], "no device profile 'toaster'"),
    ([{**LOCAL, "pilot": "yes"}], "pilot 'yes' must be true or false"),
    (["a"], "sites[0] must be a mapping"),
])
def test_bad_inventories_are_refused_in_one_line(sites: list[Any], words: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_inventory(yaml.safe_dump({"sites": sites}))
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


def test_not_an_inventory(tmp_path: Path) -> None:
    for text, words in (("[1, 2]", "one key 'sites'"), ("sites: {}", "one key 'sites'"),
                        ("sites: [", "not valid YAML")):
        with pytest.raises(InvalidInputError, match=words):
            parse_inventory(text)
    big = tmp_path / "big.yaml"
    big.write_text("#" * (sites_module.MAX_INVENTORY_BYTES + 1))
    with pytest.raises(InvalidInputError, match="larger than"):
        load_inventory(big)
    with pytest.raises(NotFoundError, match=r"no site 'x' in .*known: \[\]"):
        parse_inventory("sites: []", tmp_path / "s.yaml").get("x")


# -- shopfloor edge status ---------------------------------------------------------------------

SITE_TOKEN = "site-token-0123456789"


class _Runtime(BaseHTTPRequestHandler):
    """A stand-in runtime answering the calls status makes (seam test): the two unauthenticated
    ones, and the admin status with its token (a tree version, run as float32)."""

    version = "v0001"

    def do_GET(self) -> None:
        if self.path == "/v2/health/ready":
            status, body = 200, {}
        elif self.path == "/admin/v1/status" and self.headers.get("authorization") == f"Bearer {SITE_TOKEN}":
            status, body = 200, {"active": "v0001", "format": "float32", "installed": ["v0001"],
                                 "last_error": None}
        elif self.path == f"/v2/models/{settings.DEFAULT_MODEL_NAME}":
            status, body = 200, {"name": settings.DEFAULT_MODEL_NAME, "versions": [self.version],
                                 "platform": "tflite"}
        else:
            status, body = 404, {"error": "not found"}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def runtime_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Runtime)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_status_reports_each_site_and_survives_an_unreachable_one(tmp_path: Path, runtime_url: str) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(Path(__file__).resolve().parents[1] / "fixtures" / "registry-schema1", registry)
    assert open_registry(str(registry)).champion_or_newest(env=settings.EDGE_ENV) == "v0001"
    inventory = tmp_path / "sites.yaml"
    (tmp_path / "admin.token").write_text(SITE_TOKEN + "\n")
    inventory.write_text(yaml.safe_dump({"sites": [
        {"name": "up", "mode": "local", "url": runtime_url},
        {"name": "admin", "mode": "local", "url": runtime_url, "admin_token_file": "admin.token"},
        {"name": "down", "mode": "local", "url": "http://127.0.0.1:9"},
        {"name": "isolated", "mode": "bundle", "profile": "fanless-amd64-8g"},
    ]}))
    result = CliRunner().invoke(app, ["edge", "status", "--inventory", str(inventory), "--registry",
                                      str(registry), "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["site"]: r for r in json.loads(result.stdout)}
    assert rows["up"] == {"site": "up", "mode": "local", "profile": "laptop", "should_run": "v0001",
                          "reports": "v0001", "in_sync": True, "format": None, "healthy": True,
                          "detail": "V2 metadata (no admin token)"}
    assert (rows["admin"]["reports"], rows["admin"]["format"]) == ("v0001", "float32")  # what the site runs
    assert rows["down"]["healthy"] is False and rows["down"]["reports"] is None
    assert "not reachable" in rows["down"]["detail"]
    assert rows["isolated"]["should_run"] == "v0001" and rows["isolated"]["reports"] is None
    table = CliRunner().invoke(app, ["edge", "status", "--inventory", str(inventory),
                                     "--registry", str(registry)])
    assert table.exit_code == 0
    assert table.stdout.splitlines()[0].split()[:7] == ["SITE", "MODE", "PROFILE", "SHOULD", "RUN", "REPORTS",
                                                        "FORMAT"]
    (admin_row,) = [line.split() for line in table.stdout.splitlines() if line.startswith("admin ")]
    assert admin_row[:6] == ["admin", "local", "laptop", "v0001", "v0001", "float32"]


def test_status_with_a_bad_inventory_is_one_line(tmp_path: Path) -> None:
    inventory = tmp_path / "sites.yaml"
    inventory.write_text(yaml.safe_dump({"sites": [{"name": "Bad_Name", "mode": "bundle"}]}))
    result = CliRunner().invoke(app, ["edge", "status", "--inventory", str(inventory)])
    assert result.exit_code == 2
    assert "must be a DNS-1123 label" in result.output
    assert "Traceback" not in result.output
    assert os.path.exists(inventory)
