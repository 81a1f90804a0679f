"""shopfloor: MLOps for the factory floor, from notebook to cloud to edge.

The notebook API (``run_pipeline``, ``load_run``, ``submit``, ``Run``) is imported on first use,
so ``import shopfloor`` stays cheap for the command line and the edge runtime.
"""

from typing import Any

__version__ = "0.1.0"

_NOTEBOOK_API = ("run_pipeline", "load_run", "submit", "Run")


def __getattr__(name: str) -> Any:
    if name in _NOTEBOOK_API:
        from shopfloor import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'shopfloor' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_NOTEBOOK_API])
