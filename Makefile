# serveros: two commands do everything on a fresh Debian machine: `make run` and `make test`.
# Both run `make setup` first when the environment is missing or out of date.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-done
PYTEST_ARGS ?=
# The main job: the paper's experiment (`serveros run`, both figures, model backend; see README).
RUN_ARGS ?= run

.PHONY: setup test run bench clean help
help:
	@echo "make setup   create $(VENV), install serveros and its tools (Icarus via apt-get)"
	@echo "make test    run the test suite (sets up first if needed)"
	@echo "make run     run the main experiment on the model backend"
	@echo "make bench   print benchmark figures"

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

test: $(STAMP)
	$(VENV)/bin/serveros-env $(PY) -m pytest -n 2 $(PYTEST_ARGS)

run: $(STAMP)
	$(VENV)/bin/serveros-env $(VENV)/bin/serveros $(RUN_ARGS)

bench: $(STAMP)
	$(VENV)/bin/serveros-env $(VENV)/bin/serveros bench

clean:
	rm -rf $(VENV) build .pytest_cache sim_build
