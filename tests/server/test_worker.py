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
    with pytest.raises(CCBenchError, match="more than 100000 bytes or 20000 entries"):
        untagged_copy(tmp_path / "in.tar", tmp_path / "out.tar", max_bytes=100_000)
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    with pytest.raises(CCBenchError, match="not a readable docker save archive"):
        untagged_copy(tmp_path / "junk.tar", tmp_path / "out2.tar", max_bytes=1 << 20)


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tar:
        for item in members:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
                continue
            info = tarfile.TarInfo(item[0])
            info.size = len(item[1])
            tar.addfile(info, io.BytesIO(item[1]))
    return path


def test_names_the_engine_would_read_otherwise_are_refused(tmp_path: Path) -> None:
    clean = json.dumps([{"Config": "c.json", "Layers": []}]).encode()
    tagged = json.dumps([{"Config": "c.json", "RepoTags": ["organiser/base:latest"]}]).encode()
    for k, trick in enumerate(["x/../manifest.json", ".//manifest.json", "/repositories"]):
        path = _tar(tmp_path / f"t{k}.tar", [("manifest.json", clean), (trick, tagged)])
        with pytest.raises(CCBenchError, match="is not a plain name"):
            untagged_copy(path, tmp_path / f"o{k}.tar", max_bytes=1 << 20)
    link = tarfile.TarInfo("index.json")
    link.type, link.linkname = tarfile.SYMTYPE, "blobs/sha256/tagged"
    path = _tar(tmp_path / "link.tar", [("manifest.json", clean), link])
    with pytest.raises(CCBenchError, match=r"index\.json is not a file"):
        untagged_copy(path, tmp_path / "o-link.tar", max_bytes=1 << 20)
    twice = _tar(tmp_path / "twice.tar", [("c.json", b"{}"), ("./c.json", b"{}")])
    with pytest.raises(CCBenchError, match="comes twice"):
        untagged_copy(twice, tmp_path / "o-twice.tar", max_bytes=1 << 20)


def test_an_oci_style_archive_is_written_under_canonical_names(tmp_path: Path) -> None:
    root = tarfile.TarInfo(".")
    root.type = tarfile.DIRTYPE
    index = {"manifests": [{"annotations": {"org.opencontainers.image.ref.name": "x:1"}}]}
    path = _tar(
        tmp_path / "oci.tar",
        [root, ("./index.json", json.dumps(index).encode()), ("./blobs/sha256/ab", b"blob")],
    )
    untagged_copy(path, tmp_path / "out.tar", max_bytes=1 << 20)
    with tarfile.open(tmp_path / "out.tar") as tar:
        assert tar.getnames() == ["index.json", "blobs/sha256/ab"]
        written = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    assert written == {"manifests": [{"annotations": {}}]}


def test_a_tar_of_many_empty_members_is_refused_early(tmp_path: Path) -> None:
    import time

    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for k in range(25_000):
            tar.addfile(tarfile.TarInfo(f"f{k}"))
    start = time.monotonic()
    with pytest.raises(CCBenchError, match="20000 entries"):
        untagged_copy(path, tmp_path / "out.tar", max_bytes=1 << 30)
    assert time.monotonic() - start < 30
