"""``python -m shopfloor.serving``: flags -> FailureModel -> PredictorServer. Wiring only."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from shopfloor.serving.codec import DEFAULT_MAX_BATCH
from shopfloor.serving.model import FORMATS, FailureModel
from shopfloor.serving.server import DEFAULT_HOST, PredictorServer
from shopfloor.serving.source import fetch_model_uri


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shopfloor.serving", description=__doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="local model version directory")
    source.add_argument(
        "--model-uri",
        help="registry version <root>/<model>/<version> (s3:// or path); "
        "fetched and verified through shopfloor.registry",
    )
    p.add_argument("--model-name", default="ai4i-failure", help="name on the endpoint path")
    p.add_argument("--format", choices=sorted(FORMATS), default="int8")
    p.add_argument("--host", default=DEFAULT_HOST, help="bind address (0.0.0.0 inside a container)")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--grpc-port", type=int, default=8081, help="0 disables gRPC")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, help="max rows per request")
    p.add_argument("--decision-datatype", choices=("BOOL", "INT32"), default="BOOL")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    model_dir = args.model_dir or fetch_model_uri(args.model_uri)
    model = FailureModel(
        args.model_name,
        model_dir,
        fmt=args.format,
        max_batch=args.max_batch,
        decision_datatype=args.decision_datatype,
    )
    model.load()
    PredictorServer([model], host=args.host, http_port=args.http_port, grpc_port=args.grpc_port or None).run()


if __name__ == "__main__":
    main()
