# RepRadar service image: `docker build -t repradar . && docker run -p 8000:8000 -v repradar:/var/lib/repradar repradar`
# (docs/service.md#in-a-container: users, settings, stopping, backups).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    REPRADAR_HOME=/var/lib/repradar \
    PATH=/app/.venv/bin:$PATH

# libgomp1: LightGBM's OpenMP runtime. Chromium and the fonts: HR's report as PDF (reporting/report.py),
# Chinese included. (Not Java: the Spark engine runs where Spark is, not in the service; docs/spark.md.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 chromium fonts-dejavu-core fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv==0.13.9 \
    && useradd --create-home --uid 10001 repradar \
    && mkdir -p /var/lib/repradar && chown repradar /var/lib/repradar

WORKDIR /app
# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY . .
RUN uv sync --locked --no-dev

USER repradar
EXPOSE 8000
VOLUME ["/var/lib/repradar"]
# Liveness only: /health/ready stays 503 until a model is trained and promoted, which is no fault of the process.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
CMD ["repradar", "serve", "--host", "0.0.0.0", "--port", "8000"]
