"""`python -m deploy`, run as a user runs it, against stand-ins for docker and terraform that
record their calls (tests/standins) and moto's server for AWS: the right calls in the right
order, attestations off, the function's architecture, the pushed image checked before apply,
and a stop with the failed step named at each failure. The harness: tests/deploy_harness.py."""

from __future__ import annotations

import json

import boto3
import pytest
import yaml

from tests.deploy_harness import (
    REGION,
    STANDINS,
    ecr_tags,
    first_index,
    live_alias,
    new_image_version,
    run_deploy,
    set_spec,
    tfvars,
)


def test_deploy_builds_pushes_checks_applies_and_calls_the_endpoint(aws, workdir, server, built_bento, tmp_path):
    done = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert done.returncode == 0, done.stdout + done.stderr
    version = built_bento.split(":")[1]
    tag = f"{version}-x86_64"

    docker = done.calls("docker")
    build = docker[first_index(docker, "buildx", "build")]
    assert build[build.index("--platform") + 1] == "linux/amd64"
    build_entry = next(e for e in done.entries() if e["argv"][:2] == ["buildx", "build"])
    assert build_entry["env"].get("BUILDX_NO_DEFAULT_ATTESTATIONS") == "1", "attestations must be off"
    login = docker[first_index(docker, "login")]
    assert "--password-stdin" in login and not any("testing" in arg or len(arg) > 200 for arg in login)
    assert first_index(docker, "buildx", "build") < first_index(docker, "login") < first_index(docker, "push")

    assert {tag, f"deployed-{tag}"} <= ecr_tags()
    values = tfvars(workdir)
    assert values["image_version"] == tag
    assert values["image_repository"].endswith(".amazonaws.com/xgb-classifier")

    terraform = done.calls("terraform")
    assert first_index(terraform, "init") < first_index(terraform, "apply") < first_index(terraform, "output")
    apply = terraform[first_index(terraform, "apply")]
    plan = terraform[first_index(terraform, "plan")]
    assert "-var-file=bentoctl.tfvars" in plan and "-out=deploy.tfplan" in plan and "-input=false" in plan
    assert apply == ["apply", "-input=false", "deploy.tfplan"], "the saved plan is what gets applied"
    assert f"{server.url}/classify" in done.stdout
    assert "answered [" in done.stdout


def test_redeploy_of_the_same_bento_reuses_the_pushed_image_and_keeps_it_after_a_setting_change(
    aws, workdir, server, built_bento, tmp_path
):
    first = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert first.returncode == 0, first.stderr
    config = yaml.safe_load((workdir / "deployment_config.yaml").read_text())
    config["spec"]["memory_size"] = 2048
    (workdir / "deployment_config.yaml").write_text(yaml.safe_dump(config))
    (first.state / "calls.jsonl").unlink()

    again = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already in ECR" in again.stdout
    assert not any(argv[:2] == ["buildx", "build"] or argv[:1] == ["push"] for argv in again.calls("docker"))
    assert "memory_size            = 2048" in (workdir / "bentoctl.tfvars").read_text()
    assert tfvars(workdir)["image_version"] == f"{built_bento.split(':')[1]}-x86_64"
    assert any(argv[0] == "apply" for argv in again.calls("terraform"))


def test_arm64_builds_for_arm64_and_a_wrong_architecture_stops_before_push(aws, workdir, server, built_bento, tmp_path):
    config = yaml.safe_load((workdir / "deployment_config.yaml").read_text())
    config["spec"]["architecture"] = "arm64"
    (workdir / "deployment_config.yaml").write_text(yaml.safe_dump(config))

    wrong = run_deploy(
        "deploy", workdir, server.url, tmp_path, args=("--bento", built_bento), env={"STANDIN_IMAGE_ARCH": "amd64"}
    )
    assert wrong.returncode == 1
    assert "failed at step 'image: build and push'" in wrong.stderr and "linux/amd64" in wrong.stderr
    assert "QEMU" in wrong.stderr
    build = next(argv for argv in wrong.calls("docker") if argv[:2] == ["buildx", "build"])
    assert build[build.index("--platform") + 1] == "linux/arm64"
    assert not any(argv[0] == "push" for argv in wrong.calls("docker"))
    assert not any(argv[0] == "apply" for argv in wrong.calls("terraform"))

    right = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert right.returncode == 0, right.stderr
    assert tfvars(workdir)["image_version"].endswith("-arm64")


def test_an_image_index_in_ecr_is_refused_before_terraform(aws, workdir, server, built_bento, tmp_path):
    """What Docker 29 pushes when attestations stay on: an index Lambda would reject."""
    done = run_deploy(
        "deploy", workdir, server.url, tmp_path, args=("--bento", built_bento), env={"STANDIN_FORCE_ATTESTATIONS": "1"}
    )
    assert done.returncode == 1
    assert "failed at step 'image: verify what ECR holds'" in done.stderr
    assert "multi-platform index" in done.stderr and "unknown/unknown" in done.stderr
    assert "provenance=false" in done.stderr
    assert not any(argv[0] == "apply" for argv in done.calls("terraform"))
    assert tfvars(workdir)["image_version"] == "", "tfvars must not name an image that failed its check"


@pytest.mark.parametrize(
    "fail, step",
    [
        ("docker push", "image: build and push"),
        ("terraform apply", "terraform apply"),
        ("docker buildx build", "image: build and push"),
    ],
)
def test_a_failing_step_stops_the_deploy_and_says_which(aws, workdir, server, built_bento, tmp_path, fail, step):
    done = run_deploy(
        "deploy", workdir, server.url, tmp_path, args=("--bento", built_bento), env={"STANDIN_FAIL": fail}
    )
    assert done.returncode == 1, done.stdout
    assert f"deploy failed at step '{step}'" in done.stderr
    assert "simulated failure" in done.stderr
    later = {"image: build and push": ("apply",), "terraform apply": ("output",)}[step]
    assert not any(argv[0] in later for argv in done.calls("terraform"))
    assert "/classify answered" not in done.stdout


@pytest.mark.parametrize(
    "case, env, path_without_docker, message",
    [
        ("no docker", {}, True, "Docker is not installed"),
        ("engine down", {"STANDIN_FAIL": "docker version"}, False, "Docker engine is not reachable"),
        ("no terraform", {"STANDIN_FAIL": "terraform version"}, False, "terraform version"),
        ("old terraform", {"STANDIN_TERRAFORM_VERSION": "1.2.9"}, False, "Terraform 1.2.9 is too old"),
        (
            "no credentials",
            {
                "AWS_ACCESS_KEY_ID": None,
                "AWS_SECRET_ACCESS_KEY": None,
                "AWS_SESSION_TOKEN": None,
                "AWS_PROFILE": None,
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
                "AWS_CONFIG_FILE": "/nonexistent",
            },
            False,
            "no AWS credentials",
        ),
    ],
)
def test_missing_prerequisites_are_named_before_anything_runs(
    aws, workdir, tmp_path, case, env, path_without_docker, message
):
    path = None
    if path_without_docker:
        only_terraform = tmp_path / "bin"
        only_terraform.mkdir()
        (only_terraform / "terraform").symlink_to(STANDINS / "terraform")
        path = str(only_terraform)
    done = run_deploy("deploy", workdir, "http://127.0.0.1:9", tmp_path, env=env, path=path)
    assert done.returncode == 1, done.stdout
    assert "failed at step 'prerequisites" in done.stderr and message in done.stderr, done.stderr
    assert "next:" in done.stderr
    assert not any(argv[:1] in (["apply"], ["init"]) for argv in done.calls("terraform"))


def test_destroy_removes_the_repository_only_after_terraform_destroy_succeeded(
    aws, workdir, server, built_bento, tmp_path
):
    assert run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento)).returncode == 0
    failed = run_deploy("destroy", workdir, server.url, tmp_path, env={"STANDIN_FAIL": "terraform destroy"})
    assert failed.returncode == 1
    assert "destroy failed at step 'terraform destroy'" in failed.stderr
    assert ecr_tags(), "the repository must survive a failed terraform destroy"

    done = run_deploy("destroy", workdir, server.url, tmp_path)
    assert done.returncode == 0, done.stderr
    repositories = boto3.client("ecr", region_name=REGION).describe_repositories()["repositories"]
    assert repositories == []
    terraform = done.calls("terraform")
    assert any(argv[0] == "destroy" and "-var-file=bentoctl.tfvars" in argv for argv in terraform)


def test_generate_after_a_build_keeps_the_image(workdir, tmp_path):
    """`bentoctl generate` after a settings change, as docs/deploy.md says: the image stays named."""
    (workdir / "deployed.auto.tfvars.json").write_text(
        json.dumps(
            {"image_repository": "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/xgb", "image_version": "abc-x86_64"}
        )
    )
    home = tmp_path / "bentoctl-home"
    from tests.lambda_harness import bentoctl, install_operator

    assert install_operator(home, cwd=workdir).returncode == 0
    result = bentoctl("generate", "-f", "deployment_config.yaml", env={"BENTOCTL_HOME": str(home)}, cwd=workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    values = tfvars(workdir)
    assert values["image_repository"] == "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/xgb"
    assert values["image_version"] == "abc-x86_64"


def test_deploy_records_the_bento_model_and_data_in_tfvars(aws, workdir, server, built_bento, trained, tmp_path):
    done = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert done.returncode == 0, done.stderr
    values = tfvars(workdir)
    import bentoml

    assert values["bento_tag"] == built_bento
    assert values["model_tag"] == trained.tag
    assert values["data_sha256"] == bentoml.models.get(trained.tag).info.metadata["data_sha256"]
    assert len(values["data_sha256"]) == 64
    assert json.loads((workdir / "release.auto.tfvars.json").read_text()) == {
        "pinned_version": "",
        "canary_base_version": "",
    }
    assert live_alias()["FunctionVersion"] == "1"


def test_a_healthy_canary_takes_its_share_then_all_traffic(aws, workdir, server, built_bento, tmp_path):
    assert run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento)).returncode == 0
    set_spec(workdir, canary_percent=10, canary_minutes=1)
    (tmp_path / "standin-state" / "calls.jsonl").unlink()
    done = new_image_version(workdir, server, built_bento, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "canary: version 2 takes 10 %" in done.stdout and "promote version 2" in done.stdout
    applies = [argv for argv in done.calls("terraform") if argv[0] == "apply"]
    assert len(applies) == 2, "one apply starts the canary, one promotes it"
    assert live_alias()["FunctionVersion"] == "2"
    assert not live_alias().get("RoutingConfig", {}).get("AdditionalVersionWeights")
    assert json.loads((workdir / "release.auto.tfvars.json").read_text())["canary_base_version"] == ""


def test_a_canary_that_sets_off_an_alarm_is_rolled_back(aws, workdir, server, built_bento, tmp_path):
    assert run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento)).returncode == 0
    set_spec(workdir, canary_percent=20, canary_minutes=1)
    done = new_image_version(workdir, server, built_bento, tmp_path, env={"STANDIN_CANARY_FAILS": "1"})
    assert done.returncode == 1
    assert "failed at step 'canary: version 2 takes 20 %" in done.stderr
    assert "xgb-classifier-canary-errors" in done.stderr and "rolled back to version 1" in done.stderr
    assert live_alias()["FunctionVersion"] == "1"
    assert not live_alias().get("RoutingConfig", {}).get("AdditionalVersionWeights")
    release = json.loads((workdir / "release.auto.tfvars.json").read_text())
    assert release["pinned_version"] == "1", "a later hand-made terraform apply keeps the rollback"


def test_rollback_returns_the_alias_to_the_previous_version_without_building(
    aws, workdir, server, built_bento, tmp_path
):
    assert run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento)).returncode == 0
    assert new_image_version(workdir, server, built_bento, tmp_path).returncode == 0
    assert live_alias()["FunctionVersion"] == "2"
    (tmp_path / "standin-state" / "calls.jsonl").unlink()

    done = run_deploy("rollback", workdir, server.url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert live_alias()["FunctionVersion"] == "1"
    assert "version 2 → 1" in done.stdout and "switched in" in done.stdout
    assert done.calls("docker") == [], "a rollback neither builds nor pushes"
    assert json.loads((workdir / "release.auto.tfvars.json").read_text())["pinned_version"] == "1"
    assert [argv[0] for argv in done.calls("terraform")][-1] == "apply"

    again = run_deploy("rollback", workdir, server.url, tmp_path)
    assert again.returncode == 1 and "first published version" in again.stderr
    forward = run_deploy("rollback", workdir, server.url, tmp_path, args=("--to", "2"))
    assert forward.returncode == 0 and live_alias()["FunctionVersion"] == "2"
    missing = run_deploy("rollback", workdir, server.url, tmp_path, args=("--to", "9"))
    assert missing.returncode == 1 and "version 9 is not published" in missing.stderr


def test_rollback_before_any_deploy_says_to_deploy_first(aws, workdir, server, tmp_path):
    done = run_deploy("rollback", workdir, server.url, tmp_path)
    assert done.returncode == 1
    assert "nothing is deployed" in done.stderr and "make deploy" in done.stderr


def test_the_alias_name_is_the_one_main_tf_declares():
    from deploy.deployment import operator_config
    from tests.terraform_files import locals_block

    assert locals_block()["alias_name"] == operator_config.ALIAS_NAME


@pytest.mark.parametrize(
    "name, spec, message",
    [
        (None, {"memory_size": 64}, "memory_size"),
        (None, {"reserved_concurrency": 0}, "reserved_concurrency"),
        ("XGB-Classifier", {}, "lower-case"),
        (None, {"endpoint": "function_url", "auth": "none"}, "public_url_uncapped"),
    ],
)
def test_a_bad_setting_stops_the_deploy_although_bentoctl_exits_0(
    aws, workdir, server, built_bento, tmp_path, name, spec, message
):
    """bentoctl reports a refused spec and exits 0; the deploy reads its files, not its exit code.
    Among them what AWS would refuse at apply (an upper-case name for ECR, no concurrency at all)
    and a public function URL without a cap."""
    set_spec(workdir, **spec)
    if name:
        config = yaml.safe_load((workdir / "deployment_config.yaml").read_text())
        (workdir / "deployment_config.yaml").write_text(yaml.safe_dump({**config, "name": name}))
    done = run_deploy("deploy", workdir, server.url, tmp_path, args=("--bento", built_bento))
    assert done.returncode == 1
    assert "failed at step 'settings: bentoctl generate'" in done.stderr and message in done.stderr, done.stderr
    assert not any(argv[:2] == ["buildx", "build"] for argv in done.calls("docker"))
    assert not any(argv[0] in ("init", "apply") for argv in done.calls("terraform"))
