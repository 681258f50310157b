# syntax=docker/dockerfile:1
# Likeness Guard: one image for every process of a deployment (`guard serve`, `guard worker`,
# `guard init`), see docs/deploy.md. Built from the source tree:
#
#   docker build -t likeness-guard:0.1.0 .
#
# With the diffusers editor (torch, CPU build; several GB larger):
#
#   docker build --build-arg EXTRAS=gateway,nsfw,diffusers \
#     --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu \
#     -t likeness-guard:0.1.0-diffusers .
#
# Nothing in it is secret: keys come at run time from files (compose secrets), the environment
# or GUARD_KEY_PROVIDER. Nothing downloads at run time: the dlib weights
# (face_recognition_models) and NudeNet's ONNX detector ship inside their PyPI packages,
# installed here.

# The exact patch release, in both stages: the venv's interpreter is the base image's, so the
# two must match. (Pin the digest too where the registry is trusted less than the tag.)
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build

# gateway: Envoy ext_proc (guard serve-ext-proc); nsfw: NudeNet, the default NSFW screen
# (GUARD_NSFW_CLASSIFIER=nudenet). Add diffusers for the diffusion editor (see above).
ARG EXTRAS=gateway,nsfw
# Empty: no torch, so no extra index. pip reads it from the environment when set.
ARG PIP_EXTRA_INDEX_URL=""
# Empty: no insightface. Set to insightface==2.1 for the ArcFace engine (GUARD_FACE_ENGINE=
# arcface with operator-supplied ONNX models); it is installed without its dependencies, as the
# Makefile does, because it declares the GUI opencv-python (libGL) over the headless one.
ARG INSIGHTFACE=""

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# The constraints first: the dependency layer is rebuilt only when they or pyproject change.
COPY constraints.txt pyproject.toml README.md ./
# setuptools at its pinned version: face_recognition_models finds its weights with
# pkg_resources, which the venv's own (older) setuptools would otherwise provide.
RUN pip install -c constraints.txt pip==25.3 setuptools==80.9.0
COPY guard ./guard
COPY policies ./policies
COPY migrations ./migrations
# A regular (not editable) install: the wheel is built from /src and the venv holds all of it.
RUN pip install -c constraints.txt ".[${EXTRAS}]"
RUN if [ -n "${INSIGHTFACE}" ]; then \
        pip install -c constraints.txt --no-deps "${INSIGHTFACE}"; \
    fi
# Fail the build, not the first request, if a model or native library is missing.
RUN python -c "import cv2, dlib, faiss, c2pa, face_recognition_models, nudenet, guard.cli" \
    && python -c "import face_recognition_models as m; print(m.face_recognition_model_location())"


FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="Likeness Guard" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed uid/gid, so key files and volumes can be owned by it on the host (docs/deploy.md).
RUN groupadd --system --gid 10001 guard \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin guard \
    && mkdir -p /var/lib/guard \
    && chown 10001:10001 /var/lib/guard

COPY --from=build /opt/venv /opt/venv

# PYTHONDONTWRITEBYTECODE: the root file system is read-only in compose.yaml. XDG_CACHE_HOME:
# a library that caches something writes to the tmpfs, not to a home that does not exist.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    GUARD_DATA_DIR=/var/lib/guard

WORKDIR /var/lib/guard
USER 10001:10001

# The runtime stage has the same system libraries as the build stage minus pip's build tools:
# check the command and its native imports here too.
RUN guard --help > /dev/null

EXPOSE 8000

# /healthz answers while the process serves (readiness, every dependency, is /readyz). No curl
# in a slim image: Python's own HTTP client.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# One uvicorn process per container: scale with replicas (compose.yaml), not --workers.
CMD ["guard", "serve", "--host", "0.0.0.0", "--port", "8000"]
