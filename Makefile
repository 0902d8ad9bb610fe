# Two commands on a fresh machine:  make demo  |  make test
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

RAY_STAMP := $(VENV)/.installed-ray

.PHONY: venv venv-ray demo test test-fast bench clean

venv: $(STAMP)

# Optional: Ray for `app.py batch --engine ray` (make test installs it too: its tests use a local cluster).
venv-ray: $(RAY_STAMP)

$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(PY) -m pip install --quiet -r requirements-ray.txt -c constraints.txt
	touch $@

# Pinned install: requirements.txt holds what we use, constraints.txt the exact version of
# everything it pulls in; mediapipe goes in with --no-deps so it cannot add jax or a second OpenCV.
# Then the product itself, editable (pyproject.toml): imports work from any folder and `markerless`
# is on the venv's PATH; --no-build-isolation builds it with the pinned setuptools, offline.
$(STAMP): requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) tools/check_install.py
	touch $@

demo: venv
	$(PY) app.py demo

test: venv-ray
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

bench: venv
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) demo-run .pytest_cache
