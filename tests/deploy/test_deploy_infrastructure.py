"""`python -m deploy` and Terraform, run as a user runs them (stand-ins for docker and terraform,
moto's server; tests/deploy_harness.py): a reviewed plan before each apply, Terraform's progress
shown, the S3 state backend, pruning of old versions and images, a destroy that can run twice,
and a build judged by the image Docker holds, not by bentoctl's words."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import boto3
import pytest

from tests.deploy_harness import REGION, ecr_tags, lambda_client, new_image_version, run_deploy, set_spec, tfvars
from tests.terraform_files import parsed

BUCKET = "xgb-classifier-tf-state"
NEW_TERRAFORM = {"STANDIN_TERRAFORM_VERSION": "1.11.4"}


def deploy(workdir, server, bento, tmp_path, *args, env=None):
    return run_deploy("deploy", workdir, server.url, tmp_path, env=env, args=("--bento", bento, *args))


def terraform_calls(done, word: str) -> list[list[str]]:
    return [argv for argv in done.calls("terraform") if argv[0] == word]


def test_an_endpoint_switch_stops_at_the_plan_until_yes_and_terraform_shows_its_progress(
    aws, workdir, server, built_bento, tmp_path
):
    first = deploy(workdir, server, built_bento, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "plan: " in first.stdout and "to add, 0 to change, 0 to destroy" in first.stdout
    assert "aws_lambda_function.service: Creating..." in first.stdout, "Terraform's progress is shown as it runs"
    assert "Apply complete! Resources:" in first.stdout

    set_spec(workdir, endpoint="function_url", public_url_uncapped=True)
    (first.state / "calls.jsonl").unlink()
    stopped = deploy(workdir, server, built_bento, tmp_path)
    assert stopped.returncode == 1, stopped.stdout
    assert "deploy failed at step 'terraform apply'" in stopped.stderr
    assert "destroy aws_apigatewayv2_api.service[0] (the HTTP API: its URL changes)" in stopped.stderr
    assert "--yes" in stopped.stderr and "terraform show deploy.tfplan" in stopped.stderr
    # What Terraform core plans for the switch: the function URL and its two public permissions
    # come, the function and alias change, and everything of the HTTP API goes, nothing else.
    counts = re.search(r"plan: (\d+) to add, (\d+) to change, (\d+) to destroy", stopped.stdout)
    assert counts and counts.groups()[:2] == ("3", "2"), stopped.stdout
    destroyed = re.findall(r"^\s+destroy (\S+)", stopped.stdout, re.M)
    assert len(destroyed) == int(counts.group(3)) and "aws_apigatewayv2_api.service[0]" in destroyed
    assert all(
        re.match(r"aws_apigatewayv2_|aws_cloudwatch_log_group\.api|aws_lambda_permission\.api", a) for a in destroyed
    )
    assert terraform_calls(stopped, "plan") and not terraform_calls(stopped, "apply"), "nothing may be applied"
    assert (workdir / "deploy.tfplan").is_file(), "the refused plan stays for review"

    approved = deploy(workdir, server, built_bento, tmp_path, "--yes")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "aws_apigatewayv2_api.service[0]: Destroying..." in approved.stdout
    assert "aws_lambda_function_url.live[0]: Creating..." in approved.stdout
    assert terraform_calls(approved, "apply")[-1] == ["apply", "-input=false", "deploy.tfplan"]
    assert not (workdir / "deploy.tfplan").exists()


def test_a_refused_plan_leaves_the_records_naming_what_is_deployed(aws, workdir, server, built_bento, tmp_path):
    """A new image with an endpoint switch: the plan stops it, so the deployed values and the
    release file must still say what runs, not the image that was never applied."""
    first = deploy(workdir, server, built_bento, tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    before = {name: (workdir / name).read_text() for name in ("deployed.auto.tfvars.json", "release.auto.tfvars.json")}
    set_spec(workdir, endpoint="function_url", public_url_uncapped=True, canary_percent=10)
    stopped = new_image_version(workdir, server, built_bento, tmp_path)
    assert stopped.returncode == 1 and "failed at step 'terraform apply'" in stopped.stderr, stopped.stderr
    assert "-arm64" in stopped.stdout, "the second deploy pushed a new image"
    assert {name: (workdir / name).read_text() for name in before} == before
    assert tfvars(workdir)["image_version"].endswith("-x86_64")


def test_state_in_s3_backend_written_state_migrated_and_back(aws, workdir, server, built_bento, tmp_path):
    local = deploy(workdir, server, built_bento, tmp_path)
    assert local.returncode == 0, local.stderr
    assert (workdir / "terraform.tfstate").stat().st_size > 0
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
    set_spec(workdir, state_bucket=BUCKET)

    old = deploy(workdir, server, built_bento, tmp_path)
    assert old.returncode == 1 and "failed at step 'terraform init'" in old.stderr
    assert "Terraform 1.10.0 or later" in old.stderr and "1.9.8" in old.stderr

    (local.state / "calls.jsonl").unlink()
    moved = deploy(workdir, server, built_bento, tmp_path, env=NEW_TERRAFORM)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    backend = parsed(workdir / "backend.tf")["terraform"][0]
    assert backend["required_version"] == ">= 1.10.0"
    assert backend["backend"][0]["s3"] == {
        "bucket": BUCKET,
        "key": "xgb-classifier/terraform.tfstate",
        "region": REGION,
        "use_lockfile": True,
        "encrypt": True,
    }
    init = terraform_calls(moved, "init")[0]
    assert "-migrate-state" in init and "-force-copy" in init
    assert f"state moves to s3://{BUCKET}/xgb-classifier/terraform.tfstate" in moved.stdout
    assert (workdir / "terraform.tfstate").stat().st_size == 0, "the state left the folder"

    set_spec(workdir, state_bucket="")
    (local.state / "calls.jsonl").unlink()
    back = deploy(workdir, server, built_bento, tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    assert not (workdir / "backend.tf").exists()
    assert "-migrate-state" in terraform_calls(back, "init")[0]
    assert "state moves to terraform.tfstate" in back.stdout


@pytest.mark.skipif(shutil.which("terraform", path="/usr/local/bin:/usr/bin") is None, reason="no terraform")
def test_the_backend_file_is_terraform_fmt_clean_and_a_users_own_is_left_alone(workdir, tmp_path):
    terraform = shutil.which("terraform", path="/usr/local/bin:/usr/bin")
    set_spec(workdir, state_bucket=BUCKET)
    assert run_deploy("generate", workdir, "http://127.0.0.1:9", tmp_path).returncode == 0
    fmt = subprocess.run([terraform, "fmt", "-check", "-diff", "backend.tf"], cwd=workdir, capture_output=True)
    assert fmt.returncode == 0, fmt.stdout.decode()

    own = 'terraform {\n  backend "local" {}\n}\n'
    (workdir / "backend.tf").write_text(own)
    refused = run_deploy("generate", workdir, "http://127.0.0.1:9", tmp_path)
    assert refused.returncode == 1 and "was not written by this operator" in refused.stdout + refused.stderr
    set_spec(workdir, state_bucket="")
    assert run_deploy("generate", workdir, "http://127.0.0.1:9", tmp_path).returncode == 0
    assert (workdir / "backend.tf").read_text() == own


def test_old_versions_and_their_deployed_tags_are_pruned(
    aws, workdir, server, built_bento, data_path, tmp_path, monkeypatch
):
    """keep_versions 2 at the fourth deploy of four images (two architectures of two models; the
    same model in another Bento is the same image): versions 1 and 2 go, and their images
    lose the deployed- tag. Lambda resolves each version's image digest (moto only when its ECR is
    not stubbed); moto numbers a new version by count, so keep_versions is lowered only at the last
    deploy, after which nothing is published."""
    from tests.lambda_harness import bentoml_build

    monkeypatch.setenv("MOTO_LAMBDA_STUB_ECR", "false")
    older = built_bento.split(":")[1]
    assert deploy(workdir, server, built_bento, tmp_path).returncode == 0
    assert new_image_version(workdir, server, built_bento, tmp_path).returncode == 0
    from src.train import train

    model = train(data_path, report_dir=tmp_path / "reports")
    retrained = bentoml_build(env={"XGB_MODEL_TAG": model.tag})
    newer = retrained.split(":")[1]
    third = deploy(workdir, server, retrained, tmp_path)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "nothing to prune (keep_versions: 10)" in third.stdout
    set_spec(workdir, keep_versions=2)
    fourth = new_image_version(workdir, server, retrained, tmp_path)
    assert fourth.returncode == 0, fourth.stdout + fourth.stderr
    assert "deleted versions 1, 2" in fourth.stdout
    assert f"untagged deployed-{older}-arm64, deployed-{older}-x86_64" in fourth.stdout, fourth.stdout[-900:]

    versions = lambda_client().list_versions_by_function(FunctionName="xgb-classifier")["Versions"]
    assert sorted(v["Version"] for v in versions) == ["$LATEST", "3", "4"]
    tags = ecr_tags()
    assert {f"deployed-{newer}-arm64", f"deployed-{newer}-x86_64"} <= tags
    assert not {f"deployed-{older}-arm64", f"deployed-{older}-x86_64"} & tags
    assert {f"{older}-arm64", f"{older}-x86_64"} <= tags, "the images stay; the lifecycle policy may expire them"


def test_destroy_twice_clears_the_deployed_values_and_says_there_was_nothing(
    aws, workdir, server, built_bento, tmp_path
):
    assert deploy(workdir, server, built_bento, tmp_path).returncode == 0
    done = run_deploy("destroy", workdir, server.url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Destroy complete!" in done.stdout and "deleted the ECR repository xgb-classifier" in done.stdout
    assert not (workdir / "deployed.auto.tfvars.json").exists()
    assert not (workdir / "release.auto.tfvars.json").exists()

    (done.state / "calls.jsonl").unlink()
    again = run_deploy("destroy", workdir, server.url, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to destroy" in again.stdout and "there is no ECR repository xgb-classifier" in again.stdout
    assert not terraform_calls(again, "destroy")


def test_destroy_without_the_deployed_file_takes_the_image_from_the_state(aws, workdir, server, built_bento, tmp_path):
    """As from a fresh clone whose state is in S3: main.tf needs the image variables even to destroy."""
    assert deploy(workdir, server, built_bento, tmp_path).returncode == 0
    deployed = json.loads((workdir / "deployed.auto.tfvars.json").read_text())
    (workdir / "deployed.auto.tfvars.json").unlink()
    done = run_deploy("destroy", workdir, server.url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    destroy = terraform_calls(done, "destroy")[-1]
    assert f"-var=image_repository={deployed['image_repository']}" in destroy
    assert f"-var=image_version={deployed['image_version']}" in destroy
    assert lambda_client().list_functions()["Functions"] == []


def test_destroy_after_a_deploy_that_failed_at_build(aws, workdir, server, built_bento, tmp_path):
    failed = deploy(workdir, server, built_bento, tmp_path, env={"STANDIN_FAIL": "docker buildx build"})
    assert failed.returncode == 1
    done = run_deploy("destroy", workdir, server.url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing to destroy" in done.stdout and "there is no ECR repository" in done.stdout


def test_a_build_whose_messages_wrap_succeeds(aws, workdir, server, built_bento, tmp_path):
    """Off a terminal bentoctl's messages wrap at the console's width (COLUMNS here)."""
    done = deploy(workdir, server, built_bento, tmp_path, env={"COLUMNS": "30"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Created docker image: aws-lambda" not in done.stdout


def test_base_image_is_what_the_image_is_built_from(aws, workdir, server, built_bento, tmp_path):
    """A mirror (or a tag with its digest) for the image's FROM, set in deployment_config.yaml,
    reaches the Dockerfile Docker builds; without it, the Dockerfile's default."""
    default = deploy(workdir, server, built_bento, tmp_path)
    assert default.returncode == 0, default.stdout + default.stderr
    images = tmp_path / "standin-state" / "images.json"
    assert {image["Base"] for image in json.loads(images.read_text()).values()} == {"python:3.11-slim-bookworm"}

    mirror = "public.ecr.aws/docker/library/python:3.11-slim-bookworm@sha256:" + "ab" * 32
    set_spec(workdir, base_image=mirror, architecture="arm64")
    done = deploy(workdir, server, built_bento, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert mirror in {image["Base"] for image in json.loads(images.read_text()).values()}


def test_a_build_that_exits_0_without_an_image_fails_even_with_an_old_one_present(
    aws, workdir, server, built_bento, tmp_path
):
    name = f"aws-lambda-{built_bento}"
    state = tmp_path / "standin-state"
    state.mkdir()
    stale = {"Id": "sha256:" + "1" * 64, "Os": "linux", "Architecture": "amd64", "config": "{}", "attested": False}
    (state / "images.json").write_text(json.dumps({name: stale}))
    done = deploy(workdir, server, built_bento, tmp_path, env={"STANDIN_BUILD_NO_IMAGE": "1"})
    assert done.returncode == 1, done.stdout
    assert "failed at step 'image: build and push'" in done.stderr
    assert f"bentoctl build did not build {name}" in done.stderr
    assert not any(argv[0] == "push" for argv in done.calls("docker"))


@pytest.mark.unit
@pytest.mark.parametrize("actions", [["delete", "create"], ["create", "delete"], ["delete"]])
def test_every_delete_or_replacement_of_what_clients_reach_is_refused(actions):
    from deploy.terraform import PROTECTED, refused

    for kind in PROTECTED:
        change = {"address": f"{kind}.x", "type": kind, "actions": actions}
        assert refused([change]) and f"{kind}.x" in refused([change])[0], kind
    harmless = [
        {"address": "aws_lambda_function.service", "type": "aws_lambda_function", "actions": ["update"]},
        {"address": "aws_lambda_alias.live", "type": "aws_lambda_alias", "actions": ["create"]},
        {"address": "aws_apigatewayv2_stage.default[0]", "type": "aws_apigatewayv2_stage", "actions": actions},
    ]
    assert refused(harmless) == []


@pytest.mark.unit
def test_the_plan_summary_counts_a_replacement_as_an_addition_and_a_destruction():
    from deploy.terraform import summary

    changes = [
        {"address": "aws_lambda_alias.live", "type": "aws_lambda_alias", "actions": ["create", "delete"]},
        {"address": "aws_iam_role.lambda", "type": "aws_iam_role", "actions": ["create"]},
        {"address": "aws_lambda_function.service", "type": "aws_lambda_function", "actions": ["update"]},
        {"address": "aws_apigatewayv2_api.service[0]", "type": "aws_apigatewayv2_api", "actions": ["delete"]},
    ]
    assert summary(changes) == [
        "plan: 2 to add, 1 to change, 2 to destroy",
        "  replace aws_lambda_alias.live",
        "  update aws_lambda_function.service",
        "  destroy aws_apigatewayv2_api.service[0]",
    ]


@pytest.mark.unit
def test_a_pruning_failure_is_a_warning_not_a_failed_deploy(monkeypatch, capsys, tmp_path):
    from botocore.exceptions import ClientError

    from deploy import prune
    from deploy.deployment import Deployment

    def denied(deployment):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "DeleteFunction")

    monkeypatch.setattr(prune, "prune", denied)
    prune.report(Deployment(name="xgb-classifier", spec={"keep_versions": 2, "region": REGION}, workdir=tmp_path))
    out = capsys.readouterr().out
    assert "warning: pruning stopped" in out and "AccessDeniedException" in out and "lambda:DeleteFunction" in out
