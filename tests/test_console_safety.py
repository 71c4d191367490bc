"""Console output of untrusted text: rich markup is shown literally, escape sequences never pass.

A container's reason, log lines, case ids and the names of files it wrote are attacker-controlled;
so are entry and run names and error messages quoting them. ``[/]`` in any of them must not crash
rich (MarkupError), and ``\\x1b[2J`` (clear screen), ``\\x1b[31m`` (colour) or an OSC title
sequence must not reach the terminal.
"""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from evaluator.cli import app
from evaluator.console import (
    kv_table,
    print_check_report,
    print_evaluation,
    print_run_outcome,
    print_submission,
)
from evaluator.datasets.check import CheckReport, Problem
from evaluator.runner.contract import ContainerRun
from evaluator.runner.run import RunOutcome

#: What a hostile container prints or names its files: markup, a colour, clear-screen, an OSC
#: window-title sequence and a device-status query.
HOSTILE = "[/] boom \x1b[31mred\x1b[0m \x1b[2J\x1b]0;pwned\x07\x1b[6n [bold]b[/bold]"
INJECTED = ("\x1b[2J", "\x1b]0;", "\x1b[6n", "\x1b[31mred", "pwned")


def _evaluation() -> Any:
    summary = {
        "task": "autopet",
        "split": "test",
        "run": f"run {HOSTILE}",
        "run_id": 1,
        "status": "finished",
        "completed": 2,
        "cases": 2,
        "mean_over_labels": {"dice": 0.5},
        "means": {f"lesion {HOSTILE}": {"dice": {"mean": 0.5}}},
        "aggregates": {f"agg {HOSTILE}": 0.25},
        "error_counts": {"container": 1, "missing": 0},
        "conventions": [f"note {HOSTILE}"],
    }
    return SimpleNamespace(
        summary=summary,
        scored=2,
        skipped=0,
        results_csv=Path(f"/ws/runs/{HOSTILE}/results.csv"),
        summary_json=Path(f"/ws/runs/{HOSTILE}/summary.json"),
        store_url=f"sqlite:////ws/{HOSTILE}.sqlite",
        metric_failures=1,  # the line that names the run's log command, with the run's name
    )


def _outcome() -> RunOutcome:
    failed = ContainerRun(
        label=f"case {HOSTILE}", status="exit", reason=HOSTILE, exit_code=1, seconds=1.5
    )
    ok = ContainerRun(label="split", status="ok", reason="", exit_code=0, seconds=2.0)
    return RunOutcome(
        name=f"run {HOSTILE}",
        entry=f"entry {HOSTILE}",
        task="autopet",
        split="test",
        interface="batch",
        run_dir=Path(f"/ws/runs/{HOSTILE}"),
        case_ids=["c1", f"c2 {HOSTILE}"],
        predictions={"c1": Path("/ws/runs/x/predictions/c1.nii.gz")},
        case_errors={f"c2 {HOSTILE}": f"no output: {HOSTILE}"},
        rejected=[f"{HOSTILE}.nii.gz: not a case of the split"] * 12,
        container_runs=[failed, ok],
        provenance={"image_digest": f"sha256:{HOSTILE}", "backend": "local"},
        seconds=3.5,
        evaluation=_evaluation(),
    )


def _submission(console: Console) -> None:
    resources = SimpleNamespace(
        memory_mb=1024,
        cpus=2.0,
        pids=64,
        time_limit_s=60.0,
        gpus=0,
        filesystem="ephemeral",
        layer_mb=2048,
    )
    manifest = SimpleNamespace(
        name=f"entry {HOSTILE}",
        team=f"team {HOSTILE}",
        image=f"img {HOSTILE}",
        image_digest="sha256:0",
        interface="batch",
        tasks=["autopet", HOSTILE],
        resources=resources,
        prompts=("clicks", HOSTILE),
        labels={HOSTILE: [HOSTILE, 2]},
    )
    print_submission(manifest, Path(f"/ws/entries/{HOSTILE}.yaml"), console=console)


def _check_report(console: Console) -> None:
    problem = Problem(f"c {HOSTILE}", f"/d/{HOSTILE}", f"/d/{HOSTILE}: cannot be read")
    print_check_report(CheckReport(task="t", root=Path(f"/d/{HOSTILE}"), n_cases=1), console)
    print_check_report(
        CheckReport(task="t", root=Path(f"/d/{HOSTILE}"), n_cases=1, problems=[problem]), console
    )


PRINTERS = {
    "run_outcome": lambda c: print_run_outcome(_outcome(), console=c),
    "evaluation": lambda c: print_evaluation(_evaluation(), console=c),
    "submission": _submission,
    "check_report": _check_report,
    "kv_table": lambda c: c.print(kv_table(f"t {HOSTILE}", {HOSTILE: HOSTILE})),
}


@pytest.mark.parametrize("printer", list(PRINTERS))
def test_hostile_text_is_shown_literally_on_a_colour_terminal(printer: str) -> None:
    console = Console(file=io.StringIO(), force_terminal=True, color_system="truecolor", width=250)
    PRINTERS[printer](console)  # no MarkupError
    out = console.file.getvalue()  # type: ignore[attr-defined]
    for sequence in INJECTED:
        assert sequence not in out, (printer, sequence)
    assert "[/] boom" in out and "[bold]b[/bold]" in out


@pytest.mark.parametrize("printer", list(PRINTERS))
def test_no_escape_sequence_of_the_data_reaches_a_plain_terminal(printer: str) -> None:
    # Without a colour system rich writes no escape sequence of its own: any ESC came from data.
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=250)
    PRINTERS[printer](console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b" not in out and "\x07" not in out
    assert "[/] boom red" in out


def test_run_outcome_shows_every_container_string() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, color_system=None, width=250)
    print_run_outcome(_outcome(), console=console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert out.count("ignored [/] boom red") == 10 and "... and 2 more ignored files" in out
    assert "entry [/] boom red" in out  # the title
    assert "no output: [/] boom red" in out  # a case error
    assert "lesion [/] boom red" in out  # the evaluation that follows


def test_cli_error_with_markup_and_escapes_is_one_clean_line(tmp_path: Path) -> None:
    pred = tmp_path / "p[/]\x1b[2J\nq [bold].nii.gz"
    ref = tmp_path / "r[/].nii.gz"
    result = CliRunner().invoke(app, ["metrics", str(pred), str(ref)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not a MarkupError
    err = result.stderr
    assert "Traceback" not in err and "\x1b" not in err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "p[/]" in err and "q [bold].nii.gz" in err and "file does not exist" in err


def test_a_file_name_with_line_breaks_cannot_forge_a_line(tmp_path: Path) -> None:
    """A container names a file so that its 'ignored' message would print a fake progress line."""
    from evaluator.runner.outputs import collect_batch_outputs

    out = tmp_path / "output"
    out.mkdir()
    (out / "a\nscoring: 2 of 2 FAKE: scored (0 s)\nignored nothing.nii.gz").write_bytes(b"x")
    got = collect_batch_outputs(out, ["case1"], tmp_path / "dest", max_bytes=2**20)
    messages = [str(m) for m in got.rejected]
    assert messages and all("\n" not in m and "\r" not in m for m in messages), messages
    assert any("a\\nscoring: 2 of 2 FAKE" in m for m in messages), messages


def test_progress_lines_and_statuses_stay_on_one_line() -> None:
    from evaluator.console import ProgressBars

    out = io.StringIO()
    with ProgressBars(Console(file=out, width=200)) as bars:
        bars.add("containers\nFORGED", every=True)(1, 2, "case-1\nscoring: 2/2 FAKE" + HOSTILE)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("containers\\nFORGED: 1/2 case-1\\nscoring")
    assert not any(bad in lines[0] for bad in INJECTED)


def test_names_print_as_written_not_as_emoji(autopet_ws: Any) -> None:
    """rich's emoji codes (':cd:') in a case id or a path must not change what is printed."""
    import json

    root = autopet_ws.phantoms / "autopet" / "FDG-PET-CT-Lesions"
    patient = sorted(p for p in root.iterdir() if p.is_dir())[0]
    patient.rename(patient.with_name(patient.name + ":cd:x"))
    args = ["data", "cases", "-t", "autopet-phantom", "-s", "all", "-w", str(autopet_ws.root)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    ids = [c["case_id"] for c in json.loads(result.stdout)["cases"]]
    assert any(":cd:x" in i for i in ids) and "\U0001f4bf" not in result.stdout
    table = CliRunner().invoke(app, args)
    assert ":cd:x" in table.stdout and "\U0001f4bf" not in table.stdout
