# The shopfloor image: every KFP component of the training pipeline runs in it
# (components/image.py names it; override with SHOPFLOOR_IMAGE at compile time).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /opt/shopfloor
# Exactly the pipeline extra (every component's dependencies, nothing else), at the pins of
# the lock CI uses; tests/install/test_extras.py installs and runs the same extra.
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml README.md ./
COPY shopfloor shopfloor
COPY components components
COPY pipelines pipelines
RUN pip install -c requirements/lock.txt '.[pipeline]'

# Lineage: the code version every manifest records (docker build --build-arg SHOPFLOOR_GIT_SHA=$(git rev-parse HEAD)).
ARG SHOPFLOOR_GIT_SHA=unknown
ENV SHOPFLOOR_GIT_SHA=${SHOPFLOOR_GIT_SHA}

RUN useradd --uid 10001 --create-home shopfloor
USER 10001
WORKDIR /home/shopfloor
ENTRYPOINT ["shopfloor"]
CMD ["--help"]
