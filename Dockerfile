# litellm-operator image: `docker build -t ghcr.io/litellm-operator/litellm-operator:0.1.0 .`
# BASE_IMAGE: any image with python3 (>= 3.11) and its venv module. The default is Docker Hub's;
# where that cannot be pulled, `make image` builds one from Debian packages (hack/image.sh).
ARG BASE_IMAGE=python:3.11-slim

# Builder: the dependencies at the versions the tests ran with (requirements/operator.lock; a
# layer of their own, reused while the lock is unchanged), then a wheel of the project, all
# installed into /opt/venv.
FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/venv
COPY requirements/operator.lock ./requirements/
RUN /opt/venv/bin/pip install -r requirements/operator.lock
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/venv/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-deps /wheels/*.whl
# Not needed at run time: pip and setuptools, and the kubernetes client's asyncio twin
# (kubernetes.aio, 68 MB), which neither the operator nor kopf imports.
RUN /opt/venv/bin/pip uninstall -q -y pip setuptools \
    && rm -rf /opt/venv/lib/python3*/site-packages/kubernetes/aio

# Final: the venv only; no compiler, no sources, no pip cache. Runs as an unprivileged user
# (uid 65532 has no passwd entry: nothing in the operator may need one).
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=builder /opt/venv /opt/venv
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["litellm-operator"]
CMD ["run"]
