"""What `make deploy` and `make rollback` do after `terraform apply`, run as a user runs them
(tests/deploy_harness.py): the first call authenticated as `auth` asks, through a gateway that
checks it as API Gateway would (tests/auth_gateway.py); a new endpoint's transient 403/404
retried; a failed canary undone with one UpdateAlias before Terraform; rollbacks among several
versions and during a canary; and the account's concurrency checked before apply."""

from __future__ import annotations

import json
import re

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from deploy.deployment import operator_config
from src.config import EXAMPLE_ROWS
from tests.auth_gateway import Gateway, bearer, json_answer, refuse_first, sigv4
from tests.deploy_harness import (
    AWS_ENV,
    REGION,
    lambda_client,
    live_alias,
    new_image_version,
    run_deploy,
    set_spec,
)

JWT = "test-token-for-the-authorizer"


def release_file(workdir) -> dict:
    return json.loads((workdir / "release.auto.tfvars.json").read_text())


def weights() -> dict:
    return live_alias().get("RoutingConfig", {}).get("AdditionalVersionWeights") or {}


def deploy(workdir, url, tmp_path, built_bento, env=None):
    return run_deploy("deploy", workdir, url, tmp_path, env=env, args=("--bento", built_bento))


class At:
    """What new_image_version needs of a server: its URL (here a gateway's)."""

    def __init__(self, url: str):
        self.url = url


# The first call, authenticated


def signed(url: str, body: bytes, secret: str = AWS_ENV["AWS_SECRET_ACCESS_KEY"], service: str = "execute-api"):
    credentials = Credentials(AWS_ENV["AWS_ACCESS_KEY_ID"], secret, AWS_ENV["AWS_SESSION_TOKEN"])
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials, service, REGION).add_auth(request)
    return dict(request.headers.items())


def test_the_gateway_refuses_what_api_gateway_would_and_passes_a_valid_signature(server):
    import requests

    with Gateway(server.url, sigv4()) as gateway:
        url = f"{gateway.url}/classify"
        body, other = (json.dumps(rows).encode() for rows in (EXAMPLE_ROWS, EXAMPLE_ROWS * 2))
        assert requests.post(url, data=body, headers={"Content-Type": "application/json"}).status_code == 403
        assert requests.post(url, data=body, headers=signed(url, body, secret="wrong")).status_code == 403
        assert requests.post(url, data=body, headers=signed(url, body, service="lambda")).status_code == 403
        tampered = requests.post(url, data=other, headers=signed(url, body))
        assert tampered.status_code == 403 and "does not match" in tampered.text
        assert requests.post(url, data=body, headers=signed(url, body)).status_code == 200
        assert requests.get(f"{gateway.url}/livez").status_code == 200, "the health route stays public"


@pytest.mark.parametrize("kind, service", [("http_api", "execute-api"), ("function_url", "lambda")])
def test_auth_iam_signs_the_first_call_with_sigv4(aws, workdir, server, built_bento, tmp_path, kind, service):
    set_spec(workdir, auth="iam", endpoint=kind)
    with Gateway(server.url, sigv4(service)) as gateway:
        done = deploy(workdir, gateway.url, tmp_path, built_bento)
    assert done.returncode == 0, done.stdout + done.stderr
    calls = gateway.requests("POST", "/classify")
    assert [call.status for call in calls] == [200]
    assert f"/{REGION}/{service}/aws4_request" in calls[0].headers["authorization"]
    assert "/classify answered [" in done.stdout


def test_auth_jwt_sends_the_token_from_the_environment(aws, workdir, server, built_bento, tmp_path):
    set_spec(workdir, auth="jwt", jwt_issuer="https://issuer.example.com", jwt_audience=["xgb"])
    with Gateway(server.url, bearer(JWT)) as gateway:
        done = deploy(workdir, gateway.url, tmp_path, built_bento, env={"XGB_DEPLOY_JWT": JWT})
    assert done.returncode == 0, done.stdout + done.stderr
    assert [call.status for call in gateway.requests("POST", "/classify")] == [200]
    assert "/classify answered [" in done.stdout


def test_auth_jwt_without_a_token_checks_the_public_route_and_says_so(aws, workdir, server, built_bento, tmp_path):
    set_spec(workdir, auth="jwt", jwt_issuer="https://issuer.example.com", jwt_audience=["xgb"])
    with Gateway(server.url, bearer(JWT)) as gateway:
        done = deploy(workdir, gateway.url, tmp_path, built_bento)
    assert done.returncode == 0, done.stdout + done.stderr
    assert gateway.requests("POST", "/classify") == [], "without a token the model route is not called"
    assert [call.status for call in gateway.requests("GET", "/livez")] == [200]
    assert "/livez answered 200; /classify was not tried" in done.stdout and "XGB_DEPLOY_JWT" in done.stdout


# A new endpoint's first minute


def test_a_new_endpoint_s_403_and_404_are_retried_an_existing_one_s_are_not(
    aws, workdir, server, built_bento, tmp_path
):
    with Gateway(server.url, refuse_first([404, 403])) as gateway:
        first = deploy(workdir, gateway.url, tmp_path, built_bento)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [call.status for call in gateway.requests("POST", "/classify")] == [404, 403, 200]

    with Gateway(server.url, refuse_first([403, 403])) as gateway:
        again = deploy(workdir, gateway.url, tmp_path, built_bento)
    assert again.returncode == 1, again.stdout
    assert "failed at step 'first call" in again.stderr and "403" in again.stderr
    assert [call.status for call in gateway.requests("POST", "/classify")] == [403], "an existing API: not retried"

    set_spec(workdir, endpoint="function_url", public_url_uncapped=True)
    with Gateway(server.url, refuse_first([403, 404])) as gateway:
        switched = run_deploy("deploy", workdir, gateway.url, tmp_path, args=("--bento", built_bento, "--yes"))
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert [call.status for call in gateway.requests("POST", "/classify")] == [403, 404, 200], "a new URL: retried"


# A canary that fails after its apply


def test_a_canary_whose_first_call_fails_is_back_on_the_previous_version(aws, workdir, server, built_bento, tmp_path):
    assert deploy(workdir, server.url, tmp_path, built_bento).returncode == 0
    set_spec(workdir, canary_percent=20, canary_minutes=1)
    with Gateway(server.url, refuse_first([401])) as gateway:
        done = new_image_version(workdir, At(gateway.url), built_bento, tmp_path)
    assert done.returncode == 1, done.stdout
    assert "failed at step 'first call" in done.stderr and "rolled back to version 1" in done.stderr
    assert live_alias()["FunctionVersion"] == "1" and weights() == {}
    assert release_file(workdir) == {"pinned_version": "1", "canary_base_version": ""}


def test_a_canary_whose_apply_step_fails_after_the_apply_is_back_on_the_previous_version(
    aws, workdir, server, built_bento, tmp_path
):
    """The apply gave the new version its share, then reading Terraform's outputs failed: the
    canary must not be left running with the release file still asking for it."""
    assert deploy(workdir, server.url, tmp_path, built_bento).returncode == 0
    set_spec(workdir, canary_percent=20, canary_minutes=1)
    done = new_image_version(workdir, server, built_bento, tmp_path, env={"STANDIN_FAIL": "terraform output"})
    assert done.returncode == 1, done.stdout
    assert "failed at step 'terraform apply'" in done.stderr and "rolled back to version 1" in done.stderr
    assert live_alias()["FunctionVersion"] == "1" and weights() == {}
    assert release_file(workdir) == {"pinned_version": "1", "canary_base_version": ""}


def refuse_listing_versions(seen) -> tuple | None:
    """Lambda refuses ListVersionsByFunction, which the stand-in's apply of an unchanged image calls."""
    if seen.method == "GET" and re.fullmatch(r"/[^/]+/functions/[^/]+/versions/?(\?.*)?", seen.path):
        return json_answer(403, {"Type": "User", "message": "denied"}, **{"x-amzn-ErrorType": "AccessDeniedException"})
    return None


@pytest.mark.parametrize(
    "case, env, failed_step, cause",
    [
        ("alarm", {"STANDIN_CANARY_FAILS": "1"}, "canary: version 2 takes 20 %", "xgb-classifier-canary-errors"),
        (
            "drift",
            {"STANDIN_CANARY_DRIFT": "probability"},
            "canary: version 2 takes 20 %",
            "xgb-classifier-canary-drift-probability'] fired during the canary (its answers (the probability) "
            "differ from the base version's)",
        ),
        ("promotion", {}, "canary: promote version 2", "the apply that promotes it failed"),
    ],
)
def test_a_failing_canary_is_undone_by_update_alias_before_the_apply_that_may_fail(
    aws, moto_url, workdir, server, built_bento, tmp_path, case, env, failed_step, cause
):
    assert deploy(workdir, server.url, tmp_path, built_bento).returncode == 0
    set_spec(workdir, canary_percent=20, canary_minutes=1)
    with Gateway(moto_url, refuse_listing_versions) as lambda_api:
        done = new_image_version(
            workdir, server, built_bento, tmp_path, env={**env, "AWS_ENDPOINT_URL_LAMBDA": lambda_api.url}
        )
    assert done.returncode == 1, done.stdout
    assert f"failed at step '{failed_step}" in done.stderr and cause in done.stderr, done.stderr
    assert "moved back to version 1" in done.stderr and "terraform apply that records it failed" in done.stderr
    assert "next: run `terraform apply -var-file=bentoctl.tfvars`" in done.stderr
    assert live_alias()["FunctionVersion"] == "1" and weights() == {}, "the alias is safe although apply failed"
    assert release_file(workdir)["pinned_version"] == "1"
    alias_path = f"/2015-03-31/functions/xgb-classifier/aliases/{operator_config.ALIAS_NAME}"
    back = next(
        i
        for i, seen in enumerate(lambda_api.seen)
        if seen.method == "PUT"
        and seen.path == alias_path
        and json.loads(seen.body).get("FunctionVersion") == "1"
        and not json.loads(seen.body).get("RoutingConfig", {}).get("AdditionalVersionWeights")
    )
    reconcile = max(
        i for i, seen in enumerate(lambda_api.seen) if seen.method == "GET" and seen.path.endswith("/versions")
    )
    assert back < reconcile, "one UpdateAlias first, then the apply that reconciles"


# Rollback among several versions


def test_rollback_goes_one_version_back_from_the_newest_from_a_pin_and_ends_a_canary_on_its_base(
    aws, workdir, server, built_bento, tmp_path
):
    assert deploy(workdir, server.url, tmp_path, built_bento).returncode == 0
    for _ in range(3):
        assert new_image_version(workdir, server, built_bento, tmp_path).returncode == 0
    assert live_alias()["FunctionVersion"] == "4"

    back = run_deploy("rollback", workdir, server.url, tmp_path)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "version 4 → 3" in back.stdout and live_alias()["FunctionVersion"] == "3"

    pinned = run_deploy("rollback", workdir, server.url, tmp_path)
    assert pinned.returncode == 0, pinned.stderr
    assert "version 3 → 2" in pinned.stdout and live_alias()["FunctionVersion"] == "2"

    # A canary that `make deploy` left at its share (interrupted): base 3, 10 % on version 4.
    lambda_client().update_alias(
        FunctionName="xgb-classifier",
        Name=operator_config.ALIAS_NAME,
        FunctionVersion="3",
        RoutingConfig={"AdditionalVersionWeights": {"4": 0.1}},
    )
    (workdir / "release.auto.tfvars.json").write_text(json.dumps({"pinned_version": "", "canary_base_version": "3"}))
    canary = run_deploy("rollback", workdir, server.url, tmp_path)
    assert canary.returncode == 0, canary.stdout + canary.stderr
    assert "version 3, 10% on version 4 (a canary: ended) → 3" in canary.stdout
    assert live_alias()["FunctionVersion"] == "3" and weights() == {}
    assert release_file(workdir)["pinned_version"] == "3"


# The account's concurrency, before apply


def account_settings(limit: int, unreserved: int):
    """Lambda's GetAccountSettings, which moto does not answer, as an account with these numbers would."""

    def rule(seen) -> tuple | None:
        if seen.method == "GET" and seen.path.split("?")[0].rstrip("/").endswith("/account-settings"):
            return json_answer(
                200,
                {
                    "AccountLimit": {"ConcurrentExecutions": limit, "UnreservedConcurrentExecutions": unreserved},
                    "AccountUsage": {"FunctionCount": 0},
                },
            )
        return None

    return rule


def test_a_reserved_concurrency_the_account_cannot_give_stops_at_the_prerequisites(
    aws, moto_url, workdir, server, built_bento, tmp_path
):
    set_spec(workdir, reserved_concurrency=5)
    with Gateway(moto_url, account_settings(10, 10)) as lambda_api:
        new_account = deploy(
            workdir, server.url, tmp_path, built_bento, env={"AWS_ENDPOINT_URL_LAMBDA": lambda_api.url}
        )
    assert new_account.returncode == 1, new_account.stdout
    assert "failed at step 'prerequisites" in new_account.stderr
    assert "reserved_concurrency 5 is more than this account allows" in new_account.stderr
    assert "limit is 10, 10 of it unreserved" in new_account.stderr and "at most 0" in new_account.stderr
    assert "next: set reserved_concurrency" in new_account.stderr
    assert not any(argv[0] in ("init", "apply") for argv in new_account.calls("terraform"))

    set_spec(workdir, reserved_concurrency=50)
    with Gateway(moto_url, account_settings(1000, 1000)) as lambda_api:
        done = deploy(workdir, server.url, tmp_path, built_bento, env={"AWS_ENDPOINT_URL_LAMBDA": lambda_api.url})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "may reserve at most 900" in done.stdout

    lambda_client().put_function_concurrency(FunctionName="xgb-classifier", ReservedConcurrentExecutions=50)
    set_spec(workdir, reserved_concurrency=901)
    with Gateway(moto_url, account_settings(1000, 950)) as lambda_api:
        more = deploy(workdir, server.url, tmp_path, built_bento, env={"AWS_ENDPOINT_URL_LAMBDA": lambda_api.url})
    assert more.returncode == 1, more.stdout
    assert "(50 reserved by xgb-classifier now)" in more.stderr and "at most 900" in more.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    "current, wanted, canary, target",
    [
        ("4", None, False, "3"),  # the previous version, not the oldest
        ("3", None, False, "2"),  # from a pin at 3
        ("3", None, True, "3"),  # a canary on base 3: its base
        ("3", "3", True, "3"),  # --to the base during a canary ends it
        ("3", "1", True, "1"),
    ],
)
def test_rollback_target_among_four_versions(current, wanted, canary, target):
    from deploy.release import rollback_target

    assert rollback_target(current, [1, 2, 3, 4], wanted, canary=canary) == target


@pytest.mark.unit
@pytest.mark.parametrize("wanted, message", [("3", "already serves version 3"), ("x", "not published")])
def test_rollback_target_refuses_what_it_cannot_do(wanted, message):
    from deploy.release import rollback_target
    from deploy.steps import StepFailed

    with pytest.raises(StepFailed, match=message):
        rollback_target("3", [1, 2, 3, 4], wanted)
