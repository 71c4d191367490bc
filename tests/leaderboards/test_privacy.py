"""The published site leaks no container log, no error message and no host path.

Container output is attacker-controlled and can carry held-out test data (a container once printed
the base64 of its input CT, and it was recovered from the public site); error messages quote
container output and host paths; run parameters hold host paths. None of them may reach any file
of the published folder: pages, downloads, site.json, plots.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from evaluator.store import CaseError, ResultRow, Store
from leaderboards.site import publish_leaderboard
from tests.leaderboards.conftest import PhantomBoard

#: What a container printed to its log: "the input CT", base64-encoded.
LOG_SECRET = base64.b64encode(b"HELD-OUT-CT-VOXELS:" + bytes(range(48))).decode()
#: A secret quoted by a per-case error message (container output quoted in the error).
ERROR_SECRET = "ERRSECRET-7f3a9c1e"
#: Host paths of the evaluation machine.
HOST_PATH = "/srv/ccbench-private/heldout"
STORE_URL_SECRET = "postgresql://ccbench:hunter2@db.internal:5432/results"


@pytest.fixture(scope="module")
def private_site(
    phantom_board: PhantomBoard, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str]]:
    """A site published from a fresh SQLite store whose runs carry secrets everywhere.

    Returns the site folder and the strings that must appear in none of its files.
    """
    root = tmp_path_factory.mktemp("private")
    url = f"sqlite:///{root / 'private.sqlite'}"
    with Store.open(workspace=phantom_board.workspace) as source:
        originals = {r.entry: r for r in source.list_runs(task=phantom_board.task)}
        results = source.results_frame(task=phantom_board.task, split=phantom_board.split)
    secrets = [LOG_SECRET, ERROR_SECRET, HOST_PATH, STORE_URL_SECRET, url, str(root)]
    secrets += [str(phantom_board.workspace.root)]
    with Store.open(url) as db:
        for number, entry in enumerate(phantom_board.order[:3]):
            original = originals[entry]
            parameters = {
                **original.parameters,  # "pred": the real predictions folder (a host path)
                "data_root": None,
                "store": STORE_URL_SECRET,
                "run_dir": f"{HOST_PATH}/runs/run-{number}",
                "manifest": {"team": f"{HOST_PATH}/team", "image": f"file://{HOST_PATH}/img"},
            }
            secrets.append(str(original.parameters["pred"]))
            run = db.create_run(
                name=f"public-run-{number}",
                task=phantom_board.task,
                split=phantom_board.split,
                parameters=parameters,
                entry=entry,
            )
            mine = results[results["run_id"] == original.id]
            for i, (case, rows) in enumerate(mine.groupby("case_id", sort=True)):
                if i == 1:  # the container failed on this case: no values, a hostile message
                    message = (
                        f"prediction {HOST_PATH}/{case}.nii.gz missing; container said "
                        f"{ERROR_SECRET} {LOG_SECRET[:40]}"
                    )
                    db.record_case(run.id, str(case), [], error=CaseError("container", message))
                    continue
                values = [
                    ResultRow(int(r.label), str(r.metric), float(r.value))
                    for r in rows.itertuples()
                ]
                error = None
                if i == 2:  # an unknown error class: shown by class only, never its message
                    error = CaseError("mystery", f"{ERROR_SECRET} at {HOST_PATH}/x")
                db.record_case(run.id, str(case), values, error=error)
            db.log(run.id, f"input: {LOG_SECRET}", stream="stdout")
            db.log(run.id, f"reading {HOST_PATH}/input/ct.nii.gz", stream="stderr", case_id="c")
            db.finish_run(run.id)
    out = root / "site"
    publish_leaderboard(
        phantom_board.task,
        phantom_board.split,
        workspace=phantom_board.workspace,
        out=out,
        store=url,
        seed=0,
        n_resamples=20,
    )
    return out, secrets


def test_no_log_line_error_message_or_host_path_is_published(
    private_site: tuple[Path, list[str]],
) -> None:
    out, secrets = private_site
    files = [p for p in out.rglob("*") if p.is_file()]
    downloads = {p.name for p in files if p.parent.name == "downloads"}
    assert {"ranking.csv", "metrics.csv", "results.csv", "leaderboard.json"} <= downloads
    assert any(p.suffix == ".png" for p in files) and (out / "site.json").exists()
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (path, secret)
        # also a 20-character piece of the log blob (cut-off or wrapped lines)
        assert LOG_SECRET[8:28].encode() not in data, path
        assert b"hunter2" not in data and b"/srv/" not in data, path


def test_entry_pages_keep_case_status_and_error_class(
    private_site: tuple[Path, list[str]],
) -> None:
    from evaluator.evaluate import ERROR_CLASSES

    out, _ = private_site
    pages = list((out / "autopet-phantom--all" / "entries").glob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        assert "Run log" not in text
        assert "container" in text and ERROR_CLASSES["container"] in text
        assert "mystery" in text  # an unknown class is shown by name alone
        assert ">error<" in text and ">scored<" in text
        assert "public-run-" in text  # the run name stays
