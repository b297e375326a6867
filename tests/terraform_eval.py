"""main.tf's choice of what the live alias serves, evaluated by Terraform itself.

The alias resource (``aws_lambda_alias.live``) takes ``function_version`` and its dynamic
``routing_config`` from expressions in main.tf. This module lifts those expressions out of
main.tf as written (text, not a re-serialisation), together with every local and variable block
they reach, replaces the one resource reference among them, ``aws_lambda_function.service.version``
(known only after apply), by a variable, and has the real Terraform core evaluate the result with
``terraform console``: a configuration of variables and locals only needs no provider and no
network. Variables' validation blocks come along, so a value main.tf would refuse is refused here.

The tests (tests/test_alias_choice.py) and the Terraform stand-in's ``point_alias``
(tests/standins/terraform.py) take their answer from here, so neither restates the logic.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

MAIN_TF = Path(__file__).resolve().parent.parent / "main.tf"
ALIAS = ("aws_lambda_alias", "live")
NEWEST = "aws_lambda_function.service.version"  # the function's newest published version
NEWEST_VARIABLE = "newest_published_version"


class EvaluationError(RuntimeError):
    """main.tf's expressions could not be lifted out, or Terraform refused or failed to evaluate them."""


@dataclass(frozen=True)
class AliasChoice:
    live_version: str  # the alias's function_version
    weights: dict[str, float]  # routing_config's additional_version_weights ({} without a canary)


# ---------------------------------------------------------------------------- reading HCL text


def _skip_string(text: str, at: int) -> int:
    """Index just past the quoted string (with its ${...} interpolations) that starts at ``at``."""
    i = at + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1
        if text.startswith("${", i):
            i = _skip_braces(text, i + 1)
            continue
        i += 1
    raise EvaluationError(f"unterminated string at offset {at}")


def _skip_comment(text: str, at: int) -> int:
    if text.startswith("/*", at):
        end = text.find("*/", at + 2)
        return len(text) if end < 0 else end + 2
    end = text.find("\n", at)
    return len(text) if end < 0 else end


def _is_comment(text: str, at: int) -> bool:
    return text[at] == "#" or text.startswith("//", at) or text.startswith("/*", at)


def _skip_braces(text: str, at: int) -> int:
    """Index just past the bracketed group (``{``, ``[`` or ``(``) that opens at ``at``."""
    closing = {"{": "}", "[": "]", "(": ")"}
    stack, i = [closing[text[at]]], at + 1
    while i < len(text):
        char = text[i]
        if char == '"':
            i = _skip_string(text, i)
            continue
        if _is_comment(text, i):
            i = _skip_comment(text, i)
            continue
        if char in closing:
            stack.append(closing[char])
        elif char in "}])":
            if char != stack.pop():
                raise EvaluationError(f"unbalanced {char!r} at offset {i}")
            if not stack:
                return i + 1
        i += 1
    raise EvaluationError(f"unclosed group at offset {at}")


def _blocks(text: str, kind: str, *labels: str) -> list[str]:
    """The bodies (between the braces) of the blocks ``kind "label" ... {`` that open a line."""
    label_pattern = "".join(rf'\s+"{re.escape(label)}"' for label in labels)
    pattern = re.compile(rf"^[ \t]*{re.escape(kind)}{label_pattern}\s*{{", re.MULTILINE)
    bodies = []
    for match in pattern.finditer(text):
        end = _skip_braces(text, match.end() - 1)
        bodies.append(text[match.end() : end - 1])
    return bodies


def _block(text: str, kind: str, *labels: str) -> str:
    found = _blocks(text, kind, *labels)
    if len(found) != 1:
        raise EvaluationError(f"main.tf has {len(found)} blocks {kind} {' '.join(labels)}, expected one")
    return found[0]


def _attributes(body: str) -> dict[str, str]:
    """The attributes ``name = expression`` directly in a block body (not in nested blocks), as written."""
    found, i = {}, 0
    attribute = re.compile(r"([A-Za-z_][\w-]*)\s*=(?!=)\s*")
    nested = re.compile(r'([A-Za-z_][\w-]*)(\s+"[^"]*")*\s*\{')
    while i < len(body):
        if body[i].isspace():
            i += 1
            continue
        if _is_comment(body, i):
            i = _skip_comment(body, i)
            continue
        match = attribute.match(body, i)
        if match:
            start = j = match.end()
            while j < len(body) and body[j] != "\n":
                if body[j] == '"':
                    j = _skip_string(body, j)
                elif body[j] in "{[(":
                    j = _skip_braces(body, j)
                elif _is_comment(body, j):
                    break
                else:
                    j += 1
            found[match.group(1)] = body[start:j].strip()
            i = j
            continue
        match = nested.match(body, i)
        if match:
            i = _skip_braces(body, match.end() - 1)
            continue
        raise EvaluationError(f"cannot read main.tf near {body[i : i + 60]!r}")
    return found


# ---------------------------------------------------------------------------- the configuration


def _references(expression: str, prefix: str) -> set[str]:
    return set(re.findall(rf"\b{prefix}\.([A-Za-z_][\w-]*)", expression))


@cache
def lifted_configuration(main_tf_text: str) -> tuple[str, str]:
    """A configuration of main.tf's own blocks and expressions, and the expression that gives the
    alias's choice (function_version and the routing_config blocks) as JSON."""
    alias = _block(main_tf_text, "resource", *ALIAS)
    function_version = _attributes(alias)["function_version"]
    routing = _blocks(alias, "dynamic", "routing_config")
    if len(routing) != 1:
        raise EvaluationError(f"{'.'.join(ALIAS)} has {len(routing)} dynamic routing_config blocks, expected one")
    for_each = _attributes(routing[0])["for_each"]
    content = _blocks(routing[0], "content")
    if len(content) != 1:
        raise EvaluationError("the dynamic routing_config block has no single content block")
    weights = _attributes(content[0])["additional_version_weights"]

    locals_ = {}
    for body in _blocks(main_tf_text, "locals"):
        locals_.update(_attributes(body))
    needed, todo = {}, [function_version, for_each, weights]
    while todo:
        for name in _references(todo.pop(), "local") - set(needed):
            if name not in locals_:
                raise EvaluationError(f"local.{name} is not declared in main.tf")
            needed[name] = locals_[name]
            todo.append(needed[name])

    expressions = [function_version, for_each, weights, *needed.values()]
    lifted = {name: value.replace(NEWEST, f"var.{NEWEST_VARIABLE}") for name, value in needed.items()}
    for name, value in lifted.items():
        left = re.findall(r"\b(?:aws_[\w-]+|data)\.[\w.-]+", value)
        if left:
            raise EvaluationError(f"local.{name} refers to {left}, which only a plan knows; only {NEWEST} is replaced")
    variables = set().union(*(_references(e, "var") for e in expressions))
    parts = [
        f"# Lifted from main.tf: {'.'.join(ALIAS)}, the locals and variables it reaches; the function's "
        f"newest version is var.{NEWEST_VARIABLE}\n"
    ]
    parts += [f'variable "{name}" {{{_block(main_tf_text, "variable", name)}}}\n' for name in sorted(variables)]
    parts.append(f'variable "{NEWEST_VARIABLE}" {{\n  type = string\n}}\n')
    parts.append("locals {\n" + "".join(f"  {name} = {value}\n" for name, value in lifted.items()) + "}\n")
    choice = (
        f"jsonencode({{ live_version = ({function_version}), "
        f"routing_config = [for key, value in ({for_each}) : {{ additional_version_weights = ({weights}) }}] }})"
    )
    return "\n".join(parts), choice


# ---------------------------------------------------------------------------- Terraform


def terraform_binary() -> str:
    """The real terraform: not the stand-in that tests put first on PATH."""
    standins = str(Path(__file__).resolve().parent / "standins")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if not p.startswith(standins))
    found = shutil.which("terraform", path=path) or "/usr/local/bin/terraform"
    if not Path(found).is_file():
        raise EvaluationError("terraform is not installed (needed to evaluate main.tf's expressions)")
    return found


@cache
def _workdir(configuration: str) -> Path:
    digest = hashlib.sha256(configuration.encode()).hexdigest()[:16]
    work = Path(tempfile.gettempdir()) / f"terraform-eval-{os.getuid()}-{digest}"
    work.mkdir(exist_ok=True)
    (work / "main.tf").write_text(configuration)
    return work


def evaluate(
    pinned_version: str = "",
    canary_base_version: str = "",
    canary_percent: int = 0,
    newest_version: str = "1",
    main_tf: Path = MAIN_TF,
    **other_variables,
) -> AliasChoice:
    """What main.tf's alias serves for these values, as ``terraform console`` evaluates it."""
    configuration, choice = lifted_configuration(main_tf.read_text())
    values = {
        "pinned_version": pinned_version,
        "canary_base_version": canary_base_version,
        "canary_percent": canary_percent,
        NEWEST_VARIABLE: newest_version,
        **other_variables,
    }
    declared = set(re.findall(r'^variable "([\w-]+)"', configuration, re.MULTILINE))
    result = _console(configuration, {name: values[name] for name in declared & set(values)}, choice)
    if _failed(result):
        raise EvaluationError(
            f"terraform console refused or failed ({result.returncode}) for {values}:\n"
            f"{_plain(result.stderr)[:2000]}{_plain(result.stdout)[:1000]}"
        )
    answer = json.loads(json.loads(_value(result)))
    blocks = answer["routing_config"]
    if len(blocks) > 1:
        raise EvaluationError(f"more than one routing_config block: {blocks}")
    weights = blocks[0]["additional_version_weights"] if blocks else {}
    return AliasChoice(str(answer["live_version"]), {str(k): float(v) for k, v in weights.items()})


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _failed(result: subprocess.CompletedProcess) -> bool:
    """terraform console exits 0 after some errors (a failed validation among them), printing
    the error on stderr and a warning before the value: an error printed is a failure."""
    return result.returncode != 0 or "Error:" in _plain(result.stderr) or not _value(result)


def _value(result: subprocess.CompletedProcess) -> str:
    """The value console printed: its last line (any warning box comes first)."""
    lines = [line for line in _plain(result.stdout).splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


# ---------------------------------------------------------------------------- one variable's validation


def _console(configuration: str, variables: dict, expression: str) -> subprocess.CompletedProcess:
    work = _workdir(configuration)
    argv = [terraform_binary(), "console"]
    for name, value in sorted(variables.items()):
        argv += ["-var", f"{name}={value if isinstance(value, str) else json.dumps(value)}"]
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "CHECKPOINT_DISABLE": "1",
        "TF_IN_AUTOMATION": "1",
        "TF_CLI_CONFIG_FILE": os.devnull,
        "TF_INPUT": "0",
    }
    return subprocess.run(argv, input=expression + "\n", cwd=work, env=env, capture_output=True, text=True, timeout=60)


def variable_accepts(name: str, value, main_tf: Path = MAIN_TF) -> bool:
    """Whether main.tf's ``variable "name"`` block, as written (type and validation blocks),
    takes ``value``, as Terraform decides it. A value that is no HCL literal of the type, or a
    validation that fails, is a refusal; any other failure is an error."""
    configuration = f'variable "{name}" {{{_block(main_tf.read_text(), "variable", name)}}}\n'
    result = _console(configuration, {name: value}, f"var.{name}")
    if not _failed(result):
        return True
    errors = _plain(result.stderr)
    if "Invalid value for variable" in errors or "Invalid value for input variable" in errors:
        return False
    raise EvaluationError(f"terraform console failed ({result.returncode}) for {name} = {value!r}:\n{errors[:2000]}")
