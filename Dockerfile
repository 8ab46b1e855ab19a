# syntax=docker/dockerfile:1
#
# auditwarden container image.
#
#   stage 1 (builder): builds the auditwarden wheel and the wheels of all its dependencies, and
#                      installs them into a virtual environment at /opt/auditwarden
#   stage 2 (runtime): the same slim Python base with only that environment copied in: no
#                      compilers, no build tools, no pip cache, no source tree
#
# The image runs as the numeric non-root user 65532 (Kubernetes can check runAsNonRoot with a
# numeric USER), writes nothing outside /tmp (mount an emptyDir there; the Helm chart does), and
# works with a read-only root filesystem.
#
#   buildah bud -t auditwarden:0.1.0 .      (or: docker build / podman build)
#   podman run --rm auditwarden:0.1.0 --version

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY webhook ./webhook
# Every dependency has a manylinux wheel (cryptography included), so nothing is compiled here;
# the wheels are built once and installed into a self-contained virtual environment.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels . \
 && python -m venv /opt/auditwarden \
 && /opt/auditwarden/bin/pip install --no-cache-dir --no-index --find-links /wheels /wheels/auditwarden-*.whl \
 && /opt/auditwarden/bin/pip uninstall --yes pip \
 && /opt/auditwarden/bin/python -m compileall -q /opt/auditwarden

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="auditwarden" \
      org.opencontainers.image.description="Validating admission webhook that keeps kube-apiserver audit logging on and meaningful" \
      org.opencontainers.image.licenses="Apache-2.0"
# Bytecode was compiled at build time; nothing is written at run time except under /tmp.
ENV PATH=/opt/auditwarden/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
COPY --from=builder /opt/auditwarden /opt/auditwarden
WORKDIR /tmp
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["auditwarden"]
CMD ["serve"]
