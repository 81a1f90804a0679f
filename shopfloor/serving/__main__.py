"""``python -m shopfloor.serving``: flags -> FailureModel -> PredictorServer. Wiring only.

The entry point of the predictor image and of the rendered InferenceService. Its options
are :data:`shopfloor.serving.options.FLAGS` (shared with ``shopfloor serve``); a refusal
(bad flag value, a version that does not load) is one line on stderr and the error
category's exit code, not a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from shopfloor.errors import ShopfloorError, bounded
from shopfloor.serving import options


def parser() -> argparse.ArgumentParser:
    """The predictor's argument parser (the deploy tests check rendered container args with it)."""
    p = argparse.ArgumentParser(prog="python -m shopfloor.serving", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="local model version directory")
    source.add_argument(
        "--model-uri",
        help="registry version <root>/<model>/<version> (s3:// or path); "
        "fetched and verified through shopfloor.registry",
    )
    options.add_arguments(p)
    return p


def run(model_dir: Path, values: Mapping[str, Any], announce: Callable[[str], None] | None = None) -> None:
    """Load the version in ``model_dir`` and serve it until SIGINT/SIGTERM."""
    from shopfloor.serving.model import FailureModel
    from shopfloor.serving.server import Limits, PredictorServer

    logging.basicConfig(level=str(values["log_level"]).upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    model = FailureModel(
        values["model_name"], model_dir, fmt=values["format"], max_batch=values["max_batch"],
        decision_datatype=values["decision_datatype"],
    )
    model.load()
    limits = Limits(max_body_bytes=values["max_body_bytes"], max_connections=values["max_connections"],
                    read_timeout=values["read_timeout"], idle_timeout=values["idle_timeout"])
    host, http_port, grpc_port = values["host"], values["http_port"], values["grpc_port"]
    if announce is not None:
        announce(f"serving {model.name} {model.version} ({model.fmt}) on http://{host}:{http_port}"
                 + (f" and grpc {host}:{grpc_port}" if grpc_port else ""))
    PredictorServer([model], host=host, http_port=http_port, grpc_port=grpc_port or None, limits=limits).run()


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        from shopfloor.serving.source import fetch_model_uri

        model_dir = Path(args.model_dir) if args.model_dir else fetch_model_uri(args.model_uri)
        run(model_dir, vars(args))
    except ShopfloorError as exc:
        print(f"error: {bounded(str(exc))}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


if __name__ == "__main__":
    main()
