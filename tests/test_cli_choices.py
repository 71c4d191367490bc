"""Fixed CLI choices come from the library's Literals; the NSD tolerance has one name.

* A wrong value of a fixed-choice option is typer's usage error (exit code 2) naming the valid
  values, not a traceback or a library error.
* Every choice enum of :mod:`evaluator.cli` has exactly the values of the library ``Literal`` (or
  registry) it mirrors, so the two lists cannot drift.
* ``ccbench metrics`` takes ``--nsd-tolerance-mm`` and its old name ``--nsd-tolerance``; the
  Python API says ``nsd_tolerance_mm`` everywhere.
"""

from __future__ import annotations

import inspect
import json
from enum import Enum
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from evaluator import cli
from evaluator.cli import app
from evaluator.metrics import api, cc, files, surface
from evaluator.metrics.cc import CCMode
from evaluator.runner.contract import Filesystem, Interface
from evaluator.runner.distributed import Staging
from evaluator.runner.images import BASE_IMAGES
from evaluator.runner.run import BackendName
from evaluator.simulate.dataset import Operation
from evaluator.simulate.operators import Order
from evaluator.simulate.toy import TOY_STUDIES

runner = CliRunner(env={"COLUMNS": "200"})

#: Each choice enum of the CLI and the library values it mirrors.
from evaluator.choices import ClickMode, PromptKind, ResultFormat  # noqa: E402
from evaluator.datasets.phantoms import LAYOUTS  # noqa: E402
from evaluator.learn.models import PROFILES, TRAINABLE  # noqa: E402

MIRRORS: dict[type[Enum], tuple[str, ...]] = {
    cli.CCModeChoice: get_args(CCMode),
    cli.InterfaceChoice: get_args(Interface),
    cli.FilesystemChoice: get_args(Filesystem),
    cli.BackendChoice: get_args(BackendName),
    cli.StudyOperationChoice: (*get_args(Operation), "all"),
    cli.StudyOrderChoice: (*get_args(Order), "both"),
    cli.BaseImageChoice: tuple(BASE_IMAGES),
    cli.ToyStudyChoice: tuple(TOY_STUDIES),
    cli.ModelChoice: TRAINABLE,
    cli.ProfileChoice: PROFILES,
    cli.FormatChoice: get_args(ResultFormat),
    cli.LayoutChoice: LAYOUTS,
    cli.StagingChoice: get_args(Staging),
    cli.PromptChoice: get_args(PromptKind),
    cli.ClickModeChoice: get_args(ClickMode),
}


def _text(output: str) -> str:
    """The output with rich's panel borders removed and whitespace collapsed (unwrapped)."""
    return " ".join(output.replace("│", " ").split())


def _listed(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


#: Command line before the option, the option, a wrong value and the values it takes.
WRONG_CHOICES: list[tuple[list[str], str, str, tuple[str, ...]]] = [
    (["metrics", "p.nii.gz", "r.nii.gz"], "--mode", "inch", get_args(CCMode)),
    (["run", "entry", "-t", "task"], "--backend", "podman", get_args(BackendName)),
    (["run", "entry", "-t", "task"], "--staging", "nfs", get_args(Staging)),
    (["submit", "img", "-n", "e", "-t", "task"], "--interface", "gc", get_args(Interface)),
    (["preflight", "img", "-t", "task"], "--filesystem", "rw", get_args(Filesystem)),
    (["simulate", "dataset", "-t", "task"], "--op", "melt", (*get_args(Operation), "all")),
    (
        ["simulate", "dataset", "-t", "task", "--op", "drop"],
        "--order",
        "middle",
        (*get_args(Order), "both"),
    ),
    (["images", "build-base"], "--image", "gpu", tuple(BASE_IMAGES)),
    (["simulate", "toy"], "--study", "melt_all", tuple(TOY_STUDIES)),
]


@pytest.mark.parametrize(
    ("args", "option", "bad", "values"),
    [pytest.param(*case, id=f"{case[0][0]} {case[1]}") for case in WRONG_CHOICES],
)
def test_a_wrong_choice_is_a_usage_error_that_lists_the_choices(
    args: list[str],
    option: str,
    bad: str,
    values: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # the default workspace and submissions would be here
    monkeypatch.delenv("CCBENCH_WORKSPACE", raising=False)
    result = runner.invoke(app, [*args, option, bad])
    assert result.exit_code == 2, result.output
    message = _text(result.output)
    assert f"Invalid value for '{option}'" in message
    assert f"'{bad}' is not one of {_listed(values)}" in message
    assert "Traceback" not in result.output
    assert not any(tmp_path.iterdir())  # nothing ran


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (["run"], "<docker|local>"),
        (["metrics"], "<mm|voxel>"),
        (["submit"], "<batch|grand-challenge>"),
        (["simulate", "dataset"], "<drop|enlarge|insert|erode|all>"),
    ],
)
def test_help_lists_the_choices(command: list[str], shown: str) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert shown in result.output


def test_every_choice_enum_mirrors_the_library() -> None:
    enums = {
        obj
        for obj in vars(cli).values()
        if isinstance(obj, type) and issubclass(obj, Enum) and obj.__module__ == cli.__name__
    }
    enums.discard(cli._Choice)
    assert enums == set(MIRRORS), "a choice enum of evaluator.cli is missing from MIRRORS"
    for enum, values in MIRRORS.items():
        assert tuple(member.value for member in enum) == values, enum.__name__
        assert all(isinstance(member, str) for member in enum)


def test_defaults_are_members() -> None:
    params = {
        p.name: p.default
        for command in (cli.metrics_cmd, cli.run_cmd, cli.submit_cmd, cli.simulate_dataset)
        for p in inspect.signature(command).parameters.values()
    }
    assert params["mode"] is cli.CCModeChoice("mm")
    assert params["backend"] is cli.BackendChoice("docker")
    assert params["interface"] is cli.InterfaceChoice("batch")
    assert params["filesystem"] is cli.FilesystemChoice("ephemeral")
    assert params["op"] is cli.StudyOperationChoice("all")
    assert params["order"] is None  # both orders with --op all, else smallest (study_grid)


# --------------------------------------------------------------------------------------------
# one name for the NSD tolerance
# --------------------------------------------------------------------------------------------


def _write(path: Path, array: np.ndarray) -> str:
    img = sitk.GetImageFromArray(array)
    img.SetSpacing((1.0, 1.0, 2.0))  # x, y, z: 2 mm along the array's first axis
    sitk.WriteImage(img, str(path))
    return str(path)


@pytest.fixture
def pair(tmp_path: Path) -> list[str]:
    ref = np.zeros((6, 10, 10), np.uint8)
    ref[1:4, 2:6, 2:6] = 1
    ref[2:4, 7:9, 7:9] = 1
    pred = np.roll(ref, 1, axis=0)  # one 2 mm voxel along z
    return [_write(tmp_path / "pred.nii.gz", pred), _write(tmp_path / "ref.nii.gz", ref)]


def _nsd(pair: list[str], *options: str) -> dict[str, float]:
    result = runner.invoke(app, ["metrics", *pair, "-m", "nsd,cc_nsd", "--json", *options])
    assert result.exit_code == 0, result.output
    values: dict[str, float] = json.loads(result.stdout)["values"]["1"]
    return values


def test_metrics_takes_both_tolerance_names(pair: list[str]) -> None:
    new = _nsd(pair, "--nsd-tolerance-mm", "0.5")
    old = _nsd(pair, "--nsd-tolerance", "0.5")
    assert new == old
    assert new["nsd"] < 1.0 and new["cc_nsd"] < 1.0
    assert _nsd(pair, "--nsd-tolerance-mm", "2") == {"nsd": 1.0, "cc_nsd": 1.0}
    assert _nsd(pair) == _nsd(pair, "--nsd-tolerance-mm", "1")  # default 1 mm


def _tolerance(func: Any) -> inspect.Parameter:
    return inspect.signature(func).parameters["nsd_tolerance_mm"]


def test_nsd_tolerance_has_one_name_in_the_python_api() -> None:
    # The single metrics require it (a choice, like the spacing) ...
    for func in (surface.nsd, cc.cc_nsd):
        param = _tolerance(func)
        assert param.kind is inspect.Parameter.KEYWORD_ONLY
        assert param.default is inspect.Parameter.empty, func.__name__
    assert "nsd_tolerance_mm" in inspect.signature(surface.SurfaceDistances.nsd).parameters
    # ... the suites default it to 1 mm.
    for func in (api.compute_metrics, surface.surface_metrics, cc.cc_metrics, files.score_files):
        assert _tolerance(func).default == 1.0, func.__name__
    # No public function of the metrics package takes another name for it.
    for module in (api, cc, files, surface):
        for name, func in vars(module).items():
            if callable(func) and not name.startswith("_"):
                try:
                    params = inspect.signature(func).parameters
                except (TypeError, ValueError):
                    continue
                assert not {"tolerance_mm", "nsd_tolerance", "tolerance"} & set(params), name


def _commands() -> list[list[str]]:
    """Every command path of the CLI, e.g. ``["simulate", "toy"]``."""
    import typer.main

    def walk(group: Any, prefix: list[str]) -> list[list[str]]:
        found = []
        for name, command in getattr(group, "commands", {}).items():
            path = [*prefix, name]
            found += walk(command, path) if hasattr(command, "commands") else [path]
        return found

    return walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_shows_every_default_whole(command: list[str]) -> None:
    """Help texts are rendered as markdown: ``<workspace>`` would vanish into ``/site``."""
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    text = _text(result.output)
    assert "[default: /" not in text and "[default: -" not in text, text


def test_zero_workers_is_a_usage_error() -> None:
    result = runner.invoke(app, ["evaluate", "-t", "btcv", "-p", "x", "--workers", "0"])
    assert result.exit_code == 2
    assert "--workers" in result.output and "greater than or equal to 1" in result.output
