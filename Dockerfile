# RepRadar service image: `docker build -t repradar . && docker run -p 8000:8000 -v repradar:/var/lib/repradar repradar`
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    REPRADAR_HOME=/var/lib/repradar

# libgomp1: LightGBM's OpenMP runtime. Chromium and the fonts: HR's report as PDF (reporting/report.py),
# Chinese included. (Not Java: the Spark engine runs where Spark is, not in the service; docs/spark.md.)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 chromium fonts-dejavu-core fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/* \
    && pip install --no-cache-dir uv \
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
CMD ["/app/.venv/bin/repradar", "serve", "--host", "0.0.0.0", "--port", "8000"]
