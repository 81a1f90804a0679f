"""Data validation: a versioned Great Expectations suite plus a reference profile for drift.

``validate(frame)`` returns a :class:`ValidationReport` (gate decision, one-line reason, every
expectation's outcome); ``write_report`` stores it as JSON and a self-contained HTML page.
"""

from shopfloor.validation.profile import build_reference_profile, load_reference_profile
from shopfloor.validation.report import Failure, ValidationReport, write_report
from shopfloor.validation.validate import load_suite, validate

__all__ = [
    "Failure",
    "ValidationReport",
    "build_reference_profile",
    "load_reference_profile",
    "load_suite",
    "validate",
    "write_report",
]
