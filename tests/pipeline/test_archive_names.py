"""Model archives are read by their members' exact names: a leading "./" is the only prefix ignored."""

import io
import tarfile

import pytest

from src.model_store import ArchiveError, check_archive

pytestmark = pytest.mark.unit


def archive_with(tmp_path, *names):
    path = tmp_path / "model.bentomodel"
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            data = b"name: xgb_model\n"
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


def test_dot_slash_prefix_is_accepted(tmp_path):
    check_archive(archive_with(tmp_path, "./model.yaml"))


@pytest.mark.parametrize("name", ["/model.yaml", "./.model.yaml", "..model.yaml", "/./model.yaml"])
def test_other_prefixes_are_not_stripped(tmp_path, name):
    with pytest.raises(ArchiveError, match="no model.yaml"):
        check_archive(archive_with(tmp_path, name))
