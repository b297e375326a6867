# The project's commands. `make serve` is the main job, `make test` runs every test.
# Both create the virtual environment (.venv) and install the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: setup check-python image-tools data train build forget-missing ready serve lint format test test-fast bench deploy generate rollback destroy clean

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

# The pipeline, each step rerun only when its inputs changed or its output is gone from the store.
# .make/ (git-ignored) records the model and Bento each step made; `make serve` reuses them.
MAKE_STATE := .make
DATA_FILE := data/data.csv
MODEL_STAMP := $(MAKE_STATE)/model
BENTO_STAMP := $(MAKE_STATE)/bento
TRAIN_INPUTS := src/train.py src/dataset.py src/evaluate.py src/config.py
# What the Bento holds: bentofile.yaml's include list is the one home for it.
BENTO_INPUTS := bentofile.yaml requirements-serve.txt $(shell sed -n 's/^ *- *"\(src\/[^"]*\)"/\1/p' bentofile.yaml)

$(DATA_FILE): src/generate_data.py src/config.py | $(STAMP)
	@echo "==> data: writing $@ (no data yet, or the generator changed)"
	$(PY) -m src.generate_data

$(MODEL_STAMP): $(DATA_FILE) $(TRAIN_INPUTS) | $(STAMP)
	@echo "==> train: the data or the training code changed, or no model yet"
	@mkdir -p $(MAKE_STATE)
	$(PY) -m src.train | tee $(MAKE_STATE)/train.log
	@sed -n 's/^saved model: //p' $(MAKE_STATE)/train.log > $@.new && test -s $@.new && mv $@.new $@

$(BENTO_STAMP): $(MODEL_STAMP) $(BENTO_INPUTS)
	@echo "==> build: a new model or a change in what the Bento holds"
	XGB_MODEL_TAG=$$(cat $(MODEL_STAMP)) $(VENV)/bin/bentoml build . | tee $(MAKE_STATE)/build.log
	@sed -n 's/.*Successfully built Bento(tag="\([^"]*\)").*/\1/p' $(MAKE_STATE)/build.log > $@.new \
	  && test -s $@.new && mv $@.new $@

# A recorded model or Bento that the store no longer has (another BENTOML_HOME, or deleted) is made again.
forget-missing: $(STAMP)
	@if [ -f $(MODEL_STAMP) ] && ! $(VENV)/bin/bentoml models get "$$(cat $(MODEL_STAMP))" >/dev/null 2>&1; then \
	  echo "==> $$(cat $(MODEL_STAMP)) is not in the model store: training again"; rm -f $(MODEL_STAMP) $(BENTO_STAMP); fi
	@if [ -f $(BENTO_STAMP) ] && ! $(VENV)/bin/bentoml get "$$(cat $(BENTO_STAMP))" >/dev/null 2>&1; then \
	  echo "==> $$(cat $(BENTO_STAMP)) is not in the Bento store: building again"; rm -f $(BENTO_STAMP); fi

# Everything `make serve` needs, made only where needed; says what it reuses.
ready: $(STAMP)
	@$(MAKE) --no-print-directory forget-missing
	@$(MAKE) --no-print-directory $(BENTO_STAMP)
	@echo "==> ready: model $$(cat $(MODEL_STAMP)), Bento $$(cat $(BENTO_STAMP))"

# The tutorial's steps, run unconditionally.
data: $(STAMP)
	@rm -f $(DATA_FILE)
	@$(MAKE) --no-print-directory $(DATA_FILE)

train: $(STAMP)
	@rm -f $(MODEL_STAMP)
	@$(MAKE) --no-print-directory $(MODEL_STAMP)

build: $(STAMP)
	@rm -f $(BENTO_STAMP)
	@$(MAKE) --no-print-directory ready

# Data, model and Bento where needed, then the service on http://127.0.0.1:3000 (Swagger UI at /).
serve: ready
	XGB_MODEL_TAG=$$(cat $(MODEL_STAMP)) $(VENV)/bin/bentoml serve src.service:svc --host 127.0.0.1 --port 3000

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

# ruff (settings in ruff.toml): lint and format check. `make format` rewrites the files.
# With terraform on PATH, also `terraform fmt -check` of main.tf and of the operator's template
# (its spec-variables mark, not HCL, checked as a comment).
TF_TEMPLATE := deploy/aws-lambda-operator/aws_lambda_operator/templates/main.tf
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if command -v terraform >/dev/null 2>&1; then \
	  scratch=$$(mktemp -d) && trap 'rm -rf "$$scratch"' EXIT && \
	  sed 's/^{{SPEC_VARIABLES}}$$/# spec variables/' $(TF_TEMPLATE) > "$$scratch/main.tf" && \
	  echo "terraform fmt -check -recursive main.tf $(TF_TEMPLATE)" && \
	  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -diff -recursive main.tf && \
	  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -diff -recursive "$$scratch"; \
	else echo "terraform is not on PATH: skipped terraform fmt -check"; fi

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The unit tests only (pytest -m unit: no server, image, bentoctl or training), for the edit-test loop.
test-fast: $(STAMP)
	$(PY) -m pytest -m unit -q

# Every test: the lint, the unit tests (they fail first, and fast), then the rest. CI runs this (.ci/run).
test: lint test-fast setup image-tools
	$(PY) -m pytest -m "not unit"

# Benchmarks (bench/run.py): writes bench/results.md and bench/results.json.
bench: setup
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m bench.run

# The cloud path (needs Docker with buildx, Terraform and AWS credentials): python -m deploy --help.
# deploy uses the newest Bento (make build makes one); rollback returns the live alias to the
# previous version (or VERSION=n); destroy removes everything deploy created. ARGS passes options
# on (`make deploy ARGS=--yes`; python -m deploy deploy --help lists them).
deploy: ready
	$(PY) -m deploy deploy --bento "$$(cat $(BENTO_STAMP))" $(ARGS)

# The generated files: main.tf and bentoctl.tfvars from deployment_config.yaml and the operator
# (make deploy does this too), deploy/sample-event.json from src/config.py.
generate: $(STAMP)
	$(PY) -m deploy generate
	$(PY) -m deploy.sample_event

rollback: $(STAMP)
	$(PY) -m deploy rollback $(if $(VERSION),--to $(VERSION)) $(ARGS)

destroy: $(STAMP)
	$(PY) -m deploy destroy $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS_VENV) $(MAKE_STATE) reports data/*.csv models/*.bentomodel

# ---------------------------------------------------------------------------- the API contract, the page, lambda-local
.PHONY: browser-tools lambda-local clean-contract-envs

# schemathesis in an environment of its own: every release needs a newer rich than bentoctl
# allows (requirements-contract.txt says more).
CONTRACT_VENV := .venv-contract
CONTRACT_STAMP := $(CONTRACT_VENV)/.installed
$(CONTRACT_STAMP): requirements-contract.txt constraints-contract.txt | check-python
	test -x $(CONTRACT_VENV)/bin/python || $(PYTHON) -m venv $(CONTRACT_VENV)
	$(CONTRACT_VENV)/bin/python -m pip install $(PIP_FLAGS) -r requirements-contract.txt -c constraints-contract.txt
	touch $(CONTRACT_STAMP)

setup: $(CONTRACT_STAMP)

# Debian's Chromium and ChromeDriver: the service page's test opens it in a real headless browser.
BROWSER_TOOLS := chromium chromium-driver
browser-tools:
	@if ! test -x /usr/bin/chromium || ! test -x /usr/bin/chromedriver; then \
	  echo "installing $(BROWSER_TOOLS) from Debian's packages (needs root)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_TOOLS) >/dev/null; } \
	    || { echo "could not install $(BROWSER_TOOLS): run as root, or install them yourself"; exit 1; }; \
	fi

test: browser-tools

# The Lambda image's Python environment, installed as its Dockerfile installs it, for lambda-local.
LAMBDA_IMAGE_DIR := deploy/aws-lambda-operator/aws_lambda_operator/image
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
$(LAMBDA_STAMP): $(LAMBDA_IMAGE_DIR)/requirements-lambda.txt $(LAMBDA_IMAGE_DIR)/slim_env.py | check-python
	rm -rf $(LAMBDA_VENV) && $(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps --no-compile \
	  -r $(LAMBDA_IMAGE_DIR)/requirements-lambda.txt
	$(LAMBDA_VENV)/bin/python $(LAMBDA_IMAGE_DIR)/slim_env.py
	touch $(LAMBDA_STAMP)

# The current Bento's Lambda handler, in the image's environment, read-only, behind a local API
# Gateway (payload 2.0) on http://127.0.0.1:3001: python -m deploy.lambda_local --help.
lambda-local: ready $(LAMBDA_STAMP)
	$(PY) -m deploy.lambda_local --bento "$$(cat $(BENTO_STAMP))" --python $(LAMBDA_VENV)/bin/python --port 3001

# setuptools' pkg_resources notice comes from BentoML's CLI before the service is imported, where
# src/startup.py silences the other known warnings; only the environment reaches it.
KNOWN_WARNINGS := ignore:pkg_resources is deprecated as an API:UserWarning:fs
comma := ,
serve lambda-local: export PYTHONWARNINGS := $(if $(findstring $(KNOWN_WARNINGS),$(PYTHONWARNINGS)),$(PYTHONWARNINGS),$(if $(PYTHONWARNINGS),$(PYTHONWARNINGS)$(comma))$(KNOWN_WARNINGS))

clean: clean-contract-envs
clean-contract-envs:
	rm -rf $(CONTRACT_VENV) $(LAMBDA_VENV)
