# syntax=docker/dockerfile:1
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml README.md ./
COPY secushare secushare
COPY accounts accounts
COPY outbox outbox
COPY secupass secupass
COPY deliveries deliveries
COPY secushare_cli secushare_cli
RUN pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 1000 --home /app secushare
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY . /app
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 DATA_DIR=/data STATIC_ROOT=/app/staticfiles
RUN mkdir -p /data && chown secushare /data \
    && DEBUG=true python manage.py compiletranslations \
    && DEBUG=true python manage.py collectstatic --no-input -v 0
USER secushare
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
    CMD ["python", "-m", "secushare.healthcheck"]
ENV GUNICORN_BIND=0.0.0.0:8000
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
