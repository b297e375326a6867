# The project's commands. `make serve` is the main job, `make test` runs every test.
# Both create the virtual environments and install the pinned requirements first.

PYTHON ?= python3.11
PIP_FLAGS := --quiet --disable-pip-version-check

.PHONY: setup check-python image-tools browser-tools asl-tools data train build forget-missing ready serve \
  lambda-local batch-score drift-report lint format test test-fast bench deploy generate rollback destroy clean

# ---------------------------------------------------------------------------- environments
# Every environment in one place: its folder, and the requirements (-r) and constraints (-c)
# files it is installed from. The stamp <env>/.installed is newer than those files once installed.
#   .venv         the project: data, training, serving, the deploy command, tests (BentoML current)
#   .venv-tools   checkov, whose pins would downgrade the project's packages
#   .venv-deploy  bentoctl and the older BentoML it needs (requirements-deploy.txt says why)
#   .venv-lambda  the Lambda image's Python environment, installed as its Dockerfile does
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAMBDA_IMAGE_DIR := deploy/aws-lambda-operator/aws_lambda_operator/image
LAMBDA_VENV := .venv-lambda
LAMBDA_STAMP := $(LAMBDA_VENV)/.installed
ENVS := $(VENV) .venv-tools .venv-deploy
CSV_LIB := src/libcsv_block.so  # built below
setup: $(ENVS:%=%/.installed) $(CSV_LIB)

check-python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "found " + sys.version' \
	  || { echo "Python 3.11 is required: make PYTHON=/path/to/python3.11 ..."; exit 1; }

$(VENV)/.installed: requirements.txt constraints.txt
.venv-tools/.installed: requirements-tools.txt constraints-tools.txt
.venv-deploy/.installed: requirements-deploy.txt constraints-deploy.txt
%/.installed: | check-python
	test -x $*/bin/python || $(PYTHON) -m venv $*
	$*/bin/python -m pip install $(PIP_FLAGS) $(foreach file,$^,$(if $(filter constraints%,$(file)),-c,-r) $(file))
	touch $@

# The batch job's compiled reader and writer (src/csv_block.c, loaded by src/csv_block.py with
# ctypes: no Python headers needed). Without it the job reads with pandas, and more slowly.
$(CSV_LIB): src/csv_block.c
	$(call apt_install_missing,gcc libc6-dev,/usr/bin/cc)
	cc -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $<

$(LAMBDA_STAMP): $(LAMBDA_IMAGE_DIR)/requirements-lambda.txt $(LAMBDA_IMAGE_DIR)/slim_env.py | check-python
	rm -rf $(LAMBDA_VENV) && $(PYTHON) -m venv $(LAMBDA_VENV)
	$(LAMBDA_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps --no-compile -r $<
	$(LAMBDA_VENV)/bin/python $(LAMBDA_IMAGE_DIR)/slim_env.py
	touch $@

# Debian's packages the tests use, installed only where one is missing (needs root):
# podman, buildah and skopeo build and inspect the real Lambda image (no Docker engine needed),
# mmdebstrap makes the stand-in base image, docker-registry is a local registry to push to;
# Chromium and ChromeDriver open the service page in a real headless browser.
define apt_install_missing
	@missing=""; for file in $(2); do test -x $$file || missing=1; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing $(1) from Debian's packages (needs root)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; } \
	      || { echo "could not install $(1): run as root, or install them yourself"; exit 1; }; \
	  fi
endef
# Debian's docker.io is the real Docker Engine the deploy tests build, run and push with
# (tests/real_tools.py starts it on a socket of its own; the machine's Docker is never used).
image-tools:
	$(call apt_install_missing,podman buildah skopeo mmdebstrap docker-registry docker.io,\
	  /usr/bin/podman /usr/bin/buildah /usr/bin/skopeo /usr/bin/mmdebstrap /usr/bin/docker-registry /usr/sbin/dockerd)
browser-tools:
	$(call apt_install_missing,chromium chromium-driver,/usr/bin/chromium /usr/bin/chromedriver)
# npm's asl-validator (pinned in tests/asl/package-lock.json) checks the batch state machine's definition.
ASL_VALIDATOR := tests/asl/node_modules/.bin/asl-validator
asl-tools: $(ASL_VALIDATOR)
$(ASL_VALIDATOR): tests/asl/package.json tests/asl/package-lock.json
	$(call apt_install_missing,nodejs npm,/usr/bin/node /usr/bin/npm)
	cd tests/asl && npm ci --silent --no-audit --no-fund
	touch $@

# ---------------------------------------------------------------------------- the pipeline
# Each step reruns only when its inputs changed or its output is gone from the store.
# .make/ (git-ignored) records the model and Bento each step made; `make serve` reuses them.
MAKE_STATE := .make
DATA_FILE := data/data.csv
MODEL_STAMP := $(MAKE_STATE)/model
BENTO_STAMP := $(MAKE_STATE)/bento
TRAIN_INPUTS := src/train.py src/dataset.py src/evaluate.py src/reference.py src/config.py
# What the Bento holds: bentofile.yaml's include list is the one home for it.
BENTO_INPUTS := bentofile.yaml requirements-serve.txt $(shell sed -n 's/^ *- *"\(src\/[^"]*\)"/\1/p' bentofile.yaml)

$(DATA_FILE): src/generate_data.py src/config.py | $(STAMP)
	@echo "==> data: writing $@ (no data yet, or the generator changed)"
	$(PY) -m src.generate_data

$(MODEL_STAMP): $(DATA_FILE) $(TRAIN_INPUTS) | $(STAMP)
	@echo "==> train: the data or the training code changed, or no model yet"
	@mkdir -p $(MAKE_STATE)
	$(PY) -m src.train --tag-file $@

$(BENTO_STAMP): $(MODEL_STAMP) $(BENTO_INPUTS)
	@echo "==> build: a new model or a change in what the Bento holds"
	XGB_MODEL_TAG=$$(cat $(MODEL_STAMP)) $(VENV)/bin/bentoml build . --output tag > $@.out
	@sed -n 's/^__tag__://p' $@.out > $@.new && rm $@.out && test -s $@.new && mv $@.new $@
	@echo "==> built Bento $$(cat $@)"

# A recorded model or Bento that the store no longer has (another BENTOML_HOME, or deleted) is
# made again. BentoML's local store keeps each version in <home>/{models,bentos}/<name>/<version>/;
# looking there takes no time, where a `bentoml` call per tag takes about a second.
BENTOML_STORE = $${BENTOML_HOME:-$$HOME/bentoml}
forget-missing:
	@if [ -f $(MODEL_STAMP) ] && [ ! -f "$(BENTOML_STORE)/models/$$(tr : / < $(MODEL_STAMP))/model.yaml" ]; then \
	  echo "==> $$(cat $(MODEL_STAMP)) is not in the model store: training again"; rm -f $(MODEL_STAMP) $(BENTO_STAMP); fi
	@if [ -f $(BENTO_STAMP) ] && [ ! -f "$(BENTOML_STORE)/bentos/$$(tr : / < $(BENTO_STAMP))/bento.yaml" ]; then \
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

# A CSV scored by the current model: make batch-score INPUT=in.csv OUTPUT=out.csv on this machine
# (python -m src.batch_score --help), or INPUT=s3://bucket/in.csv OUTPUT=s3://bucket/out/ on the
# deployment's batch state machine (setting batch; python -m deploy batch-score --help).
batch-score: $(STAMP) $(CSV_LIB)
	@test -n "$(INPUT)" -a -n "$(OUTPUT)" || { echo "usage: make batch-score INPUT=in.csv OUTPUT=out.csv (or s3://... both)"; exit 2; }
	@case "$(INPUT) $(OUTPUT)" in s3://*" "s3://*) $(PY) -m deploy batch-score "$(INPUT)" "$(OUTPUT)" $(ARGS);; \
	  s3://*|*" "s3://*) echo "INPUT and OUTPUT are both s3:// (scored on AWS) or both local files (scored here);" \
	    "to score a local file on AWS, copy it to S3 first (aws s3 cp in.csv s3://bucket/in/)"; exit 2;; *) \
	  $(MAKE) --no-print-directory forget-missing $(MODEL_STAMP) && \
	  XGB_MODEL_TAG=$$(cat $(MODEL_STAMP)) $(PY) -m src.batch_score "$(INPUT)" "$(OUTPUT)";; esac

# How far a CSV's rows drifted from the current model's training data: make drift-report DATA=rows.csv
# (PSI per series; reports/drift.png and drift.json; python -m src.drift --help).
drift-report: $(STAMP) $(CSV_LIB)
	@test -n "$(DATA)" || { echo "usage: make drift-report DATA=rows.csv"; exit 2; }
	@$(MAKE) --no-print-directory forget-missing $(MODEL_STAMP)
	$(PY) -m src.drift --reference $$(cat $(MODEL_STAMP)) --data "$(DATA)"

# The current Bento's Lambda handler, in the image's environment, read-only, behind a local API
# Gateway (payload 2.0) on http://127.0.0.1:3001: python -m deploy.lambda_local --help.
lambda-local: ready $(LAMBDA_STAMP)
	$(PY) -m deploy.lambda_local --bento "$$(cat $(BENTO_STAMP))" --python $(LAMBDA_VENV)/bin/python --port 3001

# ---------------------------------------------------------------------------- checks
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
test-fast: $(STAMP) $(CSV_LIB)
	$(PY) -m pytest -m unit -q

# Every test: the lint, the unit tests (they fail first, and fast), then the rest. CI runs this (.ci/run).
test: lint test-fast setup image-tools browser-tools asl-tools
	$(PY) -m pytest -m "not unit"

# Benchmarks (bench/run.py): writes bench/results.md and bench/results.json.
bench: setup
	command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
	$(PY) -m bench.run

# ---------------------------------------------------------------------------- the cloud path
# Needs Docker with buildx, Terraform and AWS credentials: python -m deploy --help.
# deploy uses the newest Bento (make build makes one); rollback returns the live alias to the
# previous version (or VERSION=n); destroy removes everything deploy created. ARGS passes options
# on (`make deploy ARGS=--yes`; python -m deploy deploy --help lists them).
deploy: ready .venv-deploy/.installed
	$(PY) -m deploy deploy --bento "$$(cat $(BENTO_STAMP))" $(ARGS)

# The generated files: main.tf and bentoctl.tfvars from deployment_config.yaml and the operator
# (make deploy does this too), deploy/sample-event.json from src/config.py.
generate: $(STAMP) .venv-deploy/.installed
	$(PY) -m deploy generate
	$(PY) -m deploy.sample_event

rollback: $(STAMP)
	$(PY) -m deploy rollback $(if $(VERSION),--to $(VERSION)) $(ARGS)

destroy: $(STAMP)
	$(PY) -m deploy destroy $(ARGS)

clean:
	rm -rf $(ENVS) $(LAMBDA_VENV) $(MAKE_STATE) reports data/*.csv models/*.bentomodel
