"""`python -m deploy batch-score` (make batch-score INPUT=s3://...): run as a user runs it against
moto's server (S3 objects, the state machine made from main.tf's definition by Terraform core,
StartExecution, DescribeExecution, StopExecution), which records executions but runs none: it
neither reads the CSV nor starts a Map Run. Past that point, the Map Run's counts and the
ResultWriter's files come from botocore's Stubber (answers in Step Functions' documented shapes,
checked against botocore's model of the API) and moto's S3 in process."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from deploy import batch
from deploy.deployment import operator_config
from src import config
from tests.deploy.test_batch_machine import definition, the_task
from tests.deploy_harness import REGION, run_deploy, set_spec

BUCKET = "batch-data-bucket"
SPEC = {"batch": True, "batch_input": f"s3://{BUCKET}/in/", "batch_output": f"s3://{BUCKET}/out/"}
ROLE = "arn:aws:iam::123456789012:role/xgb-classifier-batch"


def csv_text(header: list[str], rows: int = 20) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows([[f"{(i + j) / 10}" for j in range(len(header))] for i in range(rows)])
    return out.getvalue().encode()


@pytest.fixture
def batch_workdir(workdir):
    path = workdir / "deployment_config.yaml"
    document = yaml.safe_load(path.read_text())
    document["spec"] = {**(document.get("spec") or {}), **SPEC, "region": REGION}
    path.write_text(yaml.safe_dump(document))
    return workdir


@pytest.fixture
def machine(aws):
    """The bucket with a good CSV under in/, and the state machine main.tf defines, in moto."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=csv_text(["id", *config.FEATURE_NAMES]))
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(name="xgb-classifier-batch", definition=json.dumps(definition()), roleArn=ROLE)[
        "stateMachineArn"
    ]
    return sfn, s3, arn


def batch_score(workdir, *args, wait=True):
    argv = [sys.executable, "-m", "deploy", "--dir", str(workdir), "batch-score", *map(str, args)]
    if not wait:
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def executions(sfn, arn) -> list[dict]:
    return sfn.list_executions(stateMachineArn=arn)["executions"]


@pytest.mark.parametrize(
    "source, said",
    [
        (f"s3://{BUCKET}/elsewhere/rows.csv", "is not under batch_input"),
        (f"s3://{BUCKET}/in/missing.csv", "cannot read s3://"),
        (f"s3://{BUCKET}/in/", "names a prefix, not a file"),
        (f"s3://{BUCKET}/in/no-features.csv", f"lacks the feature columns {config.FEATURE_NAMES[0]}"),
        ("in.csv", "is not an S3 URI"),
    ],
)
def test_a_job_that_cannot_work_is_refused_before_anything_starts(batch_workdir, machine, source, said):
    sfn, s3, arn = machine
    s3.put_object(Bucket=BUCKET, Key="in/no-features.csv", Body=csv_text(["id", "other"]))
    result = batch_score(batch_workdir, source, f"s3://{BUCKET}/out/", "--state-machine", arn)
    assert result.returncode == 1 and said in result.stderr, result.stdout + result.stderr
    assert "next: " in result.stderr
    assert executions(sfn, arn) == []


def test_with_batch_off_it_says_how_to_turn_it_on(workdir, machine):
    sfn, _, arn = machine
    result = batch_score(workdir, f"s3://{BUCKET}/in/rows.csv", f"s3://{BUCKET}/out/", "--state-machine", arn)
    assert result.returncode == 1 and "batch scoring is off" in result.stderr
    assert "spec.batch: true" in result.stderr and executions(sfn, arn) == []


def test_an_output_outside_batch_output_is_refused(batch_workdir, machine):
    sfn, _, arn = machine
    result = batch_score(
        batch_workdir, f"s3://{BUCKET}/in/rows.csv", f"s3://{BUCKET}/in/results/", "--state-machine", arn
    )
    assert result.returncode == 1 and "is not under batch_output" in result.stderr and "write" in result.stderr
    assert executions(sfn, arn) == []


def test_a_failed_execution_is_a_failure_that_names_the_execution(batch_workdir, machine, monkeypatch):
    """moto's server marks every new execution FAILED with SF_EXECUTION_HISTORY_TYPE=FAILURE."""
    sfn, _, arn = machine
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")
    result = batch_score(
        batch_workdir, f"s3://{BUCKET}/in/rows.csv", f"s3://{BUCKET}/out/job-1/", "--state-machine", arn
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the batch job failed" in result.stderr
    [execution] = executions(sfn, arn)
    assert execution["executionArn"] in result.stderr and execution["executionArn"] in result.stdout
    given = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert given == {
        "input": {"bucket": BUCKET, "key": "in/rows.csv"},
        "output": {"bucket": BUCKET, "prefix": "out/job-1"},
    }


def started_job(workdir, sfn, arn) -> tuple[subprocess.Popen, str]:
    """`batch-score` started in the background, polling every 0.2 s, and its execution's ARN once
    moto has it."""
    process = batch_score(
        workdir,
        f"s3://{BUCKET}/in/rows.csv",
        f"s3://{BUCKET}/out/",
        "--state-machine",
        arn,
        "--poll-seconds",
        "0.2",
        wait=False,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = executions(sfn, arn)
        if found:
            return process, found[0]["executionArn"]
        assert process.poll() is None, process.communicate()
        time.sleep(0.1)
    raise AssertionError("no execution started")


def test_a_job_stopped_elsewhere_ends_the_command_with_a_failure(batch_workdir, machine):
    sfn, _, arn = machine
    process, execution = started_job(batch_workdir, sfn, arn)
    sfn.stop_execution(executionArn=execution, error="Stopped", cause="by the test")
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1 and "the batch job aborted" in stderr, stdout + stderr


def test_interrupted_it_stops_its_execution(batch_workdir, machine):
    sfn, _, arn = machine
    process, execution = started_job(batch_workdir, sfn, arn)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stdout + stderr
    assert f"stopped {execution}" in stderr
    assert sfn.describe_execution(executionArn=execution)["status"] == "ABORTED"


def test_after_make_deploy_with_batch_on_the_job_runs_on_the_deployed_state_machine(
    aws, workdir, server, built_bento, tmp_path, monkeypatch
):
    """`make deploy` (the Terraform stand-in creates the state machine in moto from the definition
    Terraform core writes), then `make batch-score` with no ARN given: Terraform's output names
    the state machine, whose batches invoke the deployed live alias."""
    set_spec(workdir, **SPEC)
    deployed = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=csv_text(list(config.FEATURE_NAMES)))
    monkeypatch.setenv("SF_EXECUTION_HISTORY_TYPE", "FAILURE")  # moto ends the job at once
    scored = run_deploy(
        "batch-score", workdir, server.url, tmp_path, args=(f"s3://{BUCKET}/in/rows.csv", f"s3://{BUCKET}/out/")
    )
    sfn = boto3.client("stepfunctions", region_name=REGION)
    [machine] = sfn.list_state_machines()["stateMachines"]
    assert machine["name"] == "xgb-classifier-batch"
    assert f"    {machine['stateMachineArn']}" in scored.stdout, scored.stdout + scored.stderr
    [started] = executions(sfn, machine["stateMachineArn"])
    assert started["executionArn"] in scored.stdout and scored.returncode == 1
    document = json.loads(sfn.describe_state_machine(stateMachineArn=machine["stateMachineArn"])["definition"])
    functions = boto3.client("lambda", region_name=REGION)
    alias = functions.get_alias(FunctionName="xgb-classifier", Name=operator_config.ALIAS_NAME)
    assert the_task(document)["Parameters"]["FunctionName"] == alias["AliasArn"]


# ---------------------------------------------------------------------------- past moto: a Map Run

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:xgb-classifier-batch:score-1"
MAP_RUN = "arn:aws:states:us-east-1:123456789012:mapRun:xgb-classifier-batch/score-1:run-1"
STARTED = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:xgb-classifier-batch"


def counts(total, succeeded, running=0, failed=0) -> dict:
    pending = total - succeeded - running - failed
    return {
        "pending": pending,
        "running": running,
        "succeeded": succeeded,
        "failed": failed,
        "timedOut": 0,
        "aborted": 0,
        "total": total,
        "resultsWritten": succeeded + failed,
    }


def map_run(rows_done, rows_failed=0, status="RUNNING") -> dict:
    return {
        "mapRunArn": MAP_RUN,
        "executionArn": EXECUTION,
        "status": status,
        "startDate": STARTED,
        "maxConcurrency": 100,
        "toleratedFailurePercentage": 0.0,
        "toleratedFailureCount": 0,
        "itemCounts": counts(1000, rows_done, failed=rows_failed),
        "executionCounts": counts(
            5, rows_done // 200, running=1 if status == "RUNNING" else 0, failed=rows_failed // 200
        ),
    }


def execution(status, output=None) -> dict:
    answer = {
        "executionArn": EXECUTION,
        "stateMachineArn": MACHINE,
        "status": status,
        "startDate": STARTED,
    }
    if output is not None:
        answer["output"] = json.dumps(output)
    if status == "FAILED":
        answer.update(
            error="States.ExceedToleratedFailureThreshold",
            cause="The specified tolerated failure threshold was exceeded",
        )
    return answer


def stubbed_run(final_status: str, output: dict, failed_rows: int = 0, started: bool = False):
    """Step Functions' answers while a job runs and ends; with ``started``, its start's first."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sfn)
    if started:
        stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": STARTED})
    by_execution = {"executionArn": EXECUTION}
    stub.add_response("describe_execution", execution("RUNNING"), by_execution)
    stub.add_response("list_map_runs", {"mapRuns": []}, by_execution)
    stub.add_response("describe_execution", execution("RUNNING"), by_execution)
    stub.add_response(
        "list_map_runs",
        {
            "mapRuns": [
                {
                    "executionArn": EXECUTION,
                    "mapRunArn": MAP_RUN,
                    "stateMachineArn": f"{MACHINE}/score-1",
                    "startDate": STARTED,
                }
            ]
        },
        by_execution,
    )
    stub.add_response("describe_map_run", map_run(400), {"mapRunArn": MAP_RUN})
    stub.add_response("describe_execution", execution(final_status, output), by_execution)
    stub.add_response(
        "describe_map_run", map_run(1000 - failed_rows, failed_rows, status=final_status), {"mapRunArn": MAP_RUN}
    )
    return sfn, stub


def put_results(s3, failed_records: list[dict]) -> dict:
    """The ResultWriter's files as Step Functions documents them: a manifest naming the result files."""
    s3.create_bucket(Bucket=BUCKET)
    prefix = "out/job/run-1"
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/SUCCEEDED_0.json", Body=b"[]")
    files = {"SUCCEEDED": [{"Key": f"{prefix}/SUCCEEDED_0.json", "Size": 2}], "FAILED": [], "PENDING": []}
    if failed_records:
        s3.put_object(Bucket=BUCKET, Key=f"{prefix}/FAILED_0.json", Body=json.dumps(failed_records).encode())
        files["FAILED"] = [{"Key": f"{prefix}/FAILED_0.json", "Size": 1}]
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": MAP_RUN, "ResultFiles": files}
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/manifest.json", Body=json.dumps(manifest).encode())
    return {"MapRunArn": MAP_RUN, "ResultWriterDetails": {"Bucket": BUCKET, "Key": f"{prefix}/manifest.json"}}


@pytest.fixture
def s3_in_process(monkeypatch):
    from moto import mock_aws

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


@pytest.mark.unit
def test_progress_comes_from_the_map_runs_counts_and_success_names_the_results(s3_in_process):
    output = put_results(s3_in_process, [])
    sfn, stub = stubbed_run("SUCCEEDED", output)
    shown = []
    with stub:
        finished = batch.follow(sfn, EXECUTION, poll_s=0, show=shown.append, sleep=lambda _: None)
        stub.assert_no_pending_responses()
    assert shown[0].startswith("400 of 1,000 rows answered") and "1 batches running" in shown[0]
    assert shown[-1].startswith("1,000 of 1,000 rows answered")
    status, lines = batch.report(s3_in_process, finished, seconds=10.0)
    assert status == 0
    assert lines[0] == f"answered 1,000 rows in 10.0 s; results: s3://{BUCKET}/out/job/run-1/manifest.json"


@pytest.mark.unit
def test_a_failed_batch_is_named_by_its_rows_and_its_error(s3_in_process):
    items = [{"index": i, "row": {}} for i in range(800, 1000)]
    record = {
        "ExecutionArn": f"{EXECUTION}:child-5",
        "Input": json.dumps({"Items": items}),
        "InputDetails": {"Included": True},
        "Name": "child-5",
        "Status": "FAILED",
        "Error": "Lambda.Unknown",
        "Cause": "The function timed out after 10 s",
    }
    output = put_results(s3_in_process, [record])
    sfn, stub = stubbed_run("FAILED", output, failed_rows=200)
    with stub:
        finished = batch.follow(sfn, EXECUTION, poll_s=0, show=lambda _: None, sleep=lambda _: None)
    status, lines = batch.report(s3_in_process, finished, seconds=3.0)
    text = "\n".join(lines)
    assert status == 1
    assert lines[0] == "the batch job failed after 3.0 s (800 rows answered)"
    assert "States.ExceedToleratedFailureThreshold" in text
    assert "1 batches failed:\n  rows 800-999: Lambda.Unknown The function timed out after 10 s" in text
    assert f"results of the other batches: s3://{BUCKET}/out/job/run-1/manifest.json" in text
    assert EXECUTION in text


@pytest.mark.unit
def test_every_stubbed_answer_is_in_step_functions_documented_shape():
    """Stubber refuses answers that break botocore's model of the API (a missing required key, a
    wrong type): the shapes above are Step Functions' own."""
    sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sfn)
    broken = map_run(10)
    del broken["itemCounts"]["resultsWritten"]
    with pytest.raises(Exception, match="resultsWritten"):
        stub.add_response("describe_map_run", broken, {"mapRunArn": MAP_RUN})


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.unit
@pytest.mark.parametrize(
    "stream, expected", [(io.StringIO(), "a long line\nshort\n"), (Terminal(), "\ra long line\rshort      \n")]
)
def test_progress_is_rewritten_in_place_on_a_terminal_and_kept_line_by_line_elsewhere(stream, expected):
    show = batch.progress_display(stream)
    show("a long line")
    show("short")
    show.done()
    assert stream.getvalue() == expected


@pytest.mark.unit
def test_losing_track_of_a_started_job_says_it_may_still_run(s3_in_process):
    from deploy.steps import StepFailed

    s3_in_process.create_bucket(Bucket=BUCKET)
    s3_in_process.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=csv_text(list(config.FEATURE_NAMES)))
    sfn = boto3.client("stepfunctions", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(sfn)
    stub.add_response("start_execution", {"executionArn": EXECUTION, "startDate": STARTED})
    stub.add_client_error("describe_execution", "ThrottlingException", "Rate exceeded")
    source, results = batch.S3Location(BUCKET, "in/rows.csv"), batch.S3Location(BUCKET, "out/")
    with stub, pytest.raises(StepFailed, match=f"lost track of {EXECUTION}") as failure:
        batch.score(source, results, "us-east-1", MACHINE, poll_s=0, sfn=sfn, s3=s3_in_process, show=lambda _: None)
    assert "may still be running" in failure.value.hint


@pytest.mark.parametrize(
    "given, status, said",
    [
        (("INPUT=in.csv", f"OUTPUT=s3://{BUCKET}/out/"), 2, "copy it to S3 first"),
        ((f"INPUT=s3://{BUCKET}/in/rows.csv", "OUTPUT=out.csv"), 2, "both s3://"),
        (
            (f"INPUT=s3://{BUCKET}/in/rows.csv", f"OUTPUT=s3://{BUCKET}/out/"),
            2,
            "'batch settings': batch scoring is off",
        ),
    ],
)
def test_make_batch_score_sends_s3_paths_to_aws_and_refuses_a_mix(given, status, said):
    """`make batch-score` in the repository (batch off in its deployment_config.yaml): two S3 URIs
    go to `python -m deploy batch-score`, a local file and an S3 URI are refused at once (make
    exits 2 whenever its recipe fails)."""
    from src.config import PROJECT_ROOT

    result = subprocess.run(
        ["make", "--no-print-directory", "batch-score", *given],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == status, result.stdout + result.stderr
    assert said in result.stdout + result.stderr


@pytest.mark.unit
def test_results_that_cannot_be_read_are_a_named_failure_not_a_traceback(s3_in_process):
    from deploy.steps import StepFailed

    s3_in_process.create_bucket(Bucket=BUCKET)
    s3_in_process.put_object(Bucket=BUCKET, Key="in/rows.csv", Body=csv_text(list(config.FEATURE_NAMES)))
    gone = {"ResultWriterDetails": {"Bucket": BUCKET, "Key": "out/gone/manifest.json"}}
    sfn, stub = stubbed_run("SUCCEEDED", gone, started=True)
    source, results = batch.S3Location(BUCKET, "in/rows.csv"), batch.S3Location(BUCKET, "out/")
    with stub, pytest.raises(StepFailed, match="its results' manifest could not be read") as failure:
        batch.score(source, results, "us-east-1", MACHINE, poll_s=0, sfn=sfn, s3=s3_in_process, show=lambda _: None)
    assert EXECUTION in str(failure.value) and "SUCCEEDED" in str(failure.value)
