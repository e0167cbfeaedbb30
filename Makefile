# `make test` and `make run` set everything up on a fresh machine with Python >= 3.10 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The oracle for the parity tests: gym-idsgame 1.0.13 (old gym API) without its heavy extras.
REFERENCE_PKGS := gym-idsgame==1.0.13 gym==0.26.2
REFERENCE_DEPS := gym-notices cloudpickle matplotlib seaborn opencv-python-headless jsonpickle tqdm

.PHONY: install reference test test-all run demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[train,test,bench,play]"
	touch $@

reference: $(VENV)/.reference

$(VENV)/.reference: $(VENV)/.installed
	$(PIP) install -q --no-deps $(REFERENCE_PKGS)
	$(PIP) install -q $(REFERENCE_DEPS)
	$(BIN)/python -c "import warnings; warnings.filterwarnings('ignore'); import gym_idsgame.envs.idsgame_env"
	touch $@

test: install reference
	$(BIN)/python -m pytest -n 2 -q

test-all: install reference
	$(BIN)/python -m pytest -n 2 -q -m ""

run: install
	$(BIN)/python -m baselines.ppo

demo: install
	$(BIN)/python -m idsjax.demo

bench: install reference
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.vs_reference

clean:
	rm -rf $(VENV) .pytest_cache
