# RepRadar: `make demo` runs the product end to end; `make test` runs the test suite.
# Both install what they need first (Debian packages from packages.apt, Python packages from uv.lock).

SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
# uv comes from PyPI; `python3 -m uv` works whether or not its script is on PATH.
UV := python3 -m uv
APT_PACKAGES := $(shell grep -v '^\s*\#' packages.apt | xargs)

.PHONY: setup system-deps python-deps demo test lint bench clean

setup: system-deps python-deps

# Debian packages: installed only when missing (needs root, as on CI and the dev machines).
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# --compile-bytecode: write the .pyc files once here; with PYTHONDONTWRITEBYTECODE set (as on CI),
# every Python process (test workers, servers, CLI runs, Spark's workers) would compile its imports again.
python-deps:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --locked --extra spark --quiet --compile-bytecode

demo: setup
	.venv/bin/repradar demo

test: setup
	.venv/bin/pytest -q -n 2 --dist loadfile --durations=15

lint: python-deps
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

bench: python-deps
	.venv/bin/python bench/bench_features.py

clean:
	rm -rf .repradar .pytest_cache bench/data bench/results tests/artifacts
