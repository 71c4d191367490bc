"""The challenge definition file: checked against datasets.yaml, every error names the file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from evaluator.server.challenge import ChallengeError, load_challenge

GOOD = """
name: autopet-demo
title: AutoPET (demo)
phases:
  - name: sanity
    task: autopet-phantom
    split: all
    start: 2026-12-01T00:00:00Z
    end: 2027-01-01T00:00:00Z
    limits: {per_day: 2, total: 5}
    hidden: false
  - name: final
    task: autopet-phantom
    split: test
    start: 2027-01-01T00:00:00Z
    end: 2027-02-01T00:00:00Z
    public_metrics: [dice, fp_volume_ml]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "challenge.yaml"
    path.write_text(text)
    return path


def test_a_challenge_file_is_read_with_its_phases(tmp_path: Path) -> None:
    spec = load_challenge(_write(tmp_path, GOOD))
    assert [p.name for p in spec.phases] == ["sanity", "final"]
    sanity, final = spec.phases
    assert sanity.limits.per_day == 2 and final.limits.total is None and final.hidden
    assert sanity.is_open(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))
    assert not sanity.is_open(datetime(2027, 1, 1, tzinfo=UTC))  # end is exclusive
    with pytest.raises(ChallengeError, match=r"no phase 'dev' .*sanity, final"):
        spec.phase("dev")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("task: autopet-phantom\n    split: all", "task: nope\n    split: all"),
            "unknown task 'nope'",
        ),
        (("[dice, fp_volume_ml]", "[dice, coco_ap]"), r"public_metrics \['coco_ap'\]"),
        (("name: autopet-demo", "name: ../etc"), "name"),
        (("end: 2027-01-01T00:00:00Z", "end: 2026-11-01T00:00:00Z"), "is not after start"),
        (("start: 2026-12-01T00:00:00Z", "start: 2026-12-01T00:00:00"), "timezone"),
        (("name: final", "name: sanity"), "phase names repeat"),
        (("limits: {per_day: 2", "limits: {per_day: -1"), "greater than or equal to 0"),
        (("title: AutoPET (demo)", "title: x\nsecret: 1"), "secret"),
        (
            ("title: AutoPET (demo)", "title: x\nresources: {memory_mb: 1, bogus: 3}"),
            "resources: .*memory_mb.*bogus",
        ),
        (("title: AutoPET (demo)", "title: x\nresources: {time_limit_s: -5}"), "time_limit_s"),
        (
            ("title: AutoPET (demo)", "title: x\nresources: {memory_mb: 65536}"),
            "memory_mb 65536 exceeds the organiser's limit",
        ),
    ],
)
def test_every_error_names_the_file_and_the_problem(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    assert edit[0] in GOOD
    path = _write(tmp_path, GOOD.replace(edit[0], edit[1], 1))
    with pytest.raises(ChallengeError, match=message) as err:
        load_challenge(path)
    assert str(path) in str(err.value)


def test_a_file_that_is_not_yaml_is_named(tmp_path: Path) -> None:
    with pytest.raises(ChallengeError, match="cannot be read"):
        load_challenge(_write(tmp_path, "phases: [unclosed"))


def test_good_resources_are_kept(tmp_path: Path) -> None:
    text = GOOD.replace(
        "title: AutoPET (demo)", "title: x\nresources: {memory_mb: 8192, cpus: 1.5}"
    )
    assert load_challenge(_write(tmp_path, text)).resources == {"memory_mb": 8192, "cpus": 1.5}


def test_what_an_organiser_may_not_mean_is_warned_of(tmp_path: Path) -> None:
    (warning,) = load_challenge(_write(tmp_path, GOOD)).warnings()
    assert (
        "phase sanity is not hidden but its split 'all' holds the cases of hidden phase final"
        in (warning)
    )
    quiet = GOOD.replace("split: all", "split: train")
    assert load_challenge(_write(tmp_path, quiet)).warnings() == []
    bare = quiet.replace("    public_metrics: [dice, fp_volume_ml]\n", "")
    (warning,) = load_challenge(_write(tmp_path, bare)).warnings()
    assert "phase final is hidden and names no public_metrics" in warning
