"""The job runner's archive handling, without Docker: tags stripped, size bounded."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from evaluator.errors import CCBenchError
from evaluator.server.worker import untagged_copy


def _archive(path: Path, layer: bytes) -> None:
    manifest = [{"Config": "c.json", "RepoTags": ["organiser/base:latest"], "Layers": ["l.tar"]}]
    files = {
        "manifest.json": json.dumps(manifest).encode(),
        "repositories": b'{"organiser/base": {"latest": "abc"}}',
        "c.json": b"{}",
        "l.tar": layer,
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_tags_are_stripped_and_everything_else_kept(tmp_path: Path) -> None:
    _archive(tmp_path / "in.tar", b"layer bytes" * 100)
    untagged_copy(tmp_path / "in.tar", tmp_path / "out.tar", max_bytes=1 << 20)
    with tarfile.open(tmp_path / "out.tar") as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layer = tar.extractfile("l.tar").read()  # type: ignore[union-attr]
    assert "repositories" not in names and names.count("manifest.json") == 1
    assert "RepoTags" not in manifest[0] and manifest[0]["Layers"] == ["l.tar"]
    assert layer == b"layer bytes" * 100


def test_an_archive_that_unpacks_too_large_or_is_no_tar_is_refused(tmp_path: Path) -> None:
    _archive(tmp_path / "in.tar", bytes(200_000))  # compresses to little, unpacks to 200 kB
    with pytest.raises(CCBenchError, match="unpacks to more than"):
        untagged_copy(tmp_path / "in.tar", tmp_path / "out.tar", max_bytes=100_000)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    with pytest.raises(CCBenchError, match="not a readable docker save archive"):
        untagged_copy(tmp_path / "junk.tar", tmp_path / "out2.tar", max_bytes=1 << 20)
