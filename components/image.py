"""The container image every component runs in (built from the repo's Dockerfile)."""

import os

#: Override at compile time with SHOPFLOOR_IMAGE (e.g. a registry inside an air-gapped plant).
IMAGE = os.environ.get("SHOPFLOOR_IMAGE", "ghcr.io/shopfloor-mlops/shopfloor:0.1.0")
