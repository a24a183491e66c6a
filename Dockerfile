# One image for every role of the service: api, search / train / latency workers, dashboard.
# The role is the container's command (see docker-compose.yml).
#
# Online (Docker Hub and the package indexes reachable): `docker-compose up -d --build`.
# Offline (only Debian's archive and a host-side Python index reachable): deploy/build-offline builds a
# Debian base image with debootstrap and fills deploy/wheelhouse on the host, then builds this file with
#   --build-arg BASE_IMAGE=platform-nas-base:bookworm --build-arg OFFLINE=1
# and nothing inside the build touches the network. Any base with python3 >= 3.11 and its venv module works.
ARG BASE_IMAGE=python:3.11-slim

# --- build: a virtualenv with torch (CPU build) and the project. Its layers, the wheelhouse among them,
# stay out of the final image.
FROM ${BASE_IMAGE} AS build
ARG OFFLINE=0
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PATH=/opt/nas/bin:$PATH
RUN python3 -m venv /opt/nas
# Empty in git (a README only); deploy/build-offline fills it.
COPY deploy/wheelhouse/ /wheelhouse/
# torch first, the CPU build, so that installing the project finds it satisfied and never pulls a CUDA build.
RUN if [ "$OFFLINE" = 1 ]; then \
        pip install --no-index --find-links /wheelhouse torch==2.13.0; \
    else \
        pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    fi
WORKDIR /src
COPY pyproject.toml README.md ./
COPY nas ./nas
COPY api ./api
COPY workers ./workers
RUN if [ "$OFFLINE" = 1 ]; then \
        pip install --no-index --find-links /wheelhouse . ; \
    else \
        pip install . ; \
    fi \
    && python -c "import torch, nas.cli, api.main, workers.app; assert torch.version.cuda is None"

# --- the service image
FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/nas/bin:$PATH \
    NAS_HOME=/data \
    NAS_SEARCH_SPACES_DIR=/app/search_spaces

COPY --from=build /opt/nas /opt/nas
WORKDIR /app
# Spaces, reference networks, device profiles and example specs (read through NAS_SEARCH_SPACES_DIR).
COPY search_spaces ./search_spaces

RUN useradd --create-home --uid 1000 nas && mkdir -p /data && chown nas /data
USER nas
VOLUME ["/data"]
EXPOSE 8000 8080

CMD ["nas", "serve", "--host", "0.0.0.0", "--port", "8000"]
