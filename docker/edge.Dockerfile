# shopfloor edge runtime: the LiteRT-only model server for factory edge sites (K3s, gateways).
#
# Both architectures of the floor from one machine (QEMU/binfmt or native builders):
#   docker buildx build --platform linux/amd64,linux/arm64 -f docker/edge.Dockerfile \
#     -t ghcr.io/shopfloor-mlops/shopfloor-edge:0.1.0 --push .
# One architecture into the local image store:
#   docker buildx build --platform linux/arm64 -f docker/edge.Dockerfile -t shopfloor-edge --load .
#
# Exactly the edge extra (LiteRT, numpy, uvicorn/httptools/uvloop, orjson, prometheus_client,
# cryptography, the S3 client for --pull) at the pins of the lock: no TensorFlow, KServe or
# pandas. Every dependency ships manylinux wheels for x86_64 and aarch64, so no compiler is
# needed in either stage. The model is not in the image: the runtime pulls and verifies the
# version it is told to run into its store (a persistent volume), see helm/shopfloor-edge.
# Inside a pod the runtime listens on all interfaces (the pod network), hence --host 0.0.0.0
# here; the library default is loopback. Runs as uid 10001 and writes only to the store.

# -- build: a virtualenv with the edge extra ---------------------------------------------------
FROM python:3.11.7-slim-bookworm AS build

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml README.md ./
COPY shopfloor shopfloor
COPY components components
COPY pipelines pipelines
RUN python -m venv /opt/shopfloor \
    && /opt/shopfloor/bin/pip install -c requirements/lock.txt '.[edge]' \
    && /opt/shopfloor/bin/python -c "import shopfloor.edge.server, importlib.util as u; \
assert not any(u.find_spec(m) for m in ('tensorflow', 'kserve', 'pandas')), 'heavy package in edge image'"

# -- runtime: the virtualenv only, non-root ------------------------------------------------------
FROM python:3.11.7-slim-bookworm AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/shopfloor/bin:$PATH
COPY --from=build /opt/shopfloor /opt/shopfloor
RUN useradd --system --uid 10001 --home-dir /home/shopfloor --create-home shopfloor \
    && mkdir -p /var/lib/shopfloor/store && chown 10001:10001 /var/lib/shopfloor/store

USER 10001
WORKDIR /home/shopfloor
EXPOSE 8090
VOLUME ["/var/lib/shopfloor/store"]
ENTRYPOINT ["shopfloor", "edge", "serve", "--host", "0.0.0.0", "--port", "8090", "--store", "/var/lib/shopfloor/store"]
CMD []
