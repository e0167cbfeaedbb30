# `make test` and `make run` set everything up on a fresh machine with Python >= 3.10 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
# The lock: every install takes its versions from it, so a fresh clone gets the versions tested when it
# was written. `make lock` refreshes it (after changing a dependency in either pyproject.toml).
LOCK      := constraints.txt
LOCK_VENV := $(VENV)/lock
# The extras of idsjax that the checkout uses (tests, benchmarks, the views, the linter).
EXTRAS := test,bench,play,lint,serve
# The oracle for the parity tests: gym-idsgame 1.0.13 (old gym API) without its heavy extras.
REFERENCE_PKGS := gym-idsgame==1.0.13 gym==0.26.2
REFERENCE_DEPS := gym-notices cloudpickle matplotlib seaborn opencv-python-headless jsonpickle tqdm

.PHONY: install reference test test-slow test-all test-browser lint run demo bench device-check lock clean

install: $(VENV)/.installed

# The library (with its extras) and the research kit `idsjax-baselines` (baselines/pyproject.toml),
# both editable. setuptools >= 77 is there for tests/test_packaging.py's wheel builds.
$(VENV)/.installed: pyproject.toml baselines/pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c $(LOCK) "setuptools>=77" wheel
	$(PIP) install -q -c $(LOCK) -e ".[$(EXTRAS)]" -e ./baselines
	touch $@

reference: $(VENV)/.reference

# Everything with --no-deps: pip's resolver would otherwise report in red that gym-idsgame's own
# requirements (torch, ...) are missing, which the oracle never imports here. Its runtime dependencies
# are listed as their whole closure (REFERENCE_DEPS and what they need), each pinned from the lock.
REFERENCE_CLOSURE := $(REFERENCE_DEPS) contourpy cycler fonttools kiwisolver numpy packaging pandas pillow \
	pyparsing python-dateutil tzdata
$(VENV)/.reference: $(VENV)/.installed
	pins=$$(for p in $(REFERENCE_CLOSURE); do grep -i -m1 "^$$p==" $(LOCK) || \
		{ echo "make reference: $$p is not pinned in $(LOCK) (make lock)" >&2; exit 1; }; done) && \
	$(PIP) install -q --no-deps $(REFERENCE_PKGS) $$pins
	@# The oracle imports: its stderr (gym's "unmaintained" banner) is shown only if it does not.
	$(BIN)/python -c "import warnings; warnings.filterwarnings('ignore'); import gym_idsgame.envs.idsgame_env" \
		2> $(VENV)/reference-check.log || { cat $(VENV)/reference-check.log >&2; exit 1; }
	touch $@

# IDSJAX_REQUIRE_REFERENCE=1: the parity tests fail, instead of skipping, when the oracle is missing.
# The default suite is bound by XLA's compile times (a fresh clone's cache is empty): it compiles
# with LLVM's optimisation level 0, which takes a fifth off the suite's wall time on 2 cores. XLA's
# own HLO passes (fusion, layout) still run. The game's integer values are the same at every level;
# float results (networks, losses) can differ in the last bit or two (measured: 8 PPO updates, at
# most 1.2e-7), which every test's comparison allows, and the whole suite passes at both levels.
# `make test-all` and every benchmark keep the default level, whose speed is what users get.
TEST_XLA_FLAGS := --xla_backend_optimization_level=0
# The slowest tests of each run are listed at its end, so a suite that outgrows its budget says where.
DURATIONS := --durations=15
test: install reference
	IDSJAX_REQUIRE_REFERENCE=1 XLA_FLAGS="$$XLA_FLAGS $(TEST_XLA_FLAGS)" $(BIN)/python -m pytest -n 2 -q $(DURATIONS)

# What `make test` leaves out to stay within 10 minutes (learning runs, every id, many-process runs),
# at XLA's default optimisation level as `make test-all` (these tests were written and measured at it).
test-slow: install reference
	IDSJAX_REQUIRE_REFERENCE=1 $(BIN)/python -m pytest -n 2 -q -m slow $(DURATIONS)

test-all: install reference
	IDSJAX_REQUIRE_REFERENCE=1 $(BIN)/python -m pytest -n 2 -q -m ""

# `ruff format --check .` joins this once the tree has been formatted.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The browser game in headless Chromium: Debian's chromium and its chromedriver (selenium uses that one),
# installed when either is missing.
test-browser: install
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium chromium-driver; }
	$(BIN)/python -m pytest -p no:xdist -q -m browser tests/test_serve_browser.py

run: install
	$(BIN)/python -m baselines.ppo

demo: install
	$(BIN)/python -m idsjax.demo

bench: install reference
	$(BIN)/python -m benchmarks.throughput
	$(BIN)/python -m benchmarks.vs_reference
	$(BIN)/python -m pytest -p no:xdist -q -s -m benchmark tests/test_benchmarks.py

# The device check (issue 15) in its small mode on the CPU; on a GPU machine run benchmarks/device_check.sh.
device-check: install
	DEVICE_CHECK_SMALL=1 PYTHON=$(BIN)/python benchmarks/device_check.sh $(or $(DEVICE_CHECK_OUT),/tmp/idsjax-device-check)

# Re-resolve every dependency to the newest versions the pyproject files allow, in a scratch venv, and
# pin them all (the reference oracle's dependencies included; gym-idsgame and gym are pinned above).
# Then `make clean test` tries them; commit constraints.txt with the change that needed it.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip "setuptools>=77" wheel
	$(LOCK_VENV)/bin/python -m pip install -q -e ".[$(EXTRAS)]" -e ./baselines $(REFERENCE_DEPS)
	{ echo "# The lock: \`make install\` installs with -c $(LOCK). Regenerate with \`make lock\`, never by hand."; \
	  $(LOCK_VENV)/bin/python -c "import platform as p; print(f'# Resolved on Python {p.python_version()}, {p.system()} {p.machine()}.')"; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable | grep -v -i -E '^(pip|idsjax|idsjax-baselines)=='; \
	} > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf $(LOCK_VENV)

clean:
	rm -rf $(VENV) .pytest_cache
