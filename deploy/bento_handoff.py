"""Handing a Bento built by the serving BentoML to bentoctl, which runs on an older BentoML.

bentoctl's BentoML (requirements-deploy.txt) reads bento.yaml strictly: a field that a later
BentoML added stops it. The Bento is copied into a BentoML home of its own with those fields
left out where they hold the value that means what the older BentoML does anyway; any other
value is refused, since leaving it out would change the Bento. tests/pipeline/test_bento_build.py shows
the raw Bento refused and the handed-off one read.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

import yaml

# bento.yaml fields newer than the deploy environment's BentoML: (section, field, the value that
# means the older behaviour).
NEWER_FIELDS = (("python", "is_src_layout", False),)


class HandoffError(RuntimeError):
    """The Bento uses something bentoctl's BentoML cannot read; the message says what."""


def without_newer_fields(text: str) -> str:
    """bento.yaml's text without NEWER_FIELDS, each checked to hold its older meaning."""
    info = yaml.safe_load(text)
    for section, field, older in NEWER_FIELDS:
        values = info.get(section) or {}
        if field not in values:
            continue
        if values[field] != older:
            raise HandoffError(
                f"the Bento sets {section}.{field}: {values[field]!r}, which bentoctl's BentoML cannot read; "
                f"build it with {field} left at {older!r}"
            )
        pattern = re.compile(rf"^(?P<section>{section}:\n(?:  .*\n)*?)  {field}: .*\n", re.MULTILINE)
        text, count = pattern.subn(r"\g<section>", text, count=1)
        if count != 1:
            raise HandoffError(f"bento.yaml's {section}.{field} is not written as one line of its section")
    return text


def _copy_version(source: Path, store: Path, name: str, version: str) -> None:
    target = store / name / version
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, symlinks=True)
    (store / name / "latest").write_text(version)


def staged_home(bento_tag: str, home: Path) -> Path:
    """A BentoML home holding only the Bento ``bento_tag`` of the serving store and the models it
    names (bentoctl takes them from the model store), in the form bentoctl reads; returns it."""
    import bentoml

    bento = bentoml.get(bento_tag)
    _copy_version(Path(bento.path), home / "bentos", bento.tag.name, bento.tag.version)
    bento_yaml = home / "bentos" / bento.tag.name / bento.tag.version / "bento.yaml"
    bento_yaml.write_text(without_newer_fields(bento_yaml.read_text(encoding="utf-8")), encoding="utf-8")
    for model_info in bento.info.models:
        model = bentoml.models.get(model_info.tag)
        _copy_version(Path(model.path), home / "models", model.tag.name, model.tag.version)
    return home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploy.bento_handoff",
        description="Copy a Bento and its models into a BentoML home bentoctl's BentoML reads; "
        "then run `BENTOML_HOME=<home> .venv-deploy/bin/bentoctl build ...`.",
    )
    parser.add_argument("bento", help="the Bento's tag, e.g. xgb_classifier:latest")
    parser.add_argument("home", type=Path, help="the BentoML home to write (a new or scratch folder)")
    args = parser.parse_args(argv)
    from bentoml.exceptions import NotFound

    try:
        staged_home(args.bento, args.home)
    except (HandoffError, NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(args.home)
    return 0


if __name__ == "__main__":
    sys.exit(main())
