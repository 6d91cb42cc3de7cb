# Two set-up commands: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch is installed first and pinned: the local CPU wheel, never the CUDA download.
TORCH  := torch==2.13.0
EXTRAS := train,compress,data,dashboard,agents

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[$(EXTRAS),dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/pgolf demo

test: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .

# The CPU benchmarks; benchmarks/README.md lists them all (the GPU one needs a CUDA machine).
bench: $(VENV)/.installed-dev
	$(PY) benchmarks/bench_score.py
	$(PY) benchmarks/bench_loop.py overhead

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
