"""main.tf's batch state machine and its role, as Terraform core writes them from main.tf (through
`terraform console`): the Distributed Map reads the CSV, batches within Step Functions' limits,
invokes exactly the live alias, and the role reaches what the definition touches and nothing
more. The definition's validity by a real ASL validator: tests/deploy/test_batch_asl.py."""

from __future__ import annotations

import fnmatch
import json

import pytest

from deploy.deployment import operator_config, terraform_config
from src import batch_event, config
from tests.batch_items import csv_items, wrapped
from tests.terraform_eval import evaluate, expression, variable_accepts

pytestmark = pytest.mark.unit

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ALIAS_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:svc:{operator_config.ALIAS_NAME}"
KNOWN = {
    "data.aws_caller_identity.current.account_id": ACCOUNT,
    "data.aws_partition.current.partition": "aws",
    "aws_lambda_alias.live.arn": ALIAS_ARN,
}
SETTINGS = dict(
    deployment_name="svc",
    region=REGION,
    batch=True,
    batch_input="s3://data-bucket/scoring/in/",
    batch_output="s3://results-bucket/scoring/out/",
)
STEP_FUNCTIONS_PAYLOAD_LIMIT = 256 * 1024  # a state's input or output, a child workflow's input


def definition(**settings) -> dict:
    text = expression("resource", "aws_sfn_state_machine", "batch", "definition")
    return json.loads(evaluate(text, known=KNOWN, **{**SETTINGS, **settings}))


def policy(**settings) -> dict:
    text = expression("resource", "aws_iam_role_policy", "batch", "policy")
    return json.loads(evaluate(text, known=KNOWN, **{**SETTINGS, **settings}))


def the_map(document: dict) -> dict:
    [state] = document["States"].values()
    return state


def the_task(document: dict) -> dict:
    [task] = the_map(document)["ItemProcessor"]["States"].values()
    return task


def test_the_map_reads_the_csv_with_its_header_and_gives_each_row_its_index():
    state = the_map(definition())
    assert state["Type"] == "Map" and state["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    reader = state["ItemReader"]
    assert reader["Resource"] == "arn:aws:states:::s3:getObject"
    assert reader["ReaderConfig"] == {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"}
    # The selector's keys are the ones the handler unwraps (src/batch_event.py).
    selector = state["ItemSelector"]
    assert sorted(key.removesuffix(".$") for key in selector) == sorted(batch_event.ROW_KEYS)
    assert selector == {"index.$": "$$.Map.Item.Index", "row.$": "$$.Map.Item.Value"}


def test_the_settings_size_the_batches_and_the_concurrency():
    state = the_map(definition(batch_rows=250, batch_concurrency=40))
    assert state["ItemBatcher"] == {
        "MaxItemsPerBatch": 250,
        "MaxInputBytesPerBatch": operator_config.BATCH_MAX_INPUT_BYTES,
    }
    assert state["MaxConcurrency"] == 40
    assert operator_config.BATCH_MAX_INPUT_BYTES < STEP_FUNCTIONS_PAYLOAD_LIMIT


def test_each_batch_invokes_the_live_alias_and_only_lambdas_own_failures_are_retried():
    task = the_task(definition(timeout=12))
    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"] == {"FunctionName": ALIAS_ARN, "Payload.$": "$"}
    assert task["OutputPath"] == "$.Payload"
    assert task["TimeoutSeconds"] > 12  # the function's own timeout ends it first, with its error
    [retry] = task["Retry"]
    assert all(error.startswith("Lambda.") for error in retry["ErrorEquals"])
    assert batch_event.BatchEventError.__name__ not in retry["ErrorEquals"]


def test_the_execution_input_the_command_writes_is_what_the_definition_reads():
    from deploy.batch import S3Location, execution_input

    state = the_map(definition())
    given = execution_input(S3Location("data-bucket", "scoring/in/a.csv"), S3Location("results-bucket", "scoring/out/"))
    for parameters in (state["ItemReader"]["Parameters"], state["ResultWriter"]["Parameters"]):
        for path in parameters.values():
            section, key = path.removeprefix("$.").split(".")
            assert key in given[section], (path, given)


def test_a_full_batch_of_the_largest_answers_fits_step_functions_output_limit():
    """The handler's answer for batch_rows rows (the most the setting allows), each row the
    longest answer it can be (an error with the longest value it quotes, or a score), under a
    large index: within the 256 KiB a task's output may take."""
    most = operator_config.OPERATOR_SCHEMA["batch_rows"]["max"]
    longest_text = "x" * 200
    items = [
        {
            "index": 10**9 + i,
            "row": {**{n: "1.5" for n in config.FEATURE_NAMES}, config.FEATURE_NAMES[-1]: longest_text},
        }
        for i in range(most)
    ]
    refused = batch_event.read({"Items": items})
    assert len(refused.reasons) == most
    answer = batch_event.answer(refused, [], model="xgb_model:" + "v" * 16)
    scored = batch_event.read(
        {"Items": [{"index": 10**9 + i, "row": {n: "1.5" for n in config.FEATURE_NAMES}} for i in range(most)]}
    )
    answer_scored = batch_event.answer(scored, [0.123456789012345678] * most, model="xgb_model:" + "v" * 16)
    for document in (answer, answer_scored):
        assert len(json.dumps(document).encode()) < STEP_FUNCTIONS_PAYLOAD_LIMIT


def test_a_default_batch_of_the_projects_rows_is_cut_by_rows_not_bytes(tmp_path):
    """Rows of the generator's file (src/generate_data.py) as an ItemReader reads them, wrapped as
    the ItemSelector wraps them: the default batch_rows of them fit the batcher's byte limit."""
    from src.generate_data import write_dataset

    rows = operator_config.OPERATOR_SCHEMA["batch_rows"]["default"]
    items = csv_items(write_dataset(tmp_path / "data.csv", n_rows=rows))
    batch = {"Items": wrapped(items, first=9_999_000)}
    assert len(items) == rows
    assert len(json.dumps(batch, separators=(",", ":")).encode()) <= operator_config.BATCH_MAX_INPUT_BYTES


def resources_of(document: dict, action: str) -> list[str]:
    return [
        resource
        for statement in document["Statement"]
        if action in statement["Action"]
        for resource in statement["Resource"]
    ]


def allows(document: dict, action: str, arn: str) -> bool:
    return any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources_of(document, action))


def test_the_role_reaches_the_input_and_output_prefixes_the_alias_and_its_own_children_only():
    document = policy()
    assert allows(document, "s3:GetObject", "arn:aws:s3:::data-bucket/scoring/in/2026/a.csv")
    assert not allows(document, "s3:GetObject", "arn:aws:s3:::data-bucket/other/a.csv")
    assert not allows(document, "s3:PutObject", "arn:aws:s3:::data-bucket/scoring/in/a.csv")
    assert allows(document, "s3:PutObject", "arn:aws:s3:::results-bucket/scoring/out/run/manifest.json")
    assert not allows(document, "s3:PutObject", "arn:aws:s3:::results-bucket/elsewhere/x")
    assert resources_of(document, "lambda:InvokeFunction") == [the_task(definition())["Parameters"]["FunctionName"]]
    machine = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:svc-batch"
    assert resources_of(document, "states:StartExecution") == [machine]
    everywhere = {statement["Sid"] for statement in document["Statement"] if "*" in statement["Resource"]}
    assert everywhere == {"DeliverLogs"}, "only log delivery, which takes no resource, may name *"
    with_traces = policy(tracing=True)
    assert {s["Sid"] for s in with_traces["Statement"]} - {s["Sid"] for s in document["Statement"]} == {"SendTraces"}


def test_the_state_machine_is_named_as_the_deployer_policy_and_the_role_expect():
    assert expression("resource", "aws_sfn_state_machine", "batch", "name") == "local.batch_name"
    assert evaluate("local.batch_name", known=KNOWN, **SETTINGS) == "svc-batch"
    assert evaluate("local.batch_machine_arn", known=KNOWN, **SETTINGS).endswith(":stateMachine:svc-batch")


@pytest.mark.parametrize(
    "name, value, accepted",
    [
        ("batch_input", "s3://data-bucket/scoring/in/", True),
        ("batch_input", "s3://data-bucket", True),
        ("batch_input", "", True),
        ("batch_input", "data-bucket/scoring/", False),
        ("batch_input", "s3://Data_Bucket/in/", False),
        ("batch_output", "s3://results-bucket/out/*", False),
        ("batch_rows", 0, False),
        ("batch_rows", operator_config.OPERATOR_SCHEMA["batch_rows"]["max"] + 1, False),
        ("batch_concurrency", 10_001, False),
        ("batch_concurrency", 10_000, True),
    ],
)
def test_terraform_refuses_batch_values_aws_would(name, value, accepted):
    assert variable_accepts(name, value) is accepted


def test_batch_without_its_prefixes_is_refused_before_terraform():
    with pytest.raises(terraform_config.SpecError, match="batch_input and batch_output"):
        terraform_config.check_spec("svc", {"batch": True, "batch_input": "s3://data-bucket/in/"})
    terraform_config.check_spec("svc", {"batch": False})


def test_with_batch_off_nothing_reads_the_empty_prefixes():
    assert evaluate("local.batch_input", known=KNOWN, **{**SETTINGS, "batch": False, "batch_input": ""}) == ["", ""]
