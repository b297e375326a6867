"""bentoctl reads this file to learn the operator's name, its spec schema and its templates.

Install with `bentoctl operator install ./deploy/aws-lambda-operator`. The schema is cerberus;
bentoctl validates `spec:` in deployment_config.yaml against it (and drops `help_message`).
Every limit here mirrors a limit of AWS or a validation in main.tf, so a bad value is caught at
`bentoctl generate`, before Terraform or AWS sees it.
"""

OPERATOR_NAME = "aws-lambda"
OPERATOR_MODULE = "aws_lambda_operator"
OPERATOR_DEFAULT_TEMPLATE = "terraform"
OPERATOR_AVAILABLE_TEMPLATES = ["terraform"]

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = [
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
]

# Facts main.tf and `python -m deploy` share, rendered into main.tf's locals (terraform_config.py).
# The Lambda alias clients invoke; `make deploy` and `make rollback` point it at a version.
ALIAS_NAME = "live"
# The service's own request timeout (XGB_REQUEST_TIMEOUT_S) ends a request this long before Lambda
# stops the function, so the client gets the service's 504 and message rather than API Gateway's
# bare error; it never falls below half the function's timeout.
REQUEST_TIMEOUT_MARGIN_S = 1


def request_timeout_s(function_timeout_s: float) -> float:
    """The service's request timeout for a function timeout, both in seconds."""
    return max(function_timeout_s - REQUEST_TIMEOUT_MARGIN_S, function_timeout_s / 2)


# The same rule as the Terraform expression main.tf evaluates on its timeout variable.
REQUEST_TIMEOUT_HCL = f"max(var.timeout - {REQUEST_TIMEOUT_MARGIN_S}, var.timeout / 2)"

# Drift alarms: the population stability index over a window of bin counts, computed only once the
# window holds enough rows for the index to be more than sampling noise (about bins / rows).
DRIFT_WINDOW_S = 3600
DRIFT_MIN_ROWS = 500
# During a canary: a window that fits in the bake time, each version needing this many rows.
CANARY_DRIFT_WINDOW_S = 300
CANARY_DRIFT_MIN_ROWS = 200
# Batch scoring: Step Functions limits a child workflow's input (a batch) to 256 KiB; the batcher
# stops a batch short of that, leaving room for what the Map state adds around the items.
BATCH_MAX_INPUT_BYTES = 240 * 1024
S3_PREFIX_REGEX = r"(|s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^*?\s]*)?)"


OPERATOR_SCHEMA = {
    "region": {
        "type": "string",
        "required": True,
        "default": "us-east-1",
        "regex": r"[a-z]{2}(-[a-z]+)+-\d",
        "help_message": "AWS region to deploy to, e.g. us-east-1.",
    },
    "timeout": {
        "type": "integer",
        "coerce": int,
        "default": 10,
        "min": 1,
        "max": 29,
        "help_message": (
            "Lambda timeout in seconds, 1-29: an API Gateway HTTP API ends every integration at 30 s, so "
            "the function must finish (or fail with its own message) before that."
        ),
    },
    "memory_size": {
        "type": "integer",
        "coerce": int,
        "default": 1024,
        "min": 128,
        "max": 10240,
        "help_message": (
            "Lambda memory in MB, 128-10,240. CPU is allotted in proportion, so more memory also means a "
            "faster cold start."
        ),
    },
    "architecture": {
        "type": "string",
        "default": "x86_64",
        "allowed": ["x86_64", "arm64"],
        "help_message": (
            "Instruction set of the function and its image: x86_64, or arm64 (Graviton: cheaper per GB-"
            "second; the image is built for linux/arm64)."
        ),
    },
    "reserved_concurrency": {
        "type": "integer",
        "coerce": int,
        "default": -1,
        "min": -1,
        "forbidden": [0],
        "help_message": (
            "Concurrent executions reserved for the function, which also caps it; -1 leaves it unreserved "
            "(0 would throttle every request). AWS keeps 100 of the account's concurrency unreserved."
        ),
    },
    "log_retention_days": {
        "type": "integer",
        "coerce": int,
        "default": 30,
        "allowed": LOG_RETENTION_DAYS,
        "help_message": "Days CloudWatch keeps the function's and the API's logs (a period CloudWatch Logs accepts).",
    },
    "throttling_rate_limit": {
        "type": "number",
        "coerce": float,
        "default": 50.0,
        "min": 0.0,
        "help_message": "Steady-state requests per second the API accepts before answering 429.",
    },
    "throttling_burst_limit": {
        "type": "integer",
        "coerce": int,
        "default": 100,
        "min": 0,
        "help_message": "Requests the API accepts in a burst before answering 429.",
    },
    "auth": {
        "type": "string",
        "default": "none",
        "allowed": ["none", "iam", "jwt"],
        "help_message": (
            "Authentication for the API's routes: none (public), iam (SigV4-signed requests from "
            "principals allowed execute-api:Invoke), or jwt (bearer tokens from jwt_issuer for "
            "jwt_audience, checked by a JWT authorizer)."
        ),
    },
    "jwt_issuer": {
        "type": "string",
        "default": "",
        "help_message": (
            "Issuer URL of accepted JWTs, required when auth is jwt, e.g. https://cognito-idp.us-"
            "east-1.amazonaws.com/<pool id>."
        ),
    },
    "jwt_audience": {
        "type": "list",
        "schema": {"type": "string"},
        "default": [],
        "help_message": "Audiences of accepted JWTs, at least one when auth is jwt.",
    },
    "cors_allow_origins": {
        "type": "list",
        "schema": {"type": "string"},
        "default": [],
        "help_message": "Origins allowed to call the API from a browser; empty: no CORS headers.",
    },
    "endpoint": {
        "type": "string",
        "default": "http_api",
        "allowed": ["http_api", "function_url"],
        "help_message": (
            "How clients reach the function: http_api (API Gateway HTTP API: routes, throttling, JWT) or "
            "function_url (a Lambda function URL: no per-request API charge, no API-level throttling)."
        ),
    },
    "canary_percent": {
        "type": "integer",
        "coerce": int,
        "default": 0,
        "min": 0,
        "max": 50,
        "help_message": (
            "Share of traffic (percent) a newly deployed version gets first while `make deploy` watches "
            "the alarms; 0 shifts all traffic at once."
        ),
    },
    "canary_minutes": {
        "type": "integer",
        "coerce": int,
        "default": 10,
        "min": 1,
        "max": 60,
        "help_message": "How long `make deploy` watches the alarms before it promotes a canary.",
    },
    "alarm_email": {
        "type": "string",
        "default": "",
        "regex": r"(|[^@\s]+@[^@\s]+\.[^@\s]+)",
        "help_message": (
            "Address that gets an email when an alarm fires or clears (through an SNS topic); empty: no "
            "topic, alarms only show in CloudWatch."
        ),
    },
    "drift_metrics": {
        "type": "integer",
        "coerce": int,
        "default": 2,
        "min": 0,
        "help_message": (
            "How many series get drift metrics and alarms: the predicted probability first, then the features "
            "from the most important down (0: none). Each costs its bins as CloudWatch custom metrics (5 for "
            "the probability, 10 per feature, about $0.30 a month each) and its two alarms' metrics ($0.10 each): "
            "2, the probability and the most important feature, is about $7.50 a month (docs/operations.md)."
        ),
    },
    "drift_psi_warn": {
        "type": "number",
        "coerce": float,
        "default": 0.1,
        "min": 0.01,
        "help_message": "Population stability index at which a drift alarm warns: the inputs or answers are moving.",
    },
    "drift_psi_act": {
        "type": "number",
        "coerce": float,
        "default": 0.25,
        "min": 0.01,
        "help_message": (
            "Population stability index at which a drift alarm says to act (retrain, or find what changed "
            "upstream), and at which a canary whose answers or inputs moved this far is rolled back."
        ),
    },
    "tracing": {
        "type": "boolean",
        "default": False,
        "help_message": "Send X-Ray traces of each invocation (billed per trace).",
    },
    "public_url_uncapped": {
        "type": "boolean",
        "default": False,
        "help_message": (
            "With endpoint function_url and auth none, allow the public URL without a reserved_concurrency "
            "cap (then only the account's concurrency bounds the cost)."
        ),
    },
    "keep_versions": {
        "type": "integer",
        "coerce": int,
        "default": 10,
        "min": 1,
        "max": 1000,
        "help_message": (
            "Published versions (and their deployed- images) `make deploy` keeps, newest first; the versions "
            "the alias serves or a rollback returns to are always kept."
        ),
    },
    "state_bucket": {
        "type": "string",
        "default": "",
        "regex": r"(|[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])",
        "help_message": (
            "S3 bucket for Terraform's state (key <name>/terraform.tfstate, locked with a lock file); empty: "
            "local state in terraform.tfstate."
        ),
    },
    "base_image": {
        "type": "string",
        "default": "",
        "regex": r"(|[a-z0-9][a-z0-9._/:-]*(@sha256:[0-9a-f]{64})?)",
        "help_message": (
            "Base image `make deploy` builds the Lambda image from (the Dockerfile's BASE_IMAGE), e.g. ECR "
            "Public's copy public.ecr.aws/docker/library/python:3.11-slim-bookworm, optionally pinned "
            "with @sha256:<digest>; empty: the Dockerfile's default, python:3.11-slim-bookworm."
        ),
    },
    "snapstart": {
        "type": "boolean",
        "default": False,
        "help_message": (
            "Lambda SnapStart on the published versions the alias serves: a new environment is restored "
            "from a snapshot taken after the init instead of running it. Off by default: for Python, AWS "
            "bills the snapshot's cache per GB-second while a version is active and each restore per GB, "
            "and each publish waits for the snapshot (docs/deploy.md#snapstart)."
        ),
    },
    "batch": {
        "type": "boolean",
        "default": False,
        "help_message": (
            "A Step Functions state machine that scores a CSV in S3 on the function, its rows fanned out in "
            "batches over concurrent invocations of the live alias (a Distributed Map): `make batch-score "
            "INPUT=s3://... OUTPUT=s3://...`. Needs batch_input and batch_output (docs/batch.md)."
        ),
    },
    "batch_input": {
        "type": "string",
        "default": "",
        "regex": S3_PREFIX_REGEX,
        "help_message": (
            "S3 prefix of the CSV files the batch state machine may read, e.g. s3://my-bucket/scoring/in/ "
            "(its role may read nothing else); required with batch."
        ),
    },
    "batch_output": {
        "type": "string",
        "default": "",
        "regex": S3_PREFIX_REGEX,
        "help_message": (
            "S3 prefix the batch state machine writes its results under, e.g. s3://my-bucket/scoring/out/ "
            "(its role may write nothing else); required with batch."
        ),
    },
    "batch_concurrency": {
        "type": "integer",
        "coerce": int,
        "default": 100,
        "min": 1,
        "max": 10000,
        "help_message": (
            "Batches scored at once (the Distributed Map's MaxConcurrency, at most 10,000): each is one "
            "invocation, so this also takes that much of the function's concurrency while a job runs."
        ),
    },
    "batch_rows": {
        "type": "integer",
        "coerce": int,
        "default": 800,
        "min": 1,
        "max": 2000,
        "help_message": (
            "Most rows per batch (one invocation), at most 2,000 so that a batch's answers fit Step Functions' "
            "256 KiB limit on a state's output; a batch also stops at 240 KiB of rows, under the same limit "
            "on a child workflow's input (docs/batch.md: measured cost per batch)."
        ),
    },
    # Set by `bentoctl build` once the image is pushed; absent before the first build.
    "image_tag": {"type": "string", "required": False},
}
