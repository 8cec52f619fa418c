# syntax=docker/dockerfile:1
# helpgate: `docker build -t helpgate .`, or `docker compose up` with compose.yaml next to this file.
# Both stages use the same base, so the virtual environment built in the first runs unchanged in the second.

FROM python:3.13-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/helpgate
WORKDIR /src
# The dependencies first: this layer is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
# Then helpgate itself, installed into the environment (not editable: /src stays behind in this stage).
COPY README.md ./
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable

FROM python:3.13-slim
LABEL org.opencontainers.image.title="helpgate" \
      org.opencontainers.image.description="Email-first support ticketing gateway" \
      org.opencontainers.image.licenses="GPL-3.0-or-later"
RUN groupadd --system --gid 10001 helpgate \
    && useradd --system --uid 10001 --gid helpgate --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin helpgate \
    && install --directory --owner=helpgate --group=helpgate --mode=0750 /data
COPY --from=build /opt/helpgate /opt/helpgate
ENV PATH="/opt/helpgate/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    HELPGATE_DATA_DIR=/data \
    HELPGATE_HTTP_HOST=0.0.0.0 \
    HELPGATE_HTTP_PORT=8000 \
    HELPGATE_SMTP_HOST=0.0.0.0 \
    HELPGATE_SMTP_PORT=2525
# Generated secrets, the embedded store (when MONGODB_URI is unset), .eml files and template overrides live here.
VOLUME /data
WORKDIR /data
USER 10001:10001
EXPOSE 8000 2525
# 503 (a part is down) or no answer makes urlopen raise, so python exits 1: unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --start-interval=2s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HELPGATE_HTTP_PORT', '8000') + '/healthz', timeout=4)"]
# `docker run helpgate create-user ...` runs another command of the same CLI.
ENTRYPOINT ["helpgate"]
CMD ["serve"]
