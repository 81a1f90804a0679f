"""The predictor's flags, defined once for ``python -m shopfloor.serving`` and ``shopfloor serve``.

The container entry point (argparse, what the rendered InferenceService runs) and the CLI
command (typer) build their options from :data:`FLAGS`: the same names, defaults (from
:mod:`shopfloor.settings` and :mod:`shopfloor.contract`), choices, help and range checks.
Standard library only: ``shopfloor --help`` imports this.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shopfloor import contract, settings
from shopfloor.errors import InvalidInputError

DECISION_DATATYPES: tuple[str, ...] = ("BOOL", "INT32")
LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")


@dataclass(frozen=True)
class Flag:
    """One predictor option: ``--flag`` -> ``dest``, of ``kind``, with its default and check."""

    flag: str
    dest: str
    kind: type
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    #: Inclusive bounds for numbers (None: unbounded on that side).
    low: float | None = None
    high: float | None = None
    #: Compare choices case-insensitively and answer the upper-case form (log levels).
    upper: bool = False

    def check(self, value: Any) -> Any:
        """The value, or an :class:`InvalidInputError` naming the flag and the allowed range."""
        if self.upper and isinstance(value, str):
            value = value.upper()
        if self.choices is not None and value not in self.choices:
            raise InvalidInputError(f"{self.flag} must be one of {', '.join(self.choices)}, got {value!r}")
        if self.kind in (int, float):
            number = float(value)
            if not math.isfinite(number) or (self.low is not None and number < self.low) or (
                    self.high is not None and number > self.high):
                bounds = (f"between {self._fmt(self.low)} and {self._fmt(self.high)}"
                          if self.high is not None else f"at least {self._fmt(self.low)}")
                raise InvalidInputError(f"{self.flag} must be {bounds}, got {value}")
        return value

    @staticmethod
    def _fmt(bound: float | None) -> str:
        return "-inf" if bound is None else (str(int(bound)) if float(bound).is_integer() else str(bound))


_FLAGS = (
    Flag("--model-name", "model_name", str, settings.DEFAULT_MODEL_NAME, "name on the endpoint path"),
    Flag("--format", "format", str, contract.AUTO_FORMAT,
         "model format to serve: auto = the version's own edge format (int8 for an MLP, float32 for a "
         "tree ensemble); a format the version lacks is refused; saved_model needs TensorFlow",
         choices=(contract.AUTO_FORMAT, *contract.SERVABLE_FORMATS)),
    Flag("--host", "host", str, settings.DEFAULT_HOST,
         "bind address (loopback by default; 0.0.0.0 in a container)"),
    Flag("--http-port", "http_port", int, settings.HTTP_PORT, "REST port", low=1, high=65535),
    Flag("--grpc-port", "grpc_port", int, settings.GRPC_PORT, "gRPC port (0 disables gRPC)",
         low=0, high=65535),
    Flag("--max-batch", "max_batch", int, settings.MAX_BATCH, "most rows one request may carry", low=1),
    Flag("--max-body-bytes", "max_body_bytes", int, settings.MAX_BODY_BYTES,
         "largest REST request body / gRPC message in bytes (larger: HTTP 413 / RESOURCE_EXHAUSTED)",
         low=1024),
    Flag("--max-connections", "max_connections", int, settings.MAX_CONNECTIONS,
         "most open HTTP connections (more: 503 and closed) and gRPC calls in flight", low=1),
    Flag("--read-timeout", "read_timeout", float, settings.READ_TIMEOUT_SECONDS,
         "seconds to receive a whole request once it started (then 408 and close)", low=0.1),
    Flag("--idle-timeout", "idle_timeout", float, settings.IDLE_TIMEOUT_SECONDS,
         "seconds an idle connection stays open", low=0.1),
    Flag("--decision-datatype", "decision_datatype", str, "BOOL",
         "datatype of the failure_predicted output", choices=DECISION_DATATYPES),
    Flag("--log-level", "log_level", str, "INFO", "log level", choices=LOG_LEVELS, upper=True),
)
#: Every predictor option by ``dest``.
FLAGS: Mapping[str, Flag] = {f.dest: f for f in _FLAGS}


def check(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check every known option in ``values`` (a parsed namespace's dict); returns them."""
    out = dict(values)
    for dest, flag in FLAGS.items():
        if dest in out and out[dest] is not None:
            out[dest] = flag.check(out[dest])
    return out


def _argparse_type(flag: Flag) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = flag.kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {flag.kind.__name__}, got {text!r}") from None
        try:
            return flag.check(value)
        except InvalidInputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = flag.kind.__name__
    return convert


def add_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """Add every flag (except ``skip``) to an argparse parser, with its check as the type."""
    for flag in _FLAGS:
        if flag.dest in skip:
            continue
        parser.add_argument(flag.flag, dest=flag.dest, type=_argparse_type(flag), default=flag.default,
                            choices=None, help=f"{flag.help} (default: {flag.default})"
                            + (f"; one of {', '.join(flag.choices)}" if flag.choices else ""))
