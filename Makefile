# The project's commands. `make serve` is the main job, `make test` runs every test.
# Both create the virtual environment (.venv) and install the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup data train build serve test bench clean

setup: $(STAMP)

$(STAMP): requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' \
	  || { echo "Set PYTHON to a Python 3.11 interpreter: make PYTHON=/path/to/python3.11 ..."; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	touch $(STAMP)

data: setup
	$(PY) -m src.generate_data

train: data
	$(PY) -m src.train

build: train
	$(VENV)/bin/bentoml build .

# Generate, train, build and serve on http://127.0.0.1:3000 (Swagger UI at /).
serve: build
	$(VENV)/bin/bentoml serve src.service:svc --host 127.0.0.1 --port 3000

test: setup
	$(PY) -m pytest

clean:
	rm -rf $(VENV) reports data/*.csv models/*.bentomodel
