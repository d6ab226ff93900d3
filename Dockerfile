# driftwatch: the daemon in a slim image. Mount your config at /etc/driftwatch/driftwatch.yaml and your
# reference/production data where that config points; state (SQLite, cached profiles) goes to /var/lib/driftwatch.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY driftwatch ./driftwatch
# extras: postgres (psycopg); add dask for `engines: {kind: dask}`, e.g. --build-arg EXTRAS=postgres,dask
ARG EXTRAS=postgres
RUN pip install --no-cache-dir --prefix=/install ".[${EXTRAS}]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
RUN useradd --system --uid 10001 --home-dir /var/lib/driftwatch --create-home driftwatch \
    && mkdir -p /etc/driftwatch && chown driftwatch /var/lib/driftwatch
USER driftwatch
WORKDIR /var/lib/driftwatch
EXPOSE 9108
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["driftwatch"]
CMD ["--log-format", "json", "run", "-c", "/etc/driftwatch/driftwatch.yaml"]
