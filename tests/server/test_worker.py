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
    assert written == {"schemaVersion": 2, "manifests": [{}]}  # rebuilt: no annotations


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


def _pax(name: str, data: bytes, pax: dict[str, str]) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.pax_headers = len(data), pax
    return info, data


def _pax_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def test_headers_python_and_the_engine_read_differently_are_refused(tmp_path: Path) -> None:
    clean = json.dumps([{"Config": "c.json", "Layers": []}]).encode()
    tagged = json.dumps([{"Config": "c.json", "RepoTags": ["organiser/base:latest"]}]).encode()
    first = _pax("manifest.json", clean, {})
    # Python names it by GNU.sparse.name, the engine by its pax path: a second manifest.json
    sparse = _pax("blobs/evil", tagged, {"path": "manifest.json", "GNU.sparse.name": "blobs/e"})
    root = tarfile.TarInfo("d")
    root.type, root.linkname = tarfile.SYMTYPE, "."
    through = _pax("d/manifest.json", tagged, {})  # written through the link, over the first
    outside = tarfile.TarInfo("blobs/out")
    outside.type, outside.linkname = tarfile.SYMTYPE, "../../etc/passwd"
    cases = {
        "sparse": [first, sparse],
        "lies under a link": [first, (root, b""), through],
        "points outside the archive": [first, (outside, b"")],
        "control character": [first, _pax("blobs/a", b"", {"path": "manifest.json\0x"})],
    }
    for k, (why, members) in enumerate(cases.items()):
        path = _pax_tar(tmp_path / f"t{k}.tar", members)
        with pytest.raises(CCBenchError, match=why):
            untagged_copy(path, tmp_path / f"o{k}.tar", max_bytes=1 << 20)


def test_the_copy_carries_none_of_the_uploads_own_headers(tmp_path: Path) -> None:
    clean = json.dumps([{"Config": "c.json", "Layers": ["l.tar"]}]).encode()
    layer = _pax("l.tar", b"layer", {"uname": "hello", "mtime": "1.5"})
    path = _pax_tar(tmp_path / "in.tar", [_pax("manifest.json", clean, {}), layer])
    untagged_copy(path, tmp_path / "out.tar", max_bytes=1 << 20)
    with tarfile.open(tmp_path / "out.tar") as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["manifest.json", "l.tar"]
        assert all(not m.pax_headers for m in members)
        assert tar.extractfile("l.tar").read() == b"layer"  # type: ignore[union-attr]


def test_an_extended_header_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "bomb.tar.gz"
    record = b" path=" + b"a" * (8 << 20) + b"\n"
    size = len(record) + len(str(len(record))) + 1
    record = str(size).encode() + record
    head = tarfile.TarInfo("././@PaxHeader")
    head.size, head.type = len(record), tarfile.XHDTYPE
    with gzip.open(path, "wb") as out:  # 8 MB of pax path in a few kB
        out.write(head.tobuf(tarfile.USTAR_FORMAT) + record + b"\0" * (-len(record) % 512))
        out.write(tarfile.TarInfo("x").tobuf(tarfile.USTAR_FORMAT) + b"\0" * 1024)
    with pytest.raises(CCBenchError, match="the tar header at byte 0 extends over 65536 bytes"):
        untagged_copy(path, tmp_path / "out.tar", max_bytes=1 << 30)


def _raw_header(name: bytes, size_field: bytes, kind: bytes) -> bytes:
    """A ustar header with a given size field (12 bytes) and type, its checksum right."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\0"
    block[124:136] = size_field
    block[156:157] = kind
    block[257:263] = b"ustar\0"
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def test_raw_headers_python_would_misread_are_refused_first(tmp_path: Path) -> None:
    def pax_record(key: bytes, value: bytes) -> bytes:
        body = b" " + key + b"=" + value + b"\n"
        n = len(body) + len(str(len(body)))
        return str(n if len(str(n)) + len(body) == n else n + 1).encode() + body

    cases = {
        "size field that is not a size": _raw_header(b"a", b"-0000001000\0", b"0"),
        "global pax header": _raw_header(b"g", b"%011o\0" % 20, b"g") + b"20 path=manifest.j\n",
        "which image archives do not use": _raw_header(b"x", b"%011o\0" % 25, b"x")
        + pax_record(b"hdrcharset", b"BINARY"),
        "malformed pax record": _raw_header(b"x", b"%011o\0" % 8, b"x") + b"2 2 2 2\n",
    }
    for k, (why, head) in enumerate(cases.items()):
        path = tmp_path / f"r{k}.tar"
        path.write_bytes(head + bytes(-len(head) % 512) + bytes(1024))
        with pytest.raises(CCBenchError, match=why):
            untagged_copy(path, tmp_path / f"o{k}.tar", max_bytes=1 << 20)


def test_json_keys_the_engine_folds_are_refused_or_dropped(tmp_path: Path) -> None:
    for k, index in enumerate(
        [
            {"manifests": [{"Annotations": {"io.containerd.image.name": "victim:1"}}]},
            {"manifests": [], "Manifests": [{"digest": "sha256:" + "a" * 64}]},
        ]
    ):
        path = _tar(tmp_path / f"i{k}.tar", [("index.json", json.dumps(index).encode())])
        with pytest.raises(CCBenchError, match="a key the engine would read otherwise"):
            untagged_copy(path, tmp_path / f"o{k}.tar", max_bytes=1 << 20)
    manifest = [{"Config": "c.json", "Layers": ["l.tar"], "LayerSources": {"x": {"urls": ["u"]}}}]
    path = _tar(tmp_path / "m.tar", [("manifest.json", json.dumps(manifest).encode())])
    untagged_copy(path, tmp_path / "m-out.tar", max_bytes=1 << 20)
    with tarfile.open(tmp_path / "m-out.tar") as tar:
        written = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert written == [{"Config": "c.json", "Layers": ["l.tar"]}]  # exactly these keys
