# The project's commands. `make serve` is the main job, `make test` runs every test.
# Both create the virtual environment (.venv) and install the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: setup check-python image-tools data train build serve test bench deploy rollback destroy clean

setup: $(STAMP) $(TOOLS_STAMP)

check-python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "found " + sys.version' \
	  || { echo "Python 3.11 is required: make PYTHON=/path/to/python3.11 ..."; exit 1; }

# The project's environment: everything pinned (constraints.txt pins the transitive packages).
$(STAMP): requirements.txt constraints.txt | check-python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -r requirements.txt -c constraints.txt
	touch $(STAMP)

# checkov in an environment of its own: its pins would downgrade the project's packages.
$(TOOLS_STAMP): requirements-tools.txt constraints-tools.txt | check-python
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements-tools.txt -c constraints-tools.txt
	touch $(TOOLS_STAMP)

data: $(STAMP)
	$(PY) -m src.generate_data

train: data
	$(PY) -m src.train

build: train
	$(VENV)/bin/bentoml build .

# Generate, train, build and serve on http://127.0.0.1:3000 (Swagger UI at /).
serve: build
	$(VENV)/bin/bentoml serve src.service:svc --host 127.0.0.1 --port 3000

# Debian's podman, buildah and skopeo build and inspect the real Lambda image in the tests (no Docker
# engine needed); mmdebstrap makes the stand-in base image; docker-registry is a local registry to push to.
IMAGE_TOOLS := podman buildah skopeo mmdebstrap docker-registry
image-tools:
	@missing=""; for tool in podman buildah skopeo mmdebstrap; do command -v $$tool >/dev/null || missing=1; done; \
	  test -x /usr/bin/docker-registry || missing=1; \
	  if [ -n "$$missing" ]; then \
	    echo "installing $(IMAGE_TOOLS) from Debian's packages (needs root)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(IMAGE_TOOLS) >/dev/null; } \
	      || { echo "could not install $(IMAGE_TOOLS): run as root, or install them yourself"; exit 1; }; \
	  fi

test: setup image-tools
	$(PY) -m pytest

# Benchmarks (bench/run.py): writes bench/results.md and bench/results.json.
bench: setup
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m bench.run

# The cloud path (needs Docker with buildx, Terraform and AWS credentials): python -m deploy --help.
# deploy uses the newest Bento (make build makes one); rollback returns the live alias to the
# previous version (or VERSION=n); destroy removes everything deploy created.
deploy: $(STAMP)
	$(PY) -m deploy deploy

rollback: $(STAMP)
	$(PY) -m deploy rollback $(if $(VERSION),--to $(VERSION))

destroy: $(STAMP)
	$(PY) -m deploy destroy

clean:
	rm -rf $(VENV) $(TOOLS_VENV) reports data/*.csv models/*.bentomodel
