"""`ccbench demo` is the main job: it runs end to end, every step ok, in a fresh workspace."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from evaluator.demo import demo_boards, demo_steps, demo_tasks, run_demo
from evaluator.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_workspace(tmp_path: Path) -> Iterator[Workspace]:
    """The demo's workspace; afterwards the images the demo built for it are untagged again."""
    import subprocess

    from evaluator.runner.baselines import entry_tag, list_baselines

    ws = Workspace(tmp_path / "ws")
    yield ws
    tags = [entry_tag("ccbench", name, ws) for name in list_baselines()]
    tags.append(entry_tag("ccbench-nnunet", "nnunet", ws))
    subprocess.run(["docker", "rmi", *tags], capture_output=True, check=False)


def test_demo_runs_every_step(demo_workspace: Workspace) -> None:
    ws = demo_workspace
    out = io.StringIO()
    ok = run_demo(ws, seed=0, console=Console(file=out, width=160))
    text = out.getvalue()
    assert ok, text[-4000:]
    assert text.count("step failed") == 0
    for step in demo_steps():
        assert step.title.split(" (")[0] in text
    site = json.loads((ws.sites / "site.json").read_text())
    boards = sorted((b["task"], b["split"]) for b in site)
    assert boards == sorted(demo_boards())
    assert sorted(demo_boards()) == sorted(
        [(f"{t}-phantom", "all") for t in demo_tasks()]
        + [(t, "test") for t in ("autopet-phantom", "hecktor-phantom", "btcv-phantom")]
        + [("autopet-2d-phantom", "fold0")]
    )
    # the multi-task entry (monai-unet, one manifest for three tasks) with the threshold on the
    # three held-out boards, ranked across them on the cross-task page
    cross = (ws.sites / "cross-task.html").read_text()
    section = cross[cross.index('<h2 id="split-test"') :]
    section = section[: section.index("</table>")]
    for task in ("autopet-phantom", "hecktor-phantom", "btcv-phantom"):
        assert f"rank on {task}" in section.replace("<wbr>", ""), task
    for entry in ("monai-unet", "threshold"):
        assert f'<td class="text">{entry}</td>' in section, entry
    # APEX: a 2D model per fold on its validation slices and on the test slices, mean ± SD
    # over the five folds beside APEX's Table 2 rows, per slice and per patient
    apex = (ws.sites / "autopet-2d-phantom--fold0" / "index.html").read_text()
    folds = apex[apex.index('id="folds"') :]
    assert "monai-unet-2d" in folds[: folds.index("</table>")]
    assert 'id="folds-test"' in apex and 'id="fold-patients"' in apex
    assert "APEX" in apex[apex.index('id="literature"') :]
    # the learned baseline was trained, packed and scored on the held-out split with the others
    assert (
        ws.root / "baselines" / "monai-unet" / "autopet-phantom" / "fold0" / "model.pt"
    ).is_file()
    held_out = text[text.index("baselines on autopet-phantom / test") :]
    for entry in ("monai-unet", "nnunet", "suv-threshold", "threshold"):
        assert entry in held_out[:2000], entry
    # nnU-Net: trained by its own pipeline, packed by `submit --nnunet-results`, its summary.json
    assert (
        ws.root / "baselines" / "nnunet" / "autopet-phantom" / "fold0" / "config.json"
    ).is_file()
    assert "ccbench submit --nnunet-results" in text
    summary = ws.runs / "phantom-medium--autopet-nnunet-phantom" / "nnunet" / "summary.json"
    assert set(json.loads(summary.read_text())) == {"foreground_mean", "mean", "metric_per_case"}
    assert "5/5 hostile prediction files refused" in text
    # the self-hosted challenge: an upload through the HTTP API, run, on the board; no logs for
    # the team on the hidden phase
    # (the summary wraps in its table cell: single words only)
    assert "--server" in text and "/api/submissions`" in text and "(HTTP 403)" in text
    # the threshold baseline again, its containers on two Dask workers: the same numbers stored
    assert "containers on 2 workers" in text and "identical to the local run's" in text
    assert not any(ws.tmp.iterdir()) if ws.tmp.exists() else True
    # metric insight on the AutoPET board: the demo's studies and example metrics on it
    board = ws.sites / "autopet-phantom--all"
    page = (board / "index.html").read_text()
    panel = page[page.index('id="sensitivity-panel"') :]
    panel = panel[: panel.index("</table>")]
    for title in ("Dice", "CC-Dice", "volume error", "component count error"):
        assert f">{title}</a>" in panel, title
    assert panel.count('class="verdict ') >= 8 * 4  # 4 operators x 2 orders per metric
    assert "no-data" not in panel  # every ranked metric was studied
    assert 'id="metric-volume_error_ml"' in page  # the example user metric is ranked
    views = sorted((board / "cases").glob("*.html"))
    assert views and all(f'href="cases/{v.name}"' in page for v in views)
    assert all("Reference components" in v.read_text() for v in views)
    assert "CC-Dice sees it" in text  # dropping the smallest lesion, on the phantoms' data
    # prompted entries: click-grow at budgets 0..10 with its curve on the held-out board, the
    # click files of every budget in the store; the text-prompted network asked by name
    held = (ws.sites / "autopet-phantom--test" / "index.html").read_text()
    assert 'id="interactive"' in held and "click_curves.png" in held
    assert (ws.sites / "autopet-phantom--test" / "plots" / "click_curves.png").is_file()
    from evaluator.store import Store

    with Store.open(ws.store_url) as db:
        budgets = [
            r for r in db.list_runs(entry="click-grow", status="finished")
            if "__clicks" in r.name
        ]  # fmt: skip
        assert sorted(r.parameters["protocol"]["budget"] for r in budgets) == list(range(11))
        assert all(db.prompts(r.id) for r in budgets)
        (prompted,) = db.list_runs(entry="monai-unet-prompted", status="finished")
        assert prompted.parameters["protocol"] == {"prompts": ["text"]}
        asked = {"targets": [{"name": "lesion", "label": 1}]}
        given = db.prompts(prompted.id)
        assert given and all(prompt == asked for prompt in given.values())
