"""The container contract without containers: manifests, limits, staging and output collection."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from evaluator.datasets.base import Case
from evaluator.datasets.registry import load_registry
from evaluator.errors import DockerUnavailableError, SubmissionError
from evaluator.runner.contract import (
    Manifest,
    Resources,
    SandboxLimits,
    gc_slugs,
    load_manifest,
    stage_batch_inputs,
    stage_gc_inputs,
    write_manifest,
)
from evaluator.runner.images import apt_mirror
from evaluator.runner.outputs import collect_batch_outputs, collect_gc_output
from evaluator.runner.submissions import submit_image
from evaluator.workspace import Workspace

from .conftest import TinyDataset

DIGEST = "sha256:" + "ab" * 32


def _manifest(**fields: object) -> Manifest:
    base: dict[str, object] = {
        "name": "thr",
        "image": "ccbench/thr:1",
        "image_digest": DIGEST,
        "tasks": ("btcv-phantom",),
    }
    return Manifest(**{**base, **fields})  # type: ignore[arg-type]


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = _manifest(team="t", interface="grand-challenge", resources=Resources(pids=128))
    path = write_manifest(m, tmp_path)
    got = load_manifest("thr", submissions_dir=tmp_path)
    assert got.model_copy(update={"submitted": ""}) == m
    assert got.submitted  # stamped on write
    assert load_manifest(path, submissions_dir=tmp_path / "elsewhere") == got


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: thr\nimage: x\nimage_digest: nope\ntasks: [a]\n", "field 'image_digest'"),
        ("name: thr\nimage: x\nimage_digest: " + DIGEST + "\ntasks: []\n", "field 'tasks'"),
        ("- just a list\n", "not a mapping"),
        (
            "name: thr\nimage: x\nimage_digest: " + DIGEST + "\ntasks: [a]\nsurprise: 1\n",
            "surprise",
        ),
    ],
)
def test_bad_manifests_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "thr.yaml").write_text(text)
    with pytest.raises(SubmissionError, match=message):
        load_manifest("thr", submissions_dir=tmp_path)


def test_unknown_entry_says_how_to_register(tmp_path: Path) -> None:
    write_manifest(_manifest(name="other"), tmp_path)
    with pytest.raises(SubmissionError, match=r"known: other.*ccbench submit"):
        load_manifest("thr", submissions_dir=tmp_path)


@pytest.mark.parametrize("field", ["memory_mb", "pids", "time_limit_s", "shm_mb", "output_mb"])
def test_limits_reject_each_resource(field: str) -> None:
    limits = SandboxLimits()
    too_much = getattr(limits, f"max_{field}") + 1
    with pytest.raises(SubmissionError, match=f"{field} {too_much} exceeds"):
        limits.check(Resources(**{field: too_much}), entry="e")  # type: ignore[arg-type]


def test_submit_with_digest_and_unknown_task(tmp_path: Path) -> None:
    m, path = submit_image(
        "img",
        name="e1",
        tasks=["btcv"],
        image_digest=DIGEST,
        submissions_dir=tmp_path,
        command=["python", "x.py"],
    )
    assert path.is_file() and m.command == ("python", "x.py") and m.submitted
    with pytest.raises(SubmissionError, match="already exists"):
        submit_image(
            "img", name="e1", tasks=["btcv"], image_digest=DIGEST, submissions_dir=tmp_path
        )
    with pytest.raises(SubmissionError, match="unknown or no task"):
        submit_image(
            "img", name="e2", tasks=["nope"], image_digest=DIGEST, submissions_dir=tmp_path
        )
    with pytest.raises(SubmissionError, match="name"):
        submit_image(
            "img", name="../up", tasks=["btcv"], image_digest=DIGEST, submissions_dir=tmp_path
        )


def test_batch_staging_layout(tiny: TinyDataset, tmp_path: Path) -> None:
    inp = tmp_path / "input"
    listing = json.loads(stage_batch_inputs(tiny.cases, inp, task=tiny.task).read_text())
    assert listing["task"] == "btcv-phantom"
    assert [c["case_id"] for c in listing["cases"]] == ["0001", "0002", "0003"]
    assert listing["cases"][0]["channels"] == {"CT": "0001/CT.nii.gz"}
    staged = inp / "0001" / "CT.nii.gz"
    assert staged.read_bytes() == tiny.cases[0].channels["CT"].read_bytes()
    assert staged.stat().st_mode & 0o777 == 0o644 and inp.stat().st_mode & 0o777 == 0o755
    assert not any(p.name.startswith("label") for p in inp.rglob("*"))  # no ground truth


def test_gc_staging_uses_autopet_slugs(tiny: TinyDataset, tmp_path: Path) -> None:
    autopet = load_registry().task("autopet-phantom")
    slugs = gc_slugs(_manifest(tasks=("autopet-phantom",)), autopet)
    assert dict(slugs.inputs) == {"CT": "ct", "PET": "pet", "ORGANS": "organs"}
    assert slugs.output == "automated-petct-lesion-segmentation"
    override = gc_slugs(_manifest(gc_output="out", gc_inputs={"CT": "ct-image"}), tiny.task)
    assert dict(override.inputs) == {"CT": "ct-image"} and override.output == "out"
    default = gc_slugs(_manifest(), tiny.task)
    key = stage_gc_inputs(tiny.cases[0], tmp_path, task=tiny.task, slugs=default)
    assert [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mha")] == [
        f"images/ct/{key}.mha"
    ]


def test_collect_rejects_links_dirs_oversize_and_duplicates(tmp_path: Path) -> None:
    out, dest = tmp_path / "out", tmp_path / "dest"
    out.mkdir()
    (out / "a.nii.gz").write_bytes(b"x" * 10)
    (out / "b.nii.gz").symlink_to(out / "a.nii.gz")
    (out / "c.mha").mkdir()
    (out / "d.mha").write_bytes(b"x" * 101)
    (out / "e.mha").write_bytes(b"")
    (out / "f.mha").write_bytes(b"x")
    (out / "f.nii.gz").write_bytes(b"x")
    (out / "stray.txt").write_bytes(b"x")
    os.mkfifo(out / "g.nii")
    got = collect_batch_outputs(out, list("abcdefgh"), dest, max_bytes=100)
    assert got.predictions == {"a": dest / "a.nii.gz"}
    assert "symbolic link" in got.errors["b"]
    assert "not a regular file" in got.errors["c"] and "not a regular file" in got.errors["g"]
    assert "above the output cap" in got.errors["d"]
    assert "empty" in got.errors["e"]
    assert "several output files" in got.errors["f"]
    assert got.errors["h"].startswith("no output file")
    assert got.rejected == [
        "/output/stray.txt: not <case_id><ext> of a case in the split (ext: .nii.gz, .nii, .mha)"
    ]


def test_collect_gc_output(tmp_path: Path) -> None:
    out = tmp_path / "out"
    folder = out / "images" / "seg"
    folder.mkdir(parents=True)
    got = collect_gc_output(out, "c1", "k", tmp_path / "d", slug="seg", max_bytes=10)
    assert got.errors["c1"] == "no output image in /output/images/seg"
    (folder / "fixed-name.mha").write_bytes(b"x")
    got = collect_gc_output(out, "c1", "k", tmp_path / "d", slug="seg", max_bytes=10)
    assert got.predictions == {"c1": tmp_path / "d" / "c1.mha"}
    got = collect_gc_output(out, "c2", "k", tmp_path / "d", slug="other", max_bytes=10)
    assert got.errors["c2"] == "no output folder /output/images/other"


def test_apt_mirror_reads_one_line_sources(tmp_path: Path) -> None:
    lst = tmp_path / "sources.list"
    lst.write_text(
        "# comment\ndeb http://security.example/debian-security bookworm-security main\n"
        "deb [arch=amd64] http://mirror.example/debian bookworm main\n"
    )
    assert apt_mirror([lst]) == "http://mirror.example/debian"
    with pytest.raises(DockerUnavailableError, match="no apt source for Debian 'trixie'"):
        apt_mirror([lst], suite="trixie")


def test_resampled_channel_is_staged_on_the_reference_grid(tmp_path: Path) -> None:
    import numpy as np
    import SimpleITK as sitk

    from evaluator.datasets.base import Case

    ct = sitk.GetImageFromArray(np.zeros((4, 6, 8), dtype=np.int16))
    ct.SetSpacing((1.0, 1.0, 2.0))
    pt = sitk.GetImageFromArray(np.ones((2, 3, 4), dtype=np.float32))
    pt.SetSpacing((2.0, 2.0, 4.0))
    sitk.WriteImage(ct, str(tmp_path / "ct.nii.gz"))
    sitk.WriteImage(pt, str(tmp_path / "pt.nii.gz"))
    case = Case(
        case_id="CHUM-001",
        channels={"CT": tmp_path / "ct.nii.gz", "PT": tmp_path / "pt.nii.gz"},
        label=None,
        reference_channel="CT",
    )
    task = load_registry().task("hecktor-phantom")
    listing = json.loads(stage_batch_inputs([case], tmp_path / "in", task=task).read_text())
    assert listing["cases"][0]["channels"] == {"CT": "CHUM-001/CT.nii.gz", "PT": "CHUM-001/PT.mha"}
    staged = sitk.ReadImage(str(tmp_path / "in" / "CHUM-001" / "PT.mha"))
    assert staged.GetSize() == ct.GetSize() and staged.GetSpacing() == ct.GetSpacing()


def test_an_archive_needs_exactly_one_real_manifest(tmp_path: Path) -> None:
    import hashlib
    import io
    import tarfile

    from evaluator.errors import SubmissionError
    from evaluator.runner.submissions import read_archive

    def archive(members: dict[str, bytes]) -> Path:
        path = tmp_path / f"a{len(list(tmp_path.iterdir()))}.tar"
        with tarfile.open(path, "w") as tar:
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    config = b'{"architecture": "amd64"}'
    digest = hashlib.sha256(config).hexdigest()
    one = json.dumps([{"Config": digest + ".json", "RepoTags": ["victim:latest"]}]).encode()
    none = json.dumps([{"Config": digest + ".json", "RepoTags": []}]).encode()
    # a decoy that a loose name match would take instead of the real manifest
    cfg = {digest + ".json": config}
    assert read_archive(archive({"manifest.json": one, ".manifest.json": none, **cfg})).tags == (
        "victim:latest",
    )
    # the engine names the image by its config's bytes: a config that is not what its name says
    with pytest.raises(SubmissionError, match="not the file its name says"):
        read_archive(archive({"manifest.json": one, digest + ".json": b"{}"}))
    # Go's JSON decoder folds case: a key that is RepoTags or Config to the engine is refused
    for key in ("repotags", "REPOTAGS", "RepoTag\u017f", "config"):
        item = {"Config": digest + ".json", key: ["victim:latest"]}
        with pytest.raises(SubmissionError, match="only in case"):
            read_archive(archive({"manifest.json": json.dumps([item]).encode(), **cfg}))
    with pytest.raises(SubmissionError, match=r"'manifest\.json' comes twice"):
        read_archive(archive({"manifest.json": one, "./manifest.json": none}))
    for trick in ("x/../manifest.json", ".//manifest.json", "/manifest.json", "a/./manifest.json"):
        # what the engine would read as manifest.json (or outside the archive): never unchecked
        with pytest.raises(SubmissionError, match="is not a plain name"):
            read_archive(archive({"manifest.json": none, trick: one}))
    bad = json.dumps([{"Config": digest + ".json", "RepoTags": ["Up/Per:x"]}]).encode()
    with pytest.raises(SubmissionError, match="not a valid image tag"):
        read_archive(archive({"manifest.json": bad, **cfg}))


def test_optional_channels_are_staged_when_a_case_has_them(tmp_path: Path) -> None:
    """The AutoPET organ map (ORGANS) reaches both layouts for cases that have it, only them."""
    from evaluator.runner.contract import GrandChallengeSlugs, stage_batch_inputs, stage_gc_inputs

    task = load_registry().task("autopet-phantom")
    arr = np.zeros((4, 5, 6), np.uint8)
    files = {}
    for name in ("CT", "PET", "ORGANS", "SEG"):
        files[name] = tmp_path / f"{name}.nii.gz"
        sitk.WriteImage(sitk.GetImageFromArray(arr), str(files[name]))
    with_map = Case("a", {c: files[c] for c in ("CT", "PET", "ORGANS")}, files["SEG"])
    without = Case("b", {c: files[c] for c in ("CT", "PET")}, files["SEG"])
    listing = stage_batch_inputs([with_map, without], tmp_path / "in", task=task)
    cases = {c["case_id"]: c["channels"] for c in json.loads(listing.read_text())["cases"]}
    assert sorted(cases["a"]) == ["CT", "ORGANS", "PET"] and sorted(cases["b"]) == ["CT", "PET"]
    assert (tmp_path / "in" / cases["a"]["ORGANS"]).is_file()
    slugs = GrandChallengeSlugs({"CT": "ct", "PET": "pet", "ORGANS": "organs"}, "out")
    key = stage_gc_inputs(with_map, tmp_path / "gc", task=task, slugs=slugs)
    assert (tmp_path / "gc" / "images" / "organs" / f"{key}.mha").is_file()
    sockets = [
        v["interface"]["slug"] for v in json.loads((tmp_path / "gc" / "inputs.json").read_text())
    ]
    assert sockets == ["ct-image", "pet-image", "organs-image"]


def test_instance_task_output_is_one_results_file(tmp_path: Path) -> None:
    """ChestXDet batch runs answer with /output/predictions.json; a link there is refused."""
    from evaluator.runner.outputs import collect_instance_output

    out, dest = tmp_path / "out", tmp_path / "dest"
    out.mkdir()
    missing = collect_instance_output(out, ["a", "b"], dest, max_bytes=1000)
    assert set(missing.errors) == {"a", "b"} and "predictions.json" in missing.errors["a"]
    (out / "predictions.json").symlink_to("/etc/passwd")
    linked = collect_instance_output(out, ["a"], dest, max_bytes=1000)
    assert linked.unsafe == {"a"} and not linked.predictions
    (out / "predictions.json").unlink()
    (out / "predictions.json").write_text("[" + "0," * 600 + "0]")
    big = collect_instance_output(out, ["a"], dest, max_bytes=1000)
    assert "a" in big.errors and not big.predictions
    (out / "predictions.json").write_text("[]")
    ok = collect_instance_output(out, ["a", "b"], dest, max_bytes=1000)
    assert ok.predictions == {"a": dest / "predictions.json", "b": dest / "predictions.json"}


def test_grand_challenge_interface_refuses_an_instance_task(tmp_path: Path) -> None:
    from evaluator.runner.run import run_cases

    manifest = _manifest(tasks=("chestxdet-phantom",), interface="grand-challenge")
    with pytest.raises(
        SubmissionError, match="instance task: register the entry with --interface batch"
    ):
        run_cases(
            manifest, [], task=load_registry().task("chestxdet-phantom"), run_dir=tmp_path / "r",
            backend=None, workspace=Workspace(tmp_path / "ws"), split="test",  # type: ignore[arg-type]
        )  # fmt: skip


def test_data_cases_lists_and_stages_a_split_as_a_batch_container_sees_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    """--json: the dataset's own files, no reference; --stage: the container's /input itself."""
    from typer.testing import CliRunner

    from evaluator.cli import app
    from evaluator.datasets.phantoms import write_phantoms

    write_phantoms("hecktor", workspace=workspace, cases=2, size="64x48x20")
    args = ["data", "cases", "-t", "hecktor-phantom", "-s", "all", "-w", str(workspace.root)]
    listed = CliRunner().invoke(app, [*args, "--json"])
    assert listed.exit_code == 0, listed.output
    cases = json.loads(listed.stdout)["cases"]
    assert [c["prediction"] for c in cases] == [f"{c['case_id']}.nii.gz" for c in cases]
    assert not any(
        "label" in p.lower() or "gtv" in p.lower() for c in cases for p in c["channels"].values()
    )
    staged = CliRunner().invoke(app, [*args, "--stage", str(tmp_path / "input")])
    assert staged.exit_code == 0, staged.output
    listing = json.loads((tmp_path / "input" / "cases.json").read_text())
    assert [c["case_id"] for c in listing["cases"]] == [c["case_id"] for c in cases]
    for case in listing["cases"]:
        ct, pt = (
            sitk.ReadImage(str(tmp_path / "input" / case["channels"][k])) for k in ("CT", "PT")
        )
        assert pt.GetSize() == ct.GetSize() and pt.GetSpacing() == ct.GetSpacing()
    raw_pt = sitk.ReadImage(cases[0]["channels"]["PT"])
    assert raw_pt.GetSize() != ct.GetSize()  # --json points at the raw files, --stage resamples
    again = CliRunner().invoke(app, [*args, "--stage", str(tmp_path / "input")])
    assert again.exit_code == 1 and "not an empty folder" in again.output
