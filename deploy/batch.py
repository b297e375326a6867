"""`python -m deploy batch-score s3://.../in.csv s3://.../out/`: a CSV in S3 scored on AWS Lambda.

Starts an execution of the deployment's batch state machine (main.tf, setting ``batch``), which
reads the CSV from S3, fans its rows out in batches over the live alias and writes the answers
under the output prefix; shows its progress from the Map Run's counts; and at the end says where
the results are, or names the batches that failed and why. Before anything runs, the input must
lie under ``batch_input`` and the output under ``batch_output`` (the state machine's role reaches
nothing else) and the file's header must have every feature column. Interrupted, it stops the
execution. Exit status: 0 when every batch was scored (rows the handler refused included: they
are in the results with their reason), 1 when the job or a batch failed, 130 when interrupted.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from deploy.steps import StepFailed
from src import config
from src.batch_score import Layout

S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(.*))?$")
HEADER_BYTES = 64 * 1024  # the most of the file read to find its header
FINISHED = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
SHOWN_FAILURES = 5


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str  # a key, or a prefix ("" for the whole bucket)

    @classmethod
    def parse(cls, uri: str, what: str) -> S3Location:
        match = S3_URI.match(uri or "")
        if not match:
            raise StepFailed(f"{what} {uri!r} is not an S3 URI", "give it as s3://bucket/key")
        return cls(match.group(1), match.group(2) or "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def within(self, prefix: S3Location) -> bool:
        return self.bucket == prefix.bucket and self.key.startswith(prefix.key)


def execution_input(source: S3Location, results: S3Location) -> dict:
    """What the state machine reads: where the CSV is and where its results go."""
    return {
        "input": {"bucket": source.bucket, "key": source.key},
        "output": {"bucket": results.bucket, "prefix": results.key.rstrip("/")},
    }


def check_locations(source: S3Location, results: S3Location, spec: dict) -> None:
    """The input under batch_input and the output under batch_output, or a StepFailed saying so."""
    if not spec.get("batch"):
        raise StepFailed(
            "batch scoring is off in deployment_config.yaml",
            "set spec.batch: true with batch_input and batch_output, then `make deploy`",
        )
    for location, setting in ((source, "batch_input"), (results, "batch_output")):
        prefix = S3Location.parse(spec[setting], setting)
        if not location.within(prefix):
            raise StepFailed(
                f"{location} is not under {setting} ({prefix}), the only prefix the state machine's role may "
                + ("read" if setting == "batch_input" else "write"),
                f"put it under {prefix}, or change {setting} and `make deploy`",
            )
    if not source.key or source.key.endswith("/"):
        raise StepFailed(f"the input {source} names a prefix, not a file", "give the CSV file's key")


def check_header(s3, source: S3Location) -> list[str]:
    """The input's header, read from its first bytes; a missing file or feature column fails here,
    before any invocation."""
    try:
        head = s3.get_object(Bucket=source.bucket, Key=source.key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"].read()
    except (ClientError, BotoCoreError) as error:
        reason = error.response["Error"].get("Message") if isinstance(error, ClientError) else None
        raise StepFailed(
            f"cannot read {source}: {reason or error}",
            "check the key, and that your credentials may read it",
        ) from None
    first = head.split(b"\n", 1)[0]
    layout, missing, _ = Layout.parse(first, errors="replace")
    if missing:
        raise StepFailed(
            f"the header of {source} lacks the feature columns {', '.join(missing)} "
            f"(it has {', '.join(layout.names) or 'nothing'})",
            f"the first line must name the columns {', '.join(config.FEATURE_NAMES)} (others are ignored)",
        )
    return layout.names


@dataclass
class Progress:
    """A Map Run's counts: items are rows, executions are batches. A row is answered once its
    batch succeeded, with a label and probability or the reason it was refused."""

    items: dict
    executions: dict

    @classmethod
    def of(cls, map_run: dict) -> Progress:
        return cls(map_run.get("itemCounts", {}), map_run.get("executionCounts", {}))

    def line(self, seconds: float) -> str:
        total = self.items.get("total", 0)
        done = self.items.get("succeeded", 0)
        failed = sum(self.items.get(key, 0) for key in ("failed", "timedOut", "aborted"))
        rate = done / seconds if seconds > 0 else 0.0
        text = f"{done:,} of {total:,} rows answered" if total else f"{done:,} rows answered"
        text += f" ({rate:,.0f} rows/s), {self.executions.get('running', 0):,} batches running"
        return text + (f", {failed:,} rows in failed batches" if failed else "")


def progress_display(stream=None):
    """Where the progress lines go: rewritten in place on a terminal, one line per poll elsewhere
    (a CI log keeps them all). Call ``done()`` on the result before printing anything else."""
    stream = stream or sys.stdout
    terminal = stream.isatty()
    shown = {"width": 0}

    def show(line: str) -> None:
        if terminal:
            stream.write("\r" + line.ljust(shown["width"]))
            shown["width"] = len(line)
        else:
            stream.write(line + "\n")
        stream.flush()

    def done() -> None:
        if terminal and shown["width"]:
            stream.write("\n")
            shown["width"] = 0

    show.done = done
    return show


def map_run_of(sfn, execution_arn: str) -> str | None:
    runs = sfn.list_map_runs(executionArn=execution_arn).get("mapRuns", [])
    return runs[0]["mapRunArn"] if runs else None


def follow(sfn, execution_arn: str, poll_s: float, show=print, clock=time.monotonic, sleep=time.sleep) -> dict:
    """Poll until the execution ends, showing the Map Run's counts; returns the last
    DescribeExecution answer with the last counts under ``progress``."""
    started, map_run, progress = clock(), None, None
    while True:
        execution = sfn.describe_execution(executionArn=execution_arn)
        map_run = map_run or map_run_of(sfn, execution_arn)
        if map_run:
            progress = Progress.of(sfn.describe_map_run(mapRunArn=map_run))
            show(progress.line(clock() - started))
        if execution["status"] in FINISHED:
            return {**execution, "progress": progress}
        sleep(poll_s)


def failed_batches(s3, manifest: dict) -> list[dict]:
    """The failed child executions the ResultWriter recorded: each with its first and last row."""
    failures = []
    for entry in manifest.get("ResultFiles", {}).get("FAILED", []):
        body = s3.get_object(Bucket=manifest["DestinationBucket"], Key=entry["Key"])["Body"].read()
        for record in json.loads(body or b"[]"):
            try:
                items = json.loads(record.get("Input") or "{}").get("Items", [])
            except ValueError:
                items = []
            indexes = [item.get("index") for item in items if isinstance(item, dict)]
            failures.append(
                {
                    "rows": (min(indexes), max(indexes)) if indexes else None,
                    "error": record.get("Error", ""),
                    "cause": record.get("Cause", ""),
                }
            )
    return failures


def read_manifest(s3, output: dict | None) -> tuple[dict | None, str | None]:
    """The ResultWriter's manifest, from the Map's output (``ResultWriterDetails``), and its URI."""
    details = (output or {}).get("ResultWriterDetails") or {}
    if not details.get("Bucket") or not details.get("Key"):
        return None, None
    body = s3.get_object(Bucket=details["Bucket"], Key=details["Key"])["Body"].read()
    return json.loads(body), f"s3://{details['Bucket']}/{details['Key']}"


def describe_failures(failures: list[dict]) -> list[str]:
    lines = []
    for failure in failures[:SHOWN_FAILURES]:
        rows = f"rows {failure['rows'][0]}-{failure['rows'][1]}" if failure["rows"] else "a batch"
        lines.append(f"  {rows}: {failure['error']} {failure['cause'][:300]}".rstrip())
    if len(failures) > SHOWN_FAILURES:
        lines.append(f"  ... and {len(failures) - SHOWN_FAILURES} more batches")
    return lines


def report(s3, finished: dict, seconds: float) -> tuple[int, list[str]]:
    """The exit status and the lines that say how the job ended."""
    status = finished["status"]
    try:
        output = json.loads(finished.get("output") or "null")
    except ValueError:
        output = None
    manifest, where = read_manifest(s3, output if isinstance(output, dict) else None)
    failures = failed_batches(s3, manifest) if manifest else []
    progress = finished.get("progress")
    rows = progress.items.get("succeeded", 0) if progress else 0
    if status == "SUCCEEDED" and not failures:
        lines = [f"answered {rows:,} rows in {seconds:.1f} s; results: {where or 'none written'}"]
        lines.append("  each row's answer (label and probability, or the reason it was refused) is in SUCCEEDED_*.json")
        return 0, lines
    lines = [f"the batch job {status.lower().replace('_', ' ')} after {seconds:.1f} s ({rows:,} rows answered)"]
    if finished.get("error") or finished.get("cause"):
        lines.append(f"  {finished.get('error', '')}: {(finished.get('cause') or '')[:500]}")
    if failures:
        lines.append(f"{len(failures)} batches failed:")
        lines += describe_failures(failures)
    if where:
        lines.append(f"results of the other batches: {where}")
    lines.append(f"the execution's events: {finished['executionArn']} (Step Functions console)")
    return 1, lines


def locations(source_uri: str, results_uri: str, spec: dict) -> tuple[S3Location, S3Location]:
    """The input and output, checked against the settings."""
    source, results = S3Location.parse(source_uri, "INPUT"), S3Location.parse(results_uri, "OUTPUT")
    check_locations(source, results, spec)
    return source, results


def score(
    source: S3Location,
    results: S3Location,
    region: str,
    state_machine: str,
    poll_s: float = 5.0,
    sfn=None,
    s3=None,
    show=None,
) -> int:
    """Check the input's header, start the job and follow it; returns the exit status. Clients
    default to boto3's."""
    sfn = sfn or boto3.client("stepfunctions", region_name=region)
    s3 = s3 or boto3.client("s3", region_name=region)
    check_header(s3, source)
    name = f"score-{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 1_000_000:06d}"
    try:
        started = sfn.start_execution(
            stateMachineArn=state_machine, name=name, input=json.dumps(execution_input(source, results))
        )
    except (ClientError, BotoCoreError) as error:
        raise StepFailed(
            f"cannot start {state_machine}: {error}", "check that `make deploy` ran with batch on"
        ) from None
    arn, began = started["executionArn"], time.monotonic()
    print(f"started {arn}: {source} -> {results}", flush=True)
    show = show or progress_display()
    try:
        try:
            finished = follow(sfn, arn, poll_s, show=show)
        finally:
            getattr(show, "done", lambda: None)()  # the progress line ends before anything else prints
    except (ClientError, BotoCoreError) as error:
        raise StepFailed(
            f"lost track of {arn}: {error}",
            "the job may still be running: see it in the Step Functions console, or stop it there",
        ) from None
    except KeyboardInterrupt:
        sfn.stop_execution(executionArn=arn, error="Interrupted", cause="stopped by `make batch-score`")
        print(f"interrupted: stopped {arn}", file=sys.stderr)
        return 130
    try:
        status, lines = report(s3, finished, time.monotonic() - began)
    except (ClientError, BotoCoreError, ValueError) as error:
        raise StepFailed(
            f"{arn} ended {finished['status']}, but its results' manifest could not be read: {error}",
            "check that your credentials may read batch_output, or open the execution in the Step Functions console",
        ) from None
    for line in lines:
        print(line, file=sys.stdout if status == 0 else sys.stderr)
    return status
