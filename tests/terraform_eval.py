"""main.tf's expressions evaluated by the real Terraform core, lifted from main.tf as written.

``evaluate(expression, **variables)`` takes HCL text (``"local.preflight_routes"``, or an
attribute's expression from ``expression("resource", "aws_kms_key", "alarms", "policy")``), the
locals it reaches (transitively) and the variable blocks they use, all as main.tf writes them
(text, not a re-serialisation), and has ``terraform console`` evaluate it in a configuration of
variables and locals only: no provider, no network. A reference to a resource or data source is a
value only a plan knows: it becomes the value given for it in ``known``, or the string of its own
address, so an answer that uses one shows where it came from (``only_known`` refuses it instead).

A variable given a value keeps its validation blocks, so a value main.tf would refuse is refused
here; a variable left at its default loses them, so an evaluation never fails on a default that
its own validation refuses (image_repository's "") and that the caller did not ask about.

On this: ``alias_choice`` (what ``aws_lambda_alias.live`` serves; tests/deploy/test_alias_choice.py and
the Terraform stand-in's ``point_alias``) and ``variable_accepts`` (one variable block's verdict).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MAIN_TF = Path(__file__).resolve().parent.parent / "main.tf"
ANSWER = "evaluated_expression"
REFERENCE = re.compile(r"(?<![\w.\"])(?:data\.)?aws_\w+\.\w+(?:\[[^\]]*\])?(?:\.\w+)*")
ALIAS = ("aws_lambda_alias", "live")
NEWEST = "aws_lambda_function.service.version"  # the function's newest published version


def mutated_main_tf(directory: Path, written: str, replacement: str, main_tf: Path = MAIN_TF) -> Path:
    """A copy of main.tf in ``directory`` with ``written`` (which must be in it) replaced, for
    tests that show an answer comes from the file."""
    text = main_tf.read_text()
    assert written in text, f"{main_tf.name} no longer holds {written!r}: update this mutation"
    copy = Path(directory) / main_tf.name
    copy.write_text(text.replace(written, replacement))
    return copy


class EvaluationError(RuntimeError):
    """An expression could not be lifted out of main.tf, or Terraform refused or failed to evaluate it."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused  # a variable's value was refused (its type or a validation block)


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


def _without_comments(text: str) -> str:
    """``text`` with its comments removed (line ends kept), strings untouched."""
    out, i, start = [], 0, 0
    while i < len(text):
        if text[i] == '"':
            i = _skip_string(text, i)
        elif _is_comment(text, i):
            out.append(text[start:i])
            i = start = _skip_comment(text, i)
        else:
            i += 1
    return "".join(out) + text[start:]


def _spans(text: str, kind: str, *labels: str) -> list[tuple[int, int, int]]:
    """(start of the header, start of the body, end of the block) of each ``kind "label"... {``
    that opens a line; labels beyond those given may follow."""
    label_pattern = "".join(rf'\s+"{re.escape(label)}"' for label in labels)
    pattern = re.compile(rf'^[ \t]*{re.escape(kind)}{label_pattern}(?:\s+"[^"]*")*\s*{{', re.MULTILINE)
    return [(m.start(), m.end(), _skip_braces(text, m.end() - 1)) for m in pattern.finditer(text)]


def _blocks(text: str, kind: str, *labels: str) -> list[str]:
    """The bodies (between the braces) of the blocks ``kind "label" ... {`` with exactly these labels."""
    label_pattern = "".join(rf'\s+"{re.escape(label)}"' for label in labels)
    exact = re.compile(rf"[ \t]*{re.escape(kind)}{label_pattern}\s*{{")
    return [text[body : end - 1] for start, body, end in _spans(text, kind, *labels) if exact.match(text, start)]


def block(kind: str, *labels: str, main_tf: Path = MAIN_TF, inside: str | None = None) -> str:
    """The body of the one block ``kind "label"... {`` in main.tf (or in the block body ``inside``)."""
    found = _blocks(main_tf.read_text() if inside is None else inside, kind, *labels)
    if len(found) != 1:
        raise EvaluationError(f"{len(found)} blocks {kind} {' '.join(labels)}, expected one")
    return found[0]


def block_names(kind: str, *labels: str, main_tf: Path = MAIN_TF) -> list[str]:
    """The next label of every block ``kind "label"...`` in main.tf, e.g. every alarm's name."""
    text = main_tf.read_text()
    label = re.compile(r'\s+"([^"]*)"')
    names = []
    for start, _, _ in _spans(text, kind, *labels):
        header = text[start : text.index("{", start)]
        names.append(label.findall(header)[len(labels)])
    return names


def attributes(body: str) -> dict[str, str]:
    """The attributes ``name = expression`` directly in a block body (not in nested blocks), as
    written, comments left out."""
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
            found[match.group(1)] = _without_comments(body[start:j]).strip()
            i = j
            continue
        match = nested.match(body, i)
        if match:
            i = _skip_braces(body, match.end() - 1)
            continue
        raise EvaluationError(f"cannot read HCL near {body[i : i + 60]!r}")
    return found


def expression(kind: str, *labels_and_attribute: str, main_tf: Path = MAIN_TF) -> str:
    """The expression text of one attribute of a top-level block, as written:
    ``expression("resource", "aws_kms_key", "alarms", "policy") == "local.alarm_key_policy"``."""
    *labels, name = labels_and_attribute
    found = attributes(block(kind, *labels, main_tf=main_tf))
    if name not in found:
        raise EvaluationError(f"{kind} {' '.join(labels)} has no attribute {name}")
    return found[name]


def as_object(body: str) -> str:
    """A block body's attributes as one object expression (a dynamic block's ``content``)."""
    return "{\n" + "".join(f"{name} = {value}\n" for name, value in attributes(body).items()) + "}"


# ---------------------------------------------------------------------------- the configuration


def literal(value) -> str:
    """A Python value (JSON's kinds) as an HCL literal."""
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(str(key))} = {literal(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(literal(item) for item in value) + "]"
    return json.dumps(value)


def _references(text: str, prefix: str) -> list[str]:
    return re.findall(rf"\b{prefix}\.([A-Za-z_][\w-]*)", text)


def _without_validation(body: str) -> str:
    for start, _, end in reversed(_spans(body, "validation")):
        body = body[:start] + body[end:]
    return body


@cache
def _configuration(text: str, expression: str, known_json: str, given: frozenset, only_known: bool) -> str:
    known = json.loads(known_json)
    locals_ = {name: value for body in _blocks(text, "locals") for name, value in attributes(body).items()}
    expression = _without_comments(expression)

    def placeholders(name: str, value: str) -> str:
        unknown = sorted({m for m in REFERENCE.findall(value) if m not in known})
        if unknown and only_known:
            raise EvaluationError(
                f"{name} refers to {unknown}, which only a plan knows; only {sorted(known)} are given"
            )
        return REFERENCE.sub(lambda match: literal(known.get(match.group(0), match.group(0))), value)

    needed: dict[str, str] = {}
    todo = [expression]
    while todo:
        for name in _references(todo.pop(), "local"):
            if name in needed:
                continue
            if name not in locals_:
                raise EvaluationError(f"local.{name} is not declared in main.tf")
            needed[name] = placeholders(f"local.{name}", locals_[name])
            todo.append(needed[name])
    answer = placeholders("the expression", expression)

    variables: dict[str, str] = {}
    todo = [answer, *needed.values()]
    while todo:
        for name in _references(todo.pop(), "var"):
            if name in variables:
                continue
            found = _blocks(text, "variable", name)
            if len(found) != 1:
                raise EvaluationError(f"var.{name} is not declared in main.tf")
            variables[name] = found[0] if name in given else _without_validation(found[0])
            todo.append(variables[name])

    parts = [f'variable "{name}" {{{body}}}\n' for name, body in sorted(variables.items())]
    lines = "".join(f"  {name} = {value}\n" for name, value in needed.items())
    parts.append(f"locals {{\n{lines}  {ANSWER} = {answer}\n}}\n")
    return "\n".join(parts)


def configuration(
    expression: str, main_tf: Path = MAIN_TF, known: dict | None = None, given=(), only_known: bool = False
) -> str:
    """The variables-and-locals configuration whose local ANSWER is ``expression``; the variables
    named in ``given`` keep their validation blocks."""
    known_json = json.dumps(known or {}, sort_keys=True)
    return _configuration(main_tf.read_text(), expression, known_json, frozenset(given), only_known)


def evaluate(expression: str, main_tf: Path = MAIN_TF, known: dict | None = None, only_known=False, **variables):
    """What ``expression`` gives in main.tf with these variables (main.tf's defaults otherwise)."""
    text = configuration(expression, main_tf, known, variables, only_known)
    declared = set(re.findall(r'^variable "([\w-]+)"', text, re.MULTILINE))
    values = {name: value for name, value in variables.items() if name in declared}
    result = _console(text, values, f"jsonencode(local.{ANSWER})")
    if _failed(result):
        errors = _plain(result.stderr)
        refused = "Invalid value for variable" in errors or "Invalid value for input variable" in errors
        raise EvaluationError(
            f"terraform console refused or failed ({result.returncode}) for {values}:\n"
            f"{errors[:2000]}{_plain(result.stdout)[:1000]}",
            refused=refused,
        )
    return json.loads(json.loads(_value(result)))


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


# ---------------------------------------------------------------------------- on the same machinery


@dataclass(frozen=True)
class AliasChoice:
    live_version: str  # the alias's function_version
    weights: dict[str, float]  # routing_config's additional_version_weights ({} without a canary)
    name: str = field(default="", compare=False)  # the alias's name, for the Terraform stand-in


def _alias_expression(main_tf: Path) -> str:
    """The alias's name, its function_version and its dynamic routing_config blocks, as one object."""
    alias = block("resource", *ALIAS, main_tf=main_tf)
    routing = block("dynamic", "routing_config", inside=alias)
    weights = attributes(block("content", inside=routing))["additional_version_weights"]
    return (
        f"{{ name = ({attributes(alias)['name']}), live_version = ({attributes(alias)['function_version']}), "
        "routing_config = "
        f"[for key, value in ({attributes(routing)['for_each']}) : {{ additional_version_weights = ({weights}) }}] }}"
    )


def alias_choice(
    pinned_version: str = "",
    canary_base_version: str = "",
    canary_percent: int = 0,
    newest_version: str = "1",
    main_tf: Path = MAIN_TF,
    **other_variables,
) -> AliasChoice:
    """What main.tf's alias serves for these values, as ``terraform console`` evaluates it. The
    function's newest version is the one value of a plan it may use; any other is refused."""
    answer = evaluate(
        _alias_expression(main_tf),
        main_tf,
        known={NEWEST: newest_version},
        only_known=True,
        pinned_version=pinned_version,
        canary_base_version=canary_base_version,
        canary_percent=canary_percent,
        **other_variables,
    )
    blocks = answer["routing_config"]
    if len(blocks) > 1:
        raise EvaluationError(f"more than one routing_config block: {blocks}")
    weights = blocks[0]["additional_version_weights"] if blocks else {}
    return AliasChoice(
        str(answer["live_version"]), {str(k): float(v) for k, v in weights.items()}, name=str(answer["name"])
    )


def lifted_configuration(main_tf: Path = MAIN_TF, newest_version: str = "1") -> tuple[str, str]:
    """The configuration ``alias_choice`` has Terraform evaluate, and the alias's expression."""
    choice = _alias_expression(main_tf)
    given = ("pinned_version", "canary_base_version", "canary_percent")
    return configuration(choice, main_tf, {NEWEST: newest_version}, given, only_known=True), choice


def variable_accepts(name: str, value, main_tf: Path = MAIN_TF) -> bool:
    """Whether main.tf's ``variable "name"`` block, as written (type and validation blocks),
    takes ``value``, as Terraform decides it. A value that is no HCL literal of the type, or a
    validation that fails, is a refusal; any other failure is an error."""
    try:
        evaluate(f"var.{name}", main_tf, **{name: value})
    except EvaluationError as error:
        if error.refused:
            return False
        raise
    return True
