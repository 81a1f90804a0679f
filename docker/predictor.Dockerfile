# shopfloor predictor: the failure model behind KServe's V1 / Open Inference Protocol APIs.
#
#   docker build -f docker/predictor.Dockerfile -t shopfloor-predictor .
#   docker run -p 8080:8080 -p 8081:8081 -e AWS_ACCESS_KEY_ID=... -e AWS_SECRET_ACCESS_KEY=... \
#     shopfloor-predictor --model-uri s3://bucket/prefix/ai4i-failure/v0003
#
# The model is fetched at start through shopfloor.registry (checksums verified), the same code
# path as `shopfloor serve`; no second S3 client. Inside a container the predictor must listen
# on all interfaces (the pod network), hence --host 0.0.0.0 here; the library default is loopback.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /app
# Exactly the serve extra (KServe + LiteRT + minio; no TensorFlow, KFP or Great Expectations:
# the default int8 and float32 formats run on LiteRT, --format saved_model would need
# tensorflow-cpu added), at the pins of the lock CI uses; tests/install/test_extras.py installs
# and runs the same extra.
COPY requirements/lock.txt requirements/lock.txt
COPY pyproject.toml README.md ./
COPY shopfloor shopfloor
COPY components components
COPY pipelines pipelines
RUN pip install -c requirements/lock.txt '.[serve]' \
    && useradd --system --uid 10001 --home-dir /home/predictor --create-home predictor

USER 10001
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "shopfloor.serving", "--host", "0.0.0.0", "--http-port", "8080", "--grpc-port", "8081"]
CMD ["--help"]
