# Music Time Machine: one container, production mode, data in the /data volume.
#   docker build -t music-time-machine .
#   docker run -d -p 127.0.0.1:8000:8000 -v mtm-data:/data --env-file .env music-time-machine
# (compose.yaml does the same). PYTHON_IMAGE may name any Debian-based image with python3
# 3.11 or newer and its venv module.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# Build: a virtual environment holding the app, installed from the source as a normal
# (non-editable) package, so templates, migrations and static files come from the wheel.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY static ./static
COPY src ./src
RUN python3 -m venv /opt/mtm \
    && /opt/mtm/bin/pip install --quiet --no-compile . \
    && /opt/mtm/bin/pip uninstall --quiet --yes pip setuptools \
    && /opt/mtm/bin/python -m compileall -q /opt/mtm/lib

# Run: the same base without the build's leftovers, as an unprivileged user.
FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin mtm \
    && mkdir -m 0700 /data && chown mtm:mtm /data
COPY --from=build /opt/mtm /opt/mtm
ENV PATH=/opt/mtm/bin:$PATH \
    MTM_DATA_DIR=/data \
    MTM_ENV=production \
    HOME=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER mtm
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# /healthz answers 200 only when the database is readable and writable.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
# Inside the container it listens on every interface; publish the port on 127.0.0.1 only
# and put a reverse proxy with HTTPS in front (see the README).
CMD ["mtm", "serve", "--host", "0.0.0.0", "--port", "8000"]
