"""The container image every component runs in (built from the repo's Dockerfile)."""

from shopfloor import settings

#: SHOPFLOOR_IMAGE at compile time (e.g. a registry inside an air-gapped plant), else the project
#: image of this package version.
IMAGE = settings.pipeline_image()

# Every component is declared with install_kfp_package=False: the image already holds the
# pinned kfp, and a pip check at the start of every step only costs time (locally and in pods).
