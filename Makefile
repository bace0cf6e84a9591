# The two commands of README.md: `make run` and `make test`.
SHELL := /bin/bash
PORT ?= 8000
HOST ?= 127.0.0.1
# uv may live on PATH, or only as a module of the python3 that installed it.
UV := $(shell if uv --version >/dev/null 2>&1; then echo uv; else echo "python3 -m uv"; fi)
MANAGE := $(UV) run --frozen python manage.py

.PHONY: install run serve test lint docs check clean

install:  ## Install locked dependencies into .venv (installs uv first when absent).
	@$(UV) --version >/dev/null 2>&1 || python3 -m pip install --quiet uv \
		|| python3 -m pip install --quiet --user --break-system-packages uv
	@$(UV) sync --frozen

run: install  ## Migrate, load reference and demo data, then serve on $(HOST):$(PORT).
	@mkdir -p var
	$(MANAGE) migrate --noinput
	$(MANAGE) bootstrap
	$(MANAGE) generate_demo_data --round sipas-2022 --responses 3000 --seed 2022 --if-empty
	$(MANAGE) generate_demo_data --round demo --responses 3000 --seed 2026 --if-empty
	$(MANAGE) recompute_scores --round sipas-2022 --if-unpublished
	$(MANAGE) recompute_scores --round demo --if-unpublished
	@$(MANAGE) run_info --host "$(HOST)" --port "$(PORT)"
	@bash bin/serve "$(HOST)" "$(PORT)"

# Two test processes (pytest-xdist), each file kept whole on one of them; TEST_WORKERS=0 runs
# the suite in one process. Each process has its own test database and Redis database.
TEST_WORKERS ?= 2

test: install  ## The whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set).
	$(UV) run --frozen pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=30

lint:  ## ruff (lint and format) and the import rules (pyproject.toml, [tool.importlinter]).
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports --no-cache --no-logo

docs:  ## Build the documentation site (mkdocs.yml) into var/site; a broken link fails.
	$(UV) run --frozen mkdocs build --strict

check:
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run

clean:
	rm -rf .venv var/static var/site .pytest_cache .import_linter_cache
