"""main.tf's expressions evaluated by the real Terraform core, for tests that check what an
expression gives rather than how it is written; and this evaluator's own tests.

``evaluate(expression, **variables)`` takes HCL text (``"local.preflight_routes"``), the locals
it reaches (transitively, from python-hcl2's parse of main.tf) and the variables they use
(declared with main.tf's type and default), and has ``terraform console`` evaluate it in a
configuration of variables and locals only: no provider, no network. A reference to a resource
or data source is a value only a plan knows: it becomes the string of its own address, or the
value given for it in ``known``, so an answer that uses one shows where it came from.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.terraform_files import MAIN_TF, parsed

pytestmark = pytest.mark.unit

REFERENCE = re.compile(r"(?<![\w.\"])(?:data\.)?aws_\w+\.\w+(?:\[[^\]]*\])?(?:\.\w+)*")
LOCAL = re.compile(r"\blocal\.(\w+)")
VARIABLE = re.compile(r"\bvar\.(\w+)")
ANSWER = "evaluated_expression"


class EvaluationError(RuntimeError):
    """The expression could not be put together from main.tf, or Terraform refused it."""


def whole_interpolation(text: str) -> str | None:
    """The expression of a parsed string that is one ``${...}`` and nothing else, else None."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    depth = 0
    for index, char in enumerate(text):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and index > 0:
            return text[2:-1] if index == len(text) - 1 else None
    return None


def quoted_template(text: str) -> str:
    """A parsed string back as an HCL quoted template: escapes outside ``${...}``, none inside."""
    out, depth = [], 0
    for index, char in enumerate(text):
        if depth == 0 and text.startswith("${", index):
            depth = 1
            out.append("$")
            continue
        if depth:
            depth += {"{": 1, "}": -1}.get(char, 0) if out[-1] != "$" else 0
            out.append(char)
            continue
        out.append({"\\": "\\\\", '"': '\\"', "\n": "\\n"}.get(char, char))
    return '"' + "".join(out) + '"'


def to_hcl(value) -> str:
    """A python-hcl2 value (expressions as ``${...}`` strings) as HCL expression text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        expression = whole_interpolation(value)
        return expression if expression is not None else quoted_template(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_hcl(item) for item in value) + "]"
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            expression = whole_interpolation(key)
            items.append(f"{'(' + expression + ')' if expression is not None else json.dumps(key)} = {to_hcl(item)}")
        return "{\n" + "\n".join(items) + "\n}"
    raise EvaluationError(f"cannot write {value!r} as HCL")


@functools.cache
def _parsed_text(text: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".tf") as handle:
        handle.write(text)
        handle.flush()
        return parsed(Path(handle.name))


def document(main_tf: Path = MAIN_TF) -> dict:
    """main.tf as python-hcl2 parses it, parsed once per content."""
    return _parsed_text(main_tf.read_text())


def configuration(expression: str, main_tf: Path = MAIN_TF, known: dict | None = None) -> str:
    """The variables-and-locals configuration whose local ANSWER is ``expression``."""
    document_ = document(main_tf)
    locals_ = {key: value for block in document_.get("locals", []) for key, value in block.items()}
    declared = {name: body for block in document_.get("variable", []) for name, body in block.items()}
    known = known or {}

    def placeholders(text: str) -> str:
        return REFERENCE.sub(lambda match: to_hcl(known.get(match.group(0), match.group(0))), text)

    needed: dict[str, str] = {}
    todo = [expression]
    while todo:
        for name in LOCAL.findall(todo.pop()):
            if name in needed:
                continue
            if name not in locals_:
                raise EvaluationError(f"local.{name} is not declared in {main_tf.name}")
            needed[name] = placeholders(to_hcl(locals_[name]))
            todo.append(needed[name])
    texts = [expression, *needed.values()]
    parts = []
    for name in sorted({name for text in texts for name in VARIABLE.findall(text)}):
        if name not in declared:
            raise EvaluationError(f"var.{name} is not declared in {main_tf.name}")
        body = declared[name]
        default = f"\n  default = {to_hcl(body['default'])}" if "default" in body else ""
        kind = whole_interpolation(body["type"]) or body["type"]  # `string` parses bare, `list(string)` as ${...}
        parts.append(f'variable "{name}" {{\n  type = {kind}{default}\n}}\n')
    lines = "".join(f"{name} = {text}\n" for name, text in needed.items())
    parts.append(f"locals {{\n{lines}{ANSWER} = {placeholders(expression)}\n}}\n")
    return "\n".join(parts)


def terraform_binary() -> str:
    """The real terraform, not a stand-in a test put first on PATH."""
    standins = str(Path(__file__).resolve().parent / "standins")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(standins))
    found = shutil.which("terraform", path=path)
    if found is None:
        pytest.skip("terraform is not on PATH (needed to evaluate main.tf's expressions)")
    return found


def evaluate(expression: str, main_tf: Path = MAIN_TF, known: dict | None = None, **variables):
    """What ``expression`` gives in main.tf with these variables (main.tf's defaults otherwise)."""
    text = configuration(expression, main_tf, known)
    work = Path(tempfile.gettempdir()) / f"tf-evaluate-{os.getuid()}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    work.mkdir(exist_ok=True)
    (work / "main.tf").write_text(text)
    values = work / f"values-{hashlib.sha256(json.dumps(variables, sort_keys=True).encode()).hexdigest()[:16]}.json"
    declared = set(re.findall(r'^variable "(\w+)"', text, re.MULTILINE))
    values.write_text(json.dumps({name: value for name, value in variables.items() if name in declared}))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "CHECKPOINT_DISABLE": "1",
        "TF_CLI_CONFIG_FILE": os.devnull,
        "TF_INPUT": "0",
    }
    result = subprocess.run(
        [terraform_binary(), "console", "-compact-warnings", f"-var-file={values}"],
        input=f"jsonencode(local.{ANSWER})\n",
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 or not result.stdout.strip():
        plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stderr + result.stdout)
        raise EvaluationError(f"terraform console failed ({result.returncode}) for {variables}:\n{plain[:3000]}")
    return json.loads(json.loads(result.stdout.strip().splitlines()[-1]))


################################################################################
# The evaluator itself
################################################################################


def test_locals_variables_and_defaults_come_from_main_tf():
    assert evaluate("local.alias_resource", deployment_name="svc") == "svc:live"
    assert evaluate("local.function_env", deployment_name="svc", timeout=10) == {"XGB_REQUEST_TIMEOUT_S": "9"}
    assert evaluate("local.function_env", deployment_name="svc", timeout=3) == {"XGB_REQUEST_TIMEOUT_S": "2"}


def test_a_resource_reference_becomes_its_address_or_the_known_value():
    assert evaluate("local.newest_version") == "aws_lambda_function.service.version"
    assert evaluate("local.newest_version", known={"aws_lambda_function.service.version": "7"}) == "7"


def test_the_answer_follows_the_file(tmp_path: Path):
    text = MAIN_TF.read_text()
    written = 'alias_name     = "live"'
    assert written in text, "main.tf changed: update this mutation"
    changed = tmp_path / "main.tf"
    changed.write_text(text.replace(written, 'alias_name     = "current"'))
    assert evaluate("local.alias_resource", main_tf=changed, deployment_name="svc") == "svc:current"


def test_an_undeclared_local_is_refused():
    with pytest.raises(EvaluationError, match="local.nowhere is not declared"):
        configuration("local.nowhere")


def test_templates_keep_their_quotes_and_escapes():
    assert to_hcl('a "b" ${c("d")} \\ e') == '"a \\"b\\" ${c("d")} \\\\ e"'
    assert to_hcl("${a}-${b}") == '"${a}-${b}"'
    assert to_hcl("${a ? {x = 1} : {}}") == "a ? {x = 1} : {}"
