"""Which route of main.tf's HTTP API a request meets, and with what authorization, for every
auth setting with and without CORS: main.tf's routes are evaluated by Terraform, then a request
is routed the way API Gateway documents ("Routing API requests" for HTTP APIs):

- a route of the request's exact path wins over one with a greedy ``{proxy+}`` variable;
- among them, a route of the request's method wins over ``ANY``, which takes the methods the path
  has no route of its own for; nothing matched (no ``$default`` route here): 404;
- with CORS configured, API Gateway answers a preflight (OPTIONS with Origin and
  Access-Control-Request-Method) itself, unless the matched route needs authorization: a browser
  sends a preflight without credentials, so the authorizer refuses it.

The expected answers come from the promise in docs/deploy.md ("What gets created") and
docs/security.md: the prediction routes take the auth setting, a browser's preflight succeeds
whatever it is, and a wrong method still gets the service's 405.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.terraform_eval import MAIN_TF, as_object, attributes, block, evaluate, mutated_main_tf

pytestmark = pytest.mark.unit

AUTHORIZATION = {"none": "NONE", "iam": "AWS_IAM", "jwt": "JWT"}
ORIGIN = "https://app.example.com"


def api_of(main_tf: Path = MAIN_TF, **settings) -> tuple[dict[str, dict], dict | None]:
    """The API's routes (route key -> authorization_type, authorizer_id, target) and its
    cors_configuration (None: CORS off), as main.tf makes them for these settings."""
    route = attributes(block("resource", "aws_apigatewayv2_route", "service", main_tf=main_tf))
    api = block("resource", "aws_apigatewayv2_api", "service", main_tf=main_tf)
    cors = block("dynamic", "cors_configuration", inside=api)

    def per_route(attribute: str) -> str:
        return re.sub(r"\beach\.(value|key)\b", "route_key", route[attribute])

    fields = ", ".join(f"{name} = {per_route(name)}" for name in ("authorization_type", "authorizer_id", "target"))
    routes = f"{{ for route_key in {route['for_each']} : route_key => {{ {fields} }} }}"
    cors_on = f"length({attributes(cors)['for_each']}) > 0"
    content = as_object(block("content", inside=cors))
    answer = evaluate(f"{{ routes = {routes}, cors = {cors_on} ? {content} : null }}", main_tf, **settings)
    return answer["routes"], answer["cors"]


@functools.cache
def api_for(auth: str, cors: bool) -> tuple[dict[str, dict], dict | None]:
    return api_of(endpoint="http_api", auth=auth, cors_allow_origins=[ORIGIN] if cors else [])


def path_matches(template: str, path: str) -> tuple[bool, bool]:
    """(matches, through a greedy variable) for a route path such as /static_content/{proxy+}."""
    want, have = template.strip("/").split("/"), path.strip("/").split("/")
    if want and want[-1].endswith("+}"):
        return len(have) >= len(want) and all(
            w == h or w.startswith("{") for w, h in zip(want[:-1], have, strict=False)
        ), True
    return len(want) == len(have) and all(w == h or w.startswith("{") for w, h in zip(want, have, strict=True)), False


@dataclass(frozen=True)
class Outcome:
    answered_by: str  # "function", "cors" (API Gateway's preflight answer), "authorizer" (refused), "gateway 404"
    route: str | None = None
    authorization: str | None = None


def gateway(table: dict, cors: dict | None, method: str, path: str, credentials: bool = False, **headers) -> Outcome:
    """What API Gateway does with one request, by its documented rules (module docstring)."""
    found = []
    for key, route in table.items():
        route_method, route_path = key.split(" ", 1)
        matches, greedy = path_matches(route_path, path)
        if matches and route_method in (method, "ANY"):
            found.append((greedy, route_method == "ANY", key, route))
    if not found:
        return Outcome("gateway 404")
    _, _, key, route = min(found)
    authorization = route["authorization_type"]
    preflight = method == "OPTIONS" and "origin" in headers and "access_control_request_method" in headers
    if preflight and cors is not None and authorization == "NONE":
        allowed = (
            headers["origin"] in cors["allow_origins"]
            and headers["access_control_request_method"] in (cors["allow_methods"])
        )
        return Outcome("cors" if allowed else "cors refused", key, authorization)
    if authorization != "NONE" and (preflight or not credentials):
        return Outcome("authorizer", key, authorization)
    return Outcome("function", key, authorization)


SETTINGS = [(auth, cors) for auth in AUTHORIZATION for cors in (False, True)]
IDS = [f"auth={auth}-cors={'on' if cors else 'off'}" for auth, cors in SETTINGS]


@pytest.fixture(params=SETTINGS, ids=IDS)
def api(request):
    auth, cors = request.param
    return auth, *api_for(auth, cors)


PREDICTION_PATHS = ["/classify", "/predict_proba"]


@pytest.mark.parametrize("path", PREDICTION_PATHS)
def test_predictions_take_the_auth_setting(api, path):
    auth, table, cors = api
    outcome = gateway(table, cors, "POST", path, credentials=True)
    assert outcome == Outcome("function", f"ANY {path}", AUTHORIZATION[auth])
    assert (table[outcome.route]["authorizer_id"] is not None) == (auth == "jwt")
    if auth != "none":
        assert gateway(table, cors, "POST", path).answered_by == "authorizer"


@pytest.mark.parametrize("path", PREDICTION_PATHS)
def test_a_wrong_method_reaches_the_service_for_its_405(api, path):
    auth, table, cors = api
    for method in ("GET", "PUT", "DELETE"):
        assert gateway(table, cors, method, path, credentials=True) == Outcome(
            "function", f"ANY {path}", AUTHORIZATION[auth]
        )
    # An OPTIONS that is no preflight (no CORS headers) is a wrong method too.
    assert gateway(table, cors, "OPTIONS", path, credentials=True).answered_by == "function"


@pytest.mark.parametrize("path", PREDICTION_PATHS)
@pytest.mark.parametrize("auth", list(AUTHORIZATION))
def test_a_browsers_preflight_succeeds_whatever_the_auth(auth, path):
    table, cors = api_for(auth, cors=True)
    preflight = dict(origin=ORIGIN, access_control_request_method="POST")
    outcome = gateway(table, cors, "OPTIONS", path, **preflight)
    assert outcome.answered_by == "cors" and outcome.authorization == "NONE", outcome
    other = gateway(
        table, cors, "OPTIONS", path, origin="https://elsewhere.example", access_control_request_method="POST"
    )
    assert other.answered_by == "cors refused"


def test_the_public_routes_stay_public_and_others_are_404(api):
    _, table, cors = api
    for path in ("/", "/docs.json", "/livez", "/readyz", "/static_content/swagger-ui/index.css"):
        outcome = gateway(table, cors, "GET", path)
        assert outcome.answered_by == "function" and outcome.authorization == "NONE", (path, outcome)
    for method, path in (("DELETE", "/livez"), ("GET", "/nowhere"), ("POST", "/classify/extra")):
        assert gateway(table, cors, method, path, credentials=True) == Outcome("gateway 404"), (method, path)


def test_every_route_invokes_the_function():
    table, _ = api_for("jwt", cors=True)
    assert {route["target"] for route in table.values()} == {"integrations/aws_apigatewayv2_integration.lambda[0].id"}


def test_without_the_preflight_routes_the_authorizer_meets_the_preflight(tmp_path: Path):
    """main.tf with the prediction routes alone (as before the OPTIONS routes): the preflight fails."""
    before = mutated_main_tf(tmp_path, "setunion(local.routes, local.preflight_routes)", "local.routes")
    settings = dict(endpoint="http_api", auth="iam", cors_allow_origins=[ORIGIN])
    outcome = gateway(
        *api_of(before, **settings),
        "OPTIONS",
        "/classify",
        origin=ORIGIN,
        access_control_request_method="POST",
    )
    assert outcome == Outcome("authorizer", "ANY /classify", "AWS_IAM")


def test_the_function_url_has_no_routes():
    assert api_of(endpoint="function_url", auth="iam", cors_allow_origins=[ORIGIN])[0] == {}


def test_the_router_follows_the_documented_priority():
    table = {
        "ANY /pets": {"authorization_type": "AWS_IAM"},
        "OPTIONS /pets": {"authorization_type": "NONE"},
        "GET /pets/{id}": {"authorization_type": "NONE"},
        "GET /pets/{proxy+}": {"authorization_type": "JWT"},
    }
    assert gateway(table, None, "OPTIONS", "/pets").route == "OPTIONS /pets"
    assert gateway(table, None, "PATCH", "/pets").route == "ANY /pets"
    assert gateway(table, None, "GET", "/pets/6").route == "GET /pets/{id}"
    assert gateway(table, None, "GET", "/pets/6/toys").route == "GET /pets/{proxy+}"
    assert gateway(table, None, "GET", "/cats").answered_by == "gateway 404"
