# motionctl: the two commands of the README's quick start, and their set-up.
#   make demo   set up .venv if needed, check the default move on the default rig and stage, write its
#               preview (out/preview/preview.html and pictures), then dry-run it against simulated drives
#               over a serial pty in simulated lock-step time (the same take on any machine, however busy)
#   make test   set up .venv if needed, then run the whole test suite: the tests of logic (simulated time)
#               on TEST_JOBS processes, then the few tests of wall-clock behaviour alone, so that nothing
#               of the suite's own competes with a real-time loop
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_MOVE ?= moves/push_in.toml
TEST_JOBS ?= 2

.PHONY: demo test venv clean bench stage-demo

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "motionctl needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/motionctl check $(DEMO_MOVE)
	$(BIN)/motionctl preview $(DEMO_MOVE) --out out/preview
	$(BIN)/motionctl run $(DEMO_MOVE) --sim --clock sim --transport serial --takes takes

# Two simulated rig daemons and an operator station on 127.0.0.1, mutual TLS, their moves run together.
stage-demo: $(STAMP)
	$(BIN)/motionctl stage --net rigs/stage_net/demo.toml demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) -m "not wall_clock"
	$(BIN)/python -m pytest -q -m wall_clock

bench: $(STAMP)
	$(BIN)/python benchmarks/plan_speed.py
	$(BIN)/python benchmarks/loop_jitter.py
	$(BIN)/python benchmarks/tui_jitter.py
	$(BIN)/python benchmarks/time_trust.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
