# Two commands do the work on a fresh machine (Python 3.11 and make are all it needs):
#   make reproduce   regenerate every figure and table (PROFILE=quick by default; PROFILE=paper)
#   make test        library tests + every notebook under nbval in the smoke profile
# Both create .venv and install the pinned environment first when needed.

PYTHON     ?= python3.11
VENV       ?= .venv
PROFILE    ?= quick
NOTEBOOKS  ?=
PARAMS     ?=
JOBS       ?= 2
BIN        := $(VENV)/bin
STAMP      := $(VENV)/.installed-stamp
SMOKE_OUT  := $(CURDIR)/build/smoke

CHUNKS     ?=
DEVICE     ?= cpu

.PHONY: fastsverl-settle setup reproduce test test-lib test-notebooks lab bench timings lint clean distclean help

help:
	@echo "make reproduce [PROFILE=smoke|quick|paper] [NOTEBOOKS='01 02'] [PARAMS='seed=3']"
	@echo "make test | make lab [LAB_IP=0.0.0.0] | make bench | make timings | make lint"
	@echo "make fastsverl-settle [CHUNKS='a b'] [JOBS=2]  (FastSVERL's committed long runs)"
	@echo "make clean (build/ and data/cache/) | make distclean (also .venv)"

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

# FastSVERL's committed long runs (data/fastsverl/settle/): every missing chunk, JOBS at a time
# (one thread each), each written when it finishes (resumable). CHUNKS='a b' picks chunks.
fastsverl-settle: setup
	nice -n 10 $(BIN)/python -m shaprl.fastsverl.settle --chunks "$(CHUNKS)" --device "$(DEVICE)" --jobs "$(JOBS)"

test: test-lib test-notebooks

test-lib: setup
	$(BIN)/python -m pytest -q -n $(JOBS) tests

# Smoke profile: each notebook runs top to bottom on a small instance; outputs go to build/.
# Notebook kernels import numpy before shaprl: shaprl.kernel_baseline starts pytest (and lab,
# bench) with the AVX2 kernel baseline already in the environment.
test-notebooks: setup
	SHAPRL_PROFILE=smoke SHAPRL_OUTPUT_DIR=$(SMOKE_OUT)/figures MPLBACKEND=Agg \
	  $(BIN)/python -m shaprl.kernel_baseline $(BIN)/python -m pytest -q -n $(JOBS) --dist loadfile -p no:cacheprovider --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=120 notebooks

# JupyterLab on notebooks/. As root (containers, workshop images) it passes --allow-root.
# LAB_IP=0.0.0.0 binds every interface for a browser outside the container; the server
# keeps Jupyter's random token and prints the URL that carries it.
LAB_IP     ?= localhost
LAB_PORT   ?= 8888
lab: setup
	$(BIN)/python -m shaprl.kernel_baseline $(BIN)/jupyter lab notebooks --ip=$(LAB_IP) --port=$(LAB_PORT) \
	  $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) \
	  $(if $(filter-out localhost 127.0.0.1,$(LAB_IP)),--no-browser,)

bench: setup
	$(BIN)/python -m shaprl.kernel_baseline $(BIN)/python -m benchmarks

# Measure the README's timing table on a fresh clone (median of RUNS runs; see the script).
RUNS       ?= 3
STEPS      ?= setup,test,quick
timings:
	$(PYTHON) benchmarks/timings.py --runs $(RUNS) --steps $(STEPS)

# Notebooks are held to the same rules as lib/ (pyproject: E501 ignored everywhere, code
# formatted by ruff at 100 columns; ruff formats the code cells of .ipynb files too).
lint: setup
	$(BIN)/ruff check lib tests benchmarks notebooks
	$(BIN)/ruff format --check lib tests benchmarks notebooks

clean:
	@echo "make clean: removing build/ (executed notebooks, smoke and paper figures, run stamps)"
	@echo "            and data/cache/ (cached intermediates; recomputed on the next run)"
	rm -rf build data/cache figures/.staging notebooks/build
	@echo "kept: .venv (make distclean removes it too) and figures/ (the committed quick results)"

distclean: clean
	@echo "make distclean: removing $(VENV) (the next make command re-creates it in a few minutes)"
	rm -rf $(VENV)

# --- Action Shapley data (traces and utility tables; owner: Action Shapley I) -------------
.PHONY: action-shapley-traces action-shapley-tables action-shapley-kubernetes action-shapley-kubernetes-seeds action-shapley-kubernetes-sample action-shapley-checks action-shapley-verify
action-shapley-traces: setup
	$(BIN)/python -m shaprl.action_shapley.cli traces

action-shapley-tables: setup  ## small cases: 10 runs per subset, both world models, resumable, takes the data lock
	$(BIN)/python -m shaprl.action_shapley.cli tables
	$(BIN)/python -m shaprl.action_shapley.cli tables --world-model per-subset

action-shapley-kubernetes: setup  ## Kubernetes, paper goal, 32,768 subsets x 1 run: resumable across sessions (partial table committed per chunk); JOBS=2 values two chunks at once
	$(BIN)/python -m shaprl.action_shapley.cli tables --cases kubernetes --seeds 0 --algos ppo sac --jobs $(or $(JOBS),1)

action-shapley-kubernetes-seeds: setup  ## Kubernetes seeds 1-4: corrected Algorithm 2, ~3,430 agents each, resumable
	$(BIN)/python -m shaprl.action_shapley.cli kubernetes-seeds

action-shapley-kubernetes-sample: setup
	$(BIN)/python -m shaprl.action_shapley.cli kubernetes-sample

action-shapley-checks: setup
	$(BIN)/python -m shaprl.action_shapley.cli checks

action-shapley-verify: setup  ## recompute every committed utility (Kubernetes SAC: hours)
	$(BIN)/python -m shaprl.action_shapley.cli verify
