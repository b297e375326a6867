"""The tutorial's model-store operations on our model, as one command.

    python -m src.model_store list                  # versions of the model, newest first
    python -m src.model_store show [TAG]            # labels, metadata, metrics of one version
    python -m src.model_store export [TAG]          # archive to models/<name>-<version>.bentomodel
    python -m src.model_store import FILE           # bring an archive into the store

``bentoml models list|export|import`` work as well; these wrappers default to our model's name,
write archives where the tutorial keeps them (``models/``) and check an archive before
importing it, so a corrupted file leaves the store untouched.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

import bentoml
from bentoml.exceptions import BentoMLException, NotFound

from src import config


class ArchiveError(ValueError):
    """A .bentomodel archive that cannot be imported; the message says why."""


def list_versions() -> list[bentoml.Model]:
    models = bentoml.models.list(config.MODEL_NAME)
    return sorted(models, key=lambda m: m.info.creation_time, reverse=True)


def get(tag: str = config.MODEL_TAG) -> bentoml.Model:
    return bentoml.models.get(tag)


def load_booster(tag: str = config.MODEL_TAG):
    """The stored model as an ``xgboost.Booster``, as the tutorial loads it."""
    return bentoml.xgboost.load_model(tag)


def export(tag: str = config.MODEL_TAG, out_dir: Path = config.MODELS_DIR) -> Path:
    """Write ``<name>-<version>.bentomodel`` for ``tag`` into ``out_dir``; return its path."""
    model = get(tag)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{model.tag.name}-{model.tag.version}.bentomodel"
    bentoml.models.export_model(str(model.tag), str(path))
    return path


def check_archive(path: Path) -> None:
    """Refuse, before touching the store, a file that is not a complete model archive."""
    path = Path(path)
    if not path.is_file():
        raise ArchiveError(f"no such file: {path}")
    try:
        with tarfile.open(path, "r:*") as archive:
            names = set()
            for member in archive:  # reads every header: a truncated archive fails here
                names.add(member.name.removeprefix("./"))
                if member.isfile():
                    handle = archive.extractfile(member)
                    while handle is not None and handle.read(1 << 20):
                        pass
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"{path} is not a readable .bentomodel archive: {exc}") from None
    if "model.yaml" not in names:
        raise ArchiveError(f"{path} holds no model.yaml: not a BentoML model archive")


def import_archive(path: Path) -> bentoml.Model:
    """Import a checked archive; a version already in the store is reported, not overwritten."""
    check_archive(path)
    try:
        return bentoml.models.import_model(str(path))
    except BentoMLException as exc:
        raise ArchiveError(f"could not import {path}: {exc}") from None


def describe(model: bentoml.Model) -> dict:
    info = model.info
    return {
        "tag": str(model.tag),
        "module": info.module,
        "created": info.creation_time.isoformat(),
        "labels": dict(info.labels),
        "metadata": dict(info.metadata),
        "custom_objects": sorted(model.custom_objects),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m src.model_store", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the stored versions of the model, newest first")
    show = sub.add_parser("show", help="print one version's labels, metadata and custom objects")
    show.add_argument("tag", nargs="?", default=config.MODEL_TAG)
    exp = sub.add_parser("export", help="export a version to a .bentomodel archive")
    exp.add_argument("tag", nargs="?", default=config.MODEL_TAG)
    exp.add_argument("--out-dir", type=Path, default=config.MODELS_DIR, help="default: models/")
    imp = sub.add_parser("import", help="import a .bentomodel archive into the store")
    imp.add_argument("path", type=Path)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            versions = list_versions()
            if not versions:
                print(f"no versions of {config.MODEL_NAME!r} in the store; run `python -m src.train`")
            for model in versions:
                auc = model.info.metadata.get("metrics", {}).get("auc")
                auc_text = f"AUC {auc:.4f}" if isinstance(auc, (int, float)) else ""
                print(f"{model.tag}  {model.info.creation_time:%Y-%m-%d %H:%M:%S}  {auc_text}")
        elif args.command == "show":
            print(json.dumps(describe(get(args.tag)), indent=2, default=str))
        elif args.command == "export":
            print(f"exported to {export(args.tag, args.out_dir)}")
        elif args.command == "import":
            print(f"imported {import_archive(args.path).tag}")
    except (ArchiveError, NotFound) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
