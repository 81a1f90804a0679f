"""Names as Kubernetes and S3 accept them, checked in one place before anything is rendered.

Kubernetes validates object names and label values with a few fixed grammars (see
``k8s.io/apimachinery/pkg/util/validation``); a name the API server would refuse, or one that only
fits because it was silently rewritten, must be refused here with the rule it breaks. Every check
uses :func:`re.fullmatch`: ``$`` in a Python regex also matches before a final newline, so
``"edge\\n"`` would pass a ``^...$`` pattern.

The Helm chart's ``values.schema.json`` spells the same rules for the Go engine; a test runs one
list of accepted and refused examples through both, so the two cannot drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopfloor.errors import InvalidInputError, excerpt

#: The grammars, without anchors (callers use :func:`re.fullmatch`).
DNS1123_LABEL_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_PATTERN = rf"{DNS1123_LABEL_PATTERN}(\.{DNS1123_LABEL_PATTERN})*"
DNS1035_LABEL_PATTERN = r"[a-z]([-a-z0-9]*[a-z0-9])?"
LABEL_VALUE_PATTERN = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"


@dataclass(frozen=True)
class NameRule:
    """One Kubernetes name grammar with its length limits."""

    title: str
    pattern: str
    max_length: int
    min_length: int = 1
    hint: str = ""

    def describe(self) -> str:
        """The rule in one phrase, for error messages."""
        return f"a {self.title} ({self.hint}, at most {self.max_length} characters)"

    def matches(self, value: object) -> bool:
        return (isinstance(value, str) and self.min_length <= len(value) <= self.max_length
                and re.fullmatch(self.pattern, value) is not None)

    def problem(self, value: object, what: str) -> str | None:
        """One line naming ``what``, the (shortened) value and the rule it breaks; None if it follows it."""
        return None if self.matches(value) else f"{what} {excerpt(value)} must be {self.describe()}"

    def check(self, value: object, what: str) -> str:
        """``value`` if it follows the rule, else :class:`InvalidInputError` naming ``what`` and the rule."""
        problem = self.problem(value, what)
        if problem:
            raise InvalidInputError(problem)
        return str(value)


#: Namespaces and most object names that end up as a DNS label.
DNS1123_LABEL = NameRule("DNS-1123 label", DNS1123_LABEL_PATTERN, 63,
                         hint="lowercase letters, digits and '-', starting and ending with a letter or digit")
#: Names of Secrets, ServiceAccounts and most other objects.
DNS1123_SUBDOMAIN = NameRule("DNS-1123 subdomain", DNS1123_SUBDOMAIN_PATTERN, 253,
                             hint="dot-separated DNS-1123 labels")
#: Names a Service is derived from (an InferenceService becomes Services and a host name).
DNS1035_LABEL = NameRule("DNS-1035 label", DNS1035_LABEL_PATTERN, 63,
                         hint="lowercase letters, digits and '-', starting with a letter, ending with a "
                              "letter or digit")
#: KServe derives ``<name>-predictor`` Deployments and Services (Knative adds revision suffixes),
#: which must stay within 63 characters: the InferenceService name itself gets 45.
INFERENCE_SERVICE_NAME = NameRule("DNS-1035 label", DNS1035_LABEL_PATTERN, 45, hint=DNS1035_LABEL.hint)
#: Label values (may be empty).
LABEL_VALUE = NameRule("label value", LABEL_VALUE_PATTERN, 63, min_length=0,
                       hint="letters, digits, '-', '_' and '.', starting and ending with a letter or digit")

# -- S3 ----------------------------------------------------------------------------------------
S3_SCHEME = "s3://"
S3_BUCKET_MIN, S3_BUCKET_MAX = 3, 63
#: Longest s3:// URI accepted (S3 keys are at most 1024 bytes; the URI bounds the key below that).
S3_URI_MAX = 1024
#: Prefixes and suffixes S3 reserves for its own bucket kinds (access points, directory buckets).
S3_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
S3_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
#: Object key characters accepted here: printable ASCII without space. No whitespace or control
#: character can reach a container argument, and a character is a byte, so lengths agree with S3's.
_KEY_CHARS = re.compile(r"[!-~]+")
_IP_LIKE = re.compile(r"[0-9]+(\.[0-9]+){3}")


def s3_bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` breaks the S3 bucket naming rules (the strict, DNS-compatible ones), or None.

    3-63 characters; dot-separated DNS labels (so no ``..``, ``.-`` or ``-.``); not an IP
    address; none of S3's reserved prefixes and suffixes. MinIO enforces the same.
    """
    if not S3_BUCKET_MIN <= len(bucket) <= S3_BUCKET_MAX:
        return f"must be {S3_BUCKET_MIN}-{S3_BUCKET_MAX} characters"
    if re.fullmatch(DNS1123_SUBDOMAIN_PATTERN, bucket) is None:
        return ("must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit, "
                "with no '..', '.-' or '-.'")
    if _IP_LIKE.fullmatch(bucket):
        return "must not be formatted as an IP address"
    for prefix in S3_RESERVED_PREFIXES:
        if bucket.startswith(prefix):
            return f"must not start with {prefix!r} (reserved by S3)"
    for suffix in S3_RESERVED_SUFFIXES:
        if bucket.endswith(suffix):
            return f"must not end with {suffix!r} (reserved by S3)"
    return None


def check_s3_uri(uri: object, what: str = "model URI") -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``; :class:`InvalidInputError` with the reason otherwise.

    The key must be non-empty (a model version is never a bucket's root) and printable ASCII
    without spaces; the whole URI at most :data:`S3_URI_MAX` characters.
    """
    if not isinstance(uri, str) or not uri.startswith(S3_SCHEME):
        raise InvalidInputError(f"{what} {excerpt(uri)} must be an s3://bucket/key URI")
    if len(uri) > S3_URI_MAX:
        raise InvalidInputError(f"{what} {excerpt(uri)} is longer than {S3_URI_MAX} characters")
    bucket, _, key = uri[len(S3_SCHEME):].partition("/")
    if not bucket:
        raise InvalidInputError(f"{what} {excerpt(uri)} has no bucket (expected s3://bucket/key)")
    problem = s3_bucket_problem(bucket)
    if problem:
        raise InvalidInputError(f"{what} {excerpt(uri)}: bucket {excerpt(bucket)} {problem}")
    if not key:
        raise InvalidInputError(f"{what} {excerpt(uri)} has no object key (expected s3://bucket/key)")
    if _KEY_CHARS.fullmatch(key) is None:
        raise InvalidInputError(f"{what} {excerpt(uri)}: the key may hold only printable ASCII characters "
                                "(no whitespace or control characters)")
    return bucket, key


def is_s3_uri(uri: object) -> bool:
    """Whether :func:`check_s3_uri` accepts ``uri``."""
    try:
        check_s3_uri(uri)
    except InvalidInputError:
        return False
    return True
