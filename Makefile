# Two commands do the work on a fresh machine (Python 3.11 and make are all it needs):
#   make reproduce   regenerate every figure and table (PROFILE=quick by default; PROFILE=paper)
#   make test        library tests + every notebook under nbval in the smoke profile
# Both create .venv and install the pinned environment first when needed.

PYTHON     ?= python3.11
VENV       ?= .venv
PROFILE    ?= quick
NOTEBOOKS  ?=
PARAMS     ?=
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed-stamp
SMOKE_OUT  := build/smoke

.PHONY: setup reproduce test test-lib test-notebooks lab bench lint clean help

help:
	@echo "make reproduce [PROFILE=smoke|quick|paper] [NOTEBOOKS='01 02'] [PARAMS='seed=3']"
	@echo "make test | make lab | make bench | make lint | make clean"

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 2; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

setup: $(STAMP)

reproduce: setup
	$(BIN)/python -m shaprl.repro.run --profile "$(PROFILE)" --notebooks "$(NOTEBOOKS)" --params "$(PARAMS)"

test: test-lib test-notebooks

test-lib: setup
	$(BIN)/python -m pytest -q tests

# Smoke profile: each notebook runs top to bottom on a small instance; outputs go to build/.
test-notebooks: setup
	SHAPRL_PROFILE=smoke SHAPRL_OUTPUT_DIR=$(SMOKE_OUT)/figures MPLBACKEND=Agg \
	  $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=120 notebooks

lab: setup
	$(BIN)/jupyter lab notebooks

bench: setup
	$(BIN)/python -m benchmarks

# Notebooks are held to the same rules as lib/ (pyproject: E501 ignored everywhere, code
# formatted by ruff at 100 columns; ruff formats the code cells of .ipynb files too).
lint: setup
	$(BIN)/ruff check lib tests benchmarks notebooks
	$(BIN)/ruff format --check lib tests benchmarks notebooks

clean:
	rm -rf build $(VENV) data/cache
