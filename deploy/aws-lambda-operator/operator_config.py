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

OPERATOR_SCHEMA = {
    "region": {
        "type": "string",
        "required": True,
        "default": "us-east-1",
        "regex": r"[a-z]{2}(-[a-z]+)+-\d",
        "help_message": "AWS region to deploy to, e.g. us-east-1",
    },
    "timeout": {
        "type": "integer",
        "coerce": int,
        "default": 10,
        "min": 1,
        "max": 29,
        "help_message": "Lambda timeout in seconds, 1-29: API Gateway HTTP APIs end every "
        "integration at 30 s, so a longer Lambda timeout could never be used",
    },
    "memory_size": {
        "type": "integer",
        "coerce": int,
        "default": 1024,
        "min": 128,
        "max": 10240,
        "help_message": "Lambda memory in MB, 128-10240; CPU share grows with memory",
    },
    "architecture": {
        "type": "string",
        "default": "x86_64",
        "allowed": ["x86_64", "arm64"],
        "help_message": "x86_64, or arm64 (Graviton: cheaper per GB-second; build the image for linux/arm64)",
    },
    "reserved_concurrency": {
        "type": "integer",
        "coerce": int,
        "default": -1,
        "min": -1,
        "help_message": "concurrent executions reserved for (and capping) the function; -1 leaves it unreserved",
    },
    "log_retention_days": {
        "type": "integer",
        "coerce": int,
        "default": 30,
        "allowed": LOG_RETENTION_DAYS,
        "help_message": "days CloudWatch keeps the function's and the API's logs",
    },
    "throttling_rate_limit": {
        "type": "number",
        "coerce": float,
        "default": 50.0,
        "min": 0.0,
        "help_message": "steady-state requests per second the API lets through",
    },
    "throttling_burst_limit": {
        "type": "integer",
        "coerce": int,
        "default": 100,
        "min": 0,
        "help_message": "requests the API lets through in a burst",
    },
    "auth": {
        "type": "string",
        "default": "none",
        "allowed": ["none", "iam", "jwt"],
        "help_message": "endpoint authentication: none (public), iam (SigV4-signed requests), "
        "or jwt (bearer tokens from jwt_issuer for jwt_audience)",
    },
    "jwt_issuer": {
        "type": "string",
        "default": "",
        "help_message": "JWT issuer URL, required when auth is jwt",
    },
    "jwt_audience": {
        "type": "list",
        "schema": {"type": "string"},
        "default": [],
        "help_message": "accepted JWT audiences, required when auth is jwt",
    },
    "cors_allow_origins": {
        "type": "list",
        "schema": {"type": "string"},
        "default": [],
        "help_message": "origins allowed to call the API from a browser; empty turns CORS off",
    },
    "endpoint": {
        "type": "string",
        "default": "http_api",
        "allowed": ["http_api", "function_url"],
        "help_message": "http_api (API Gateway: routes, throttling, JWT) or function_url (a Lambda "
        "function URL: no per-request API charge, no API-level throttling)",
    },
    "canary_percent": {
        "type": "integer",
        "coerce": int,
        "default": 0,
        "min": 0,
        "max": 50,
        "help_message": "share of traffic a new version gets first while `make deploy` watches the "
        "alarms; 0 shifts all traffic at once",
    },
    "canary_minutes": {
        "type": "integer",
        "coerce": int,
        "default": 10,
        "min": 1,
        "max": 60,
        "help_message": "minutes `make deploy` watches the alarms before promoting a canary",
    },
    "alarm_email": {
        "type": "string",
        "default": "",
        "regex": r"(|[^@\s]+@[^@\s]+\.[^@\s]+)",
        "help_message": "address that gets alarm emails through an SNS topic; empty: no topic",
    },
    "tracing": {
        "type": "boolean",
        "default": False,
        "help_message": "send X-Ray traces (billed per trace)",
    },
    # Set by `bentoctl build` once the image is pushed; absent before the first build.
    "image_tag": {"type": "string", "required": False},
}
