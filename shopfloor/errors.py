"""One error tree for the whole package: every refusal is a :class:`ShopfloorError`.

A category says what kind of problem it is, and so how every surface reports it: the CLI
exits with the category's documented code (one line, no traceback), the predictors answer
with its HTTP status (and the matching gRPC code), and the pipeline runner reports the
message a failed step raised. Modules raise the most specific subclass they have (the
registry's ``VersionNotFoundError`` is a :class:`NotFoundError`), never a bare ``Exception``.

Exit codes (documented in the README; stable, scripts rely on them):

====  ======================  ==============================================================
code  category                meaning
====  ======================  ==============================================================
1     (any other failure)     an unexpected error; a bug worth reporting
2     InvalidInputError       bad arguments, parameters, data files or requests
3     NotFoundError           an unknown version, alias, run, file or bucket
4     ConflictError           the thing exists already, or a concurrent change won
5     IntegrityError          a stored file or manifest does not match what was published
6     GateFailedError         a quality gate refused the data or the model (run completed)
7     ExternalServiceError    S3, a cluster, a KFP endpoint could not be reached or refused
====  ======================  ==============================================================
"""

from __future__ import annotations

from http import HTTPStatus

#: Longest message a surface shows or logs for one error: a refused 10 MB value must not
#: come back as a 10 MB error body or log line.
MAX_MESSAGE_CHARS = 500


def excerpt(value: object, limit: int = 60) -> str:
    """``repr`` of a value cut to ``limit`` characters, for naming bad input in a message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 14]}…({len(text)} chars)"


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """One line, at most ``limit`` characters: what any surface may echo of an error."""
    line = " ".join(str(message).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class ShopfloorError(Exception):
    """Root of every error shopfloor raises on purpose (what it refuses, with the reason)."""

    exit_code = 1
    http_status = HTTPStatus.INTERNAL_SERVER_ERROR
    category = "error"

    def __str__(self) -> str:  # KeyError-derived subclasses would quote the message
        return str(self.args[0]) if self.args else self.__class__.__name__


class InvalidInputError(ShopfloorError, ValueError):
    """Bad arguments, parameters, data or requests: the caller can fix it."""

    exit_code = 2
    http_status = HTTPStatus.BAD_REQUEST
    category = "invalid input"


class NotFoundError(ShopfloorError, LookupError):
    """Something named does not exist (version, alias, run directory, object)."""

    exit_code = 3
    http_status = HTTPStatus.NOT_FOUND
    category = "not found"


class ConflictError(ShopfloorError):
    """The target exists already or a concurrent change won (immutable versions, aliases)."""

    exit_code = 4
    http_status = HTTPStatus.CONFLICT
    category = "conflict"


class IntegrityError(ShopfloorError):
    """Stored content does not match what was published (checksum, size, schema, load)."""

    exit_code = 5
    http_status = HTTPStatus.INTERNAL_SERVER_ERROR
    category = "integrity"

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class GateFailedError(ShopfloorError):
    """A quality gate said no: validation, evaluation gates or conversion equivalence."""

    exit_code = 6
    http_status = HTTPStatus.UNPROCESSABLE_ENTITY
    category = "gate failed"


class ExternalServiceError(ShopfloorError):
    """A service shopfloor depends on (S3, Kubernetes, KFP) was unreachable or refused."""

    exit_code = 7
    http_status = HTTPStatus.BAD_GATEWAY
    category = "external service"


#: Category classes in the order of their exit codes, for docs and tests.
CATEGORIES: tuple[type[ShopfloorError], ...] = (
    InvalidInputError, NotFoundError, ConflictError, IntegrityError, GateFailedError, ExternalServiceError,
)
