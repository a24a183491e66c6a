# One image for every role of the service: api, search / train / latency workers, dashboard.
# The role is the container's command (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    NAS_HOME=/data \
    NAS_SEARCH_SPACES_DIR=/app/search_spaces

WORKDIR /app

# torch first, the CPU build, so that `pip install .` finds it satisfied and never pulls a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml README.md ./
COPY nas ./nas
COPY api ./api
COPY workers ./workers
RUN pip install .

# Spaces, reference networks, device profiles and example specs (read through NAS_SEARCH_SPACES_DIR).
COPY search_spaces ./search_spaces

RUN useradd --create-home --uid 1000 nas && mkdir -p /data && chown nas /data
USER nas
VOLUME ["/data"]
EXPOSE 8000 8080

CMD ["nas", "serve", "--host", "0.0.0.0", "--port", "8000"]
