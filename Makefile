# Two commands do everything on a fresh machine (python3, make, git):
#   make quickstart   fine-tune the embedded SmolLM2-135M with every method, evaluate, print the table next to the
#                     committed reference (writes runs/quickstart/; rerunning resumes there)
#   make test         install and run the test suite (the command CI runs)
PYTHON ?= python3
VENV ?= .venv
# CPU machines (this project's and CI's) take torch 2.13.0 from local disk through this pin; on a GPU box the
# same pin resolves to PyPI's CUDA build. `make CONSTRAINTS=` installs without any pin.
CONSTRAINTS ?= constraints/cpu.txt
PIP_CONSTRAINT_ARG := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
BIN := $(VENV)/bin

.PHONY: install install-runtime quickstart test test-all test-browser test-server lint benchmark docs docs-serve clean

# install: the package with every extra the tests use (zoo, FastChat, docs, tox...); install-runtime: the package
# alone, all the quickstart needs (a fresh machine gets to training sooner). Both share .venv.
install: $(VENV)/.installed
install-runtime: $(VENV)/.installed-runtime

$(VENV)/.installed-runtime: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINT_ARG) -e .
	touch $@

$(VENV)/.installed: $(VENV)/.installed-runtime
	$(BIN)/python -m pip install --quiet $(PIP_CONSTRAINT_ARG) -e '.[dev]'
	touch $@

quickstart: install-runtime
	$(BIN)/owlore-bench run configs/quickstart.yaml

# `test` (what CI runs): every test but the `slow` ones (the real SmolLM2 model and BIG-bench data, the wheel
# install, several training processes) and the `server` one. `test-all` adds the slow tests (downloads ~450 MB
# once). Tests run one torch thread each, so two pytest-xdist workers use both cores of a small machine; a test
# file stays on one worker (--dist loadfile: its module fixtures run once). Neither runs the `server` test
# (`make test-server`): once llama-cpp-python is installed it would start a server beside the test workers.
TEST_WORKERS ?= 2
PYTEST_PARALLEL := $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile,)

test: install
	$(BIN)/python -m pytest -m "not slow and not server" -q $(PYTEST_PARALLEL)

test-all: install
	$(BIN)/python -m pytest -m "not server" -q $(PYTEST_PARALLEL)

# The `browser` tests render report.html in headless Chromium (Debian's chromium package, installed here with
# apt-get, through sudo when not root); without a browser they skip with the reason.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

test-browser: install
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)
	$(BIN)/python -m pytest -m browser -q

# The `server` test judges MT-Bench answers through the openai: backend against a real llama.cpp server
# (`python -m llama_cpp.server` serving the SmolLM2 GGUF on loopback). llama-cpp-python is built from its sdist
# (~7 min on 2 cores) when it is not importable; GGML_NATIVE=OFF because the native build uses AMX instructions
# that crash on this project's CPUs.
LLAMA_CPP_PYTHON ?= llama-cpp-python[server]==0.3.36

test-server: install
	$(BIN)/python -c "import llama_cpp" 2>/dev/null || CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON" \
		$(BIN)/python -m pip install $(PIP_CONSTRAINT_ARG) '$(LLAMA_CPP_PYTHON)'
	$(BIN)/python -m pytest -m server -q

lint: install
	$(BIN)/ruff check .

benchmark: install
	$(BIN)/python -m pytest benchmarks -q -s --benchmark-disable-gc

# The documentation site (MkDocs, mkdocs.yml): docs builds it into site/ and fails on any warning (a broken link or
# anchor, a docstring mkdocstrings cannot read); docs-serve serves it with live reload at http://127.0.0.1:8000.
docs: install
	$(BIN)/mkdocs build --strict

docs-serve: install
	$(BIN)/mkdocs serve

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks .tox .ruff_cache build
