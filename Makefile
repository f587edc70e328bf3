# The two commands are `make run` and `make test`; see README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The suite runs on the production parts: PostgreSQL and Redis.
TEST_DATABASE_URL ?= postgres://postgres:postgres@127.0.0.1:5432/tagledger
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist workers, each on its own test database and Redis databases (tests/conftest.py):
# one a core on the two-core CI machine (3 was not clearly faster, and leaves the suite's
# load-sensitive tests less room); PYTEST_WORKERS=0 runs the suite in this one process, as before.
# worksteal: an idle worker takes tests queued on a busy one, so a long test is not the tail.
PYTEST_WORKERS ?= 2

.PHONY: run test lint format bench bench-poll bench-search bench-packages bench-hooks bench-tools clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || { echo "python3 -m venv failed: install python3-venv (apt-get install python3-venv)"; exit 1; }
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/python manage.py migrate --no-input
	HOST=$(HOST) PORT=$(PORT) BIN=$(BIN) scripts/run

test: $(VENV)/.installed-dev
	scripts/test-services
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Benchmarks (results in BENCHMARKS.md): each script also runs alone, e.g. `python -m bench.poll --quick`.
bench: bench-poll bench-search bench-packages bench-hooks

# The load tools the benchmarks compare against, installed when missing (as scripts/test-services does).
bench-tools:
	@need=""; \
	command -v wrk >/dev/null || need="$$need wrk"; \
	command -v ab >/dev/null || need="$$need apache2-utils"; \
	[ -x /usr/bin/time ] || need="$$need time"; \
	if [ -n "$$need" ]; then \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  echo "installing:$$need"; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$need >/dev/null; \
	fi

# Polling: first poll vs the registry's raw rate and skopeo, re-poll cost, memory, scale-out (~12 min);
# then polls through a proxy adding 50 ms a request (bench/latency.py, ~3 min; --quick passed on).
bench-poll: $(VENV)/.installed-dev bench-tools
	scripts/test-services
	$(BIN)/python -m bench.poll $(BENCH_POLL_ARGS)
	$(BIN)/python -m bench.latency $(filter --quick,$(BENCH_POLL_ARGS))

# Search and pages at 1 M builds on PostgreSQL, then SQLite; the data is generated once and kept
# (tl_bench_scale, var/bench/scale.sqlite3). BENCH_SEARCH_ARGS=--quick: small data, a smoke run.
bench-search: $(VENV)/.installed-dev
	scripts/test-services
	for backend in postgres sqlite; do \
	  $(BIN)/python -m bench.generate --backend $$backend --reuse $(BENCH_SEARCH_ARGS) && \
	  $(BIN)/python -m bench.search --backend $$backend $(BENCH_SEARCH_ARGS) && \
	  $(BIN)/python -m bench.pages --backend $$backend $(BENCH_SEARCH_ARGS) || exit 1; \
	done

# Package search over 10 000 builds of 300 packages on PostgreSQL, and the storage per build (~1 min;
# its own database tl_bench_packages, made afresh). BENCH_PACKAGES_ARGS=--quick: 1 000 builds.
bench-packages: $(VENV)/.installed-dev
	scripts/test-services
	$(BIN)/python -m bench.packages $(BENCH_PACKAGES_ARGS)

# Registry push events: a pushed rebuild to its `moved` event with the interval at 1 h, over a real
# registry's notifications, gunicorn and a Celery worker (~2 min; its own database tl_bench_hooks).
# BENCH_HOOKS_ARGS=--quick: 5 pushes a series.
bench-hooks: $(VENV)/.installed-dev
	scripts/test-services
	$(BIN)/python -m bench.hooks $(BENCH_HOOKS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
