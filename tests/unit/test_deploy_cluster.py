"""Seam tests of KubernetesCluster at its HTTP boundary (NOT end to end: no API server runs here).

A stdlib HTTP server on 127.0.0.1 records each request and answers with canned API responses;
the real kubernetes client is pointed at it. What is asserted is what the client puts on the
wire: a server-side-apply PATCH with the apply content type, fieldManager, force and body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from shopfloor.deploy.cluster import ApplyConflictError, ClusterError, KubernetesCluster
from shopfloor.deploy.render import PredictorSpec, inference_service, service_account
from shopfloor.errors import ConflictError, ExternalServiceError, InvalidInputError

SPEC = PredictorSpec(model_name="ai4i-failure", version="v0003",
                     storage_uri="s3://models/registry/ai4i-failure/v0003", namespace="plant-a")


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        #: (method, path) -> (status, JSON body); anything else is a 404 Status.
        self.responses: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}


def _handler(recorder: Recorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            recorder.requests.append({
                "method": self.command, "path": url.path, "query": parse_qs(url.query),
                "headers": {k.lower(): v for k, v in self.headers.items()}, "body": raw.decode(),
            })
            status, body = recorder.responses.get(
                (self.command, url.path),
                (404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                       "message": f"{url.path} not found", "code": 404}),
            )
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_PATCH = _serve

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

    return Handler


@pytest.fixture()
def fake_api() -> Iterator[tuple[Recorder, KubernetesCluster]]:
    recorder = Recorder()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(recorder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_port}"
    configuration.api_key = {"authorization": "seam-test-token"}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    api_client = client.ApiClient(configuration)
    try:
        yield recorder, KubernetesCluster(api_client)
    finally:
        api_client.close()
        server.shutdown()
        server.server_close()


def test_apply_sends_server_side_apply_patch(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    isvc = inference_service(SPEC)
    path = "/apis/serving.kserve.io/v1beta1/namespaces/plant-a/inferenceservices/ai4i-failure"
    live = {**isvc, "metadata": {**isvc["metadata"], "generation": 4, "uid": "u-1"}}
    recorder.responses[("PATCH", path)] = (200, live)

    returned = cluster.apply(isvc)

    assert returned["metadata"]["generation"] == 4
    (req,) = recorder.requests
    assert req["method"] == "PATCH"
    assert req["path"] == path
    assert req["headers"]["content-type"] == "application/apply-patch+yaml"
    assert req["headers"]["authorization"] == "Bearer seam-test-token"
    assert req["query"] == {"fieldManager": ["shopfloor"], "force": ["true"]}
    assert json.loads(req["body"]) == isvc  # JSON is YAML: the whole desired object, unchanged


def test_core_objects_use_the_core_api_path(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    sa = service_account(SPEC)
    path = "/api/v1/namespaces/plant-a/serviceaccounts/shopfloor-predictor"
    recorder.responses[("PATCH", path)] = (201, sa)

    cluster.apply(sa)

    assert recorder.requests[0]["path"] == path
    assert json.loads(recorder.requests[0]["body"])["automountServiceAccountToken"] is False


def test_force_can_be_turned_off(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    cluster.force = False
    sa = service_account(SPEC)
    path = "/api/v1/namespaces/plant-a/serviceaccounts/shopfloor-predictor"
    recorder.responses[("PATCH", path)] = (200, sa)

    cluster.apply(sa)

    assert recorder.requests[0]["query"] == {"fieldManager": ["shopfloor"]}


def test_get_returns_object_or_none_on_404(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    path = "/apis/serving.kserve.io/v1beta1/namespaces/plant-a/inferenceservices/ai4i-failure"
    live = {"kind": "InferenceService", "status": {"observedGeneration": 2}}
    recorder.responses[("GET", path)] = (200, live)

    assert cluster.get("InferenceService", "ai4i-failure", "plant-a") == live
    assert cluster.get("Secret", "shopfloor-s3", "plant-a") is None
    assert [r["method"] for r in recorder.requests] == ["GET", "GET"]
    assert recorder.requests[1]["path"] == "/api/v1/namespaces/plant-a/secrets/shopfloor-s3"


def test_conflict_surfaces_the_servers_reason(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    cluster.force = False
    path = "/api/v1/namespaces/plant-a/serviceaccounts/shopfloor-predictor"
    recorder.responses[("PATCH", path)] = (409, {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-edit": .metadata.labels'})

    with pytest.raises(ApplyConflictError) as caught:
        cluster.apply(service_account(SPEC))
    assert str(caught.value) == ('PATCH /api/v1/namespaces/plant-a/serviceaccounts/shopfloor-predictor: 409 '
                                 'Conflict: Apply failed with 1 conflict: conflict with "kubectl-edit": '
                                 '.metadata.labels')
    # a conflict (exit code 4) that is still a cluster error for callers that catch those
    assert isinstance(caught.value, ConflictError) and isinstance(caught.value, ClusterError)
    assert caught.value.exit_code == ConflictError.exit_code


def test_other_refusals_are_external_service_errors(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    path = "/api/v1/namespaces/plant-a/serviceaccounts/shopfloor-predictor"
    recorder.responses[("PATCH", path)] = (403, {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": "serviceaccounts is forbidden"})
    with pytest.raises(ClusterError) as caught:
        cluster.apply(service_account(SPEC))
    assert not isinstance(caught.value, ConflictError)
    assert isinstance(caught.value, ExternalServiceError) and caught.value.exit_code == 7
    assert str(caught.value) == f"PATCH {path}: 403 Forbidden: serviceaccounts is forbidden"


def test_unreachable_api_server_is_one_line() -> None:
    import socket

    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    with client.ApiClient(configuration) as api_client, pytest.raises(ClusterError) as caught:
        KubernetesCluster(api_client).get("Secret", "shopfloor-s3", "plant-a")
    message = str(caught.value)
    assert message.startswith("GET /api/v1/namespaces/plant-a/secrets/shopfloor-s3: API server unreachable: ")
    assert "\n" not in message and len(message) < 400


def test_unknown_kind_is_refused_before_any_request(fake_api: tuple[Recorder, KubernetesCluster]) -> None:
    recorder, cluster = fake_api
    with pytest.raises(InvalidInputError, match="does not manage kind 'Pod'"):
        cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "x"}})
    assert recorder.requests == []
