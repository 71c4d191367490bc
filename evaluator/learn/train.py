"""``ccbench baselines train``: train a learned baseline on a task's training folds.

The recipe (both profiles): every channel normalised by its rule (:mod:`.preprocess`: CT
windowing, SUV window, the organ map as an uptake-organ mask), patches sampled with a bias to
foreground (``Profile.foreground`` of them centred on a random foreground voxel), DiceCE loss
(MONAI ``DiceCELoss``, softmax), AdamW (weight decay 1e-5) with a cosine schedule over the
profile's iterations, validation Dice on the fold's validation cases every
``Profile.validate_every`` iterations with the sliding-window inference the container uses
(:func:`.infer.predict_normalised`). No weights are downloaded: every network starts from its
seeded random initialisation.

Writes ``<workspace>/baselines/<model>/<task>/fold<k>/``: ``config.json`` (everything the
container needs, plus provenance: cases, data fingerprint, versions, seed, time), ``model.pt``
(``state_dict``), ``training.log``, ``curve.csv`` and ``curve.png`` (loss and validation Dice),
and records a run of kind ``training`` in the store with those files as artifacts.

Determinism: with the same seed, data and iteration count the CPU weights are identical (torch's
deterministic algorithms are switched on; the patch sampler and the network initialisation draw
from the seed). A run stopped by its profile's time budget says so in its config and log: how far
it got depends on the machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from evaluator.errors import TrainingError
from evaluator.learn.models import MODELS, PROFILES, ModelSpec, Profile, build_network
from evaluator.learn.preprocess import channel_rule, stack_channels
from evaluator.workspace import Workspace

__all__ = [
    "ANATOMY_CHANNEL",
    "TrainResult",
    "dice_per_label",
    "find_trained",
    "fold_cases",
    "record_training",
    "sample_patch",
    "train_baseline",
    "trained_dir",
]

#: The optional input channel of the anatomy-guided baseline.
ANATOMY_CHANNEL = "ORGANS"
#: Called after every iteration: (iterations done, iterations planned, one-line status).
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TrainResult:
    """What one training produced."""

    model: str
    task: str
    fold: int
    profile: str
    seed: int
    folder: Path
    iterations: int
    seconds: float
    stopped_by_time_budget: bool
    val_dice: float
    run_id: int | None
    reused: bool = False

    @property
    def config(self) -> dict[str, Any]:
        """The written ``config.json``."""
        data: dict[str, Any] = json.loads((self.folder / "config.json").read_text())
        return data


def trained_dir(workspace: Workspace, model: str, task: str, fold: int) -> Path:
    """``<workspace>/baselines/<model>/<task>/fold<k>``.

    Examples
    --------
    >>> trained_dir(Workspace(Path("/ws")), "monai-unet", "autopet-phantom", 0)
    PosixPath('/ws/baselines/monai-unet/autopet-phantom/fold0')
    """
    return workspace.root / "baselines" / model / task / f"fold{fold}"


def _has_weights(folder: Path) -> bool:
    """``model.pt`` beside ``config.json``, or (nnU-Net) the fold's final checkpoint."""
    if (folder / "model.pt").is_file():
        return True
    try:
        config = json.loads((folder / "config.json").read_text())
        results = folder / str(config["results_folder"])
        return (results / f"fold_{config['fold']}" / "checkpoint_final.pth").is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def trained_folds(workspace: Workspace, model: str, task: str) -> dict[int, Path]:
    """Fold -> trained folder of a model and task, for every fold with weights, in fold order."""
    root = workspace.root / "baselines" / model / task
    found = {
        int(p.parent.name[4:]): p.parent
        for p in root.glob("fold*/config.json")
        if p.parent.name[4:].isdigit() and _has_weights(p.parent)
    }
    return dict(sorted(found.items()))


def find_trained(workspace: Workspace, model: str, task: str) -> Path | None:
    """The trained folder of a model and task: fold 0 when trained, else the lowest fold."""
    return next(iter(trained_folds(workspace, model, task).values()), None)


def sample_patch(
    rng: np.random.Generator,
    x: npt.NDArray[np.float32],
    y: npt.NDArray[np.int64],
    foreground: npt.NDArray[np.intp],
    patch: Sequence[int],
    p_foreground: float,
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """One training patch of ``x`` (channels first) and ``y``, padded where the image is smaller.

    With probability ``p_foreground`` (and when the case has foreground) the patch is centred on
    a random voxel of ``foreground`` (flat indices into ``y``), else on a uniform random voxel.
    Padding uses each channel's minimum (air after CT windowing) and label 0.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = np.zeros((10, 10), np.int64); y[9, 9] = 1
    >>> x = np.zeros((1, 10, 10), np.float32)
    >>> xp, yp = sample_patch(rng, x, y, np.flatnonzero(y), (4, 4), 1.0)
    >>> xp.shape, int(yp.sum())
    ((1, 4, 4), 1)
    """
    shape = np.array(y.shape)
    size = np.array(patch)
    if rng.random() < p_foreground and foreground.size:
        centre = np.array(np.unravel_index(foreground[rng.integers(foreground.size)], y.shape))
    else:
        centre = np.array([rng.integers(n) for n in shape])
    start = np.clip(centre - size // 2, 0, np.maximum(shape - size, 0))
    region = tuple(slice(int(s), int(s + n)) for s, n in zip(start, size, strict=True))
    xp, yp = x[(slice(None), *region)], y[region]
    short = size - np.array(yp.shape)
    if short.any():
        widths = [(0, int(n)) for n in short]
        yp = np.pad(yp, widths)
        xp = np.stack(
            [np.pad(c, widths, constant_values=float(c.min()) if c.size else 0.0) for c in xp]
        )
    return np.ascontiguousarray(xp), np.ascontiguousarray(yp)


def dice_per_label(
    pred: npt.ArrayLike, ref: npt.ArrayLike, labels: Sequence[int]
) -> dict[int, float]:
    """Dice of each label present in ``ref`` or ``pred`` (both empty: left out).

    Examples
    --------
    >>> dice_per_label([0, 1, 1, 2], [0, 1, 2, 2], [1, 2])
    {1: 0.6666666666666666, 2: 0.6666666666666666}
    """
    p, r = np.asarray(pred), np.asarray(ref)
    out = {}
    for label in labels:
        a, b = p == label, r == label
        total = int(a.sum() + b.sum())
        if total:
            out[int(label)] = 2.0 * float(np.logical_and(a, b).sum()) / total
    return out


def _versions() -> dict[str, str]:
    import monai
    import torch

    import evaluator

    return {
        "ccbench": evaluator.__version__,
        "torch": torch.__version__,
        "monai": monai.__version__,
        "numpy": np.__version__,
    }


def fold_cases(task: Any, fold: int, workspace: Workspace) -> tuple[list[str], list[str]]:
    from evaluator.datasets.splits import read_split

    path = task.split_path(workspace)
    if not path.is_file():
        raise TrainingError(
            f"task '{task.name}': no split file {path}; run `ccbench data split --task {task.name}`"
        )
    folds, _ = read_split(path)
    if not 0 <= fold < len(folds):
        raise TrainingError(f"task '{task.name}' has folds 0..{len(folds) - 1}, not {fold}")
    return [str(c) for c in folds[fold]["train"]], [str(c) for c in folds[fold]["val"]]


def _load_cases(
    dataset: Any,
    case_ids: Sequence[str],
    channels: Sequence[str],
    rules: dict[str, dict[str, Any]],
    lookup: npt.NDArray[np.int64],
) -> list[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64], npt.NDArray[np.intp]]]:
    """Normalised inputs, class-index labels and foreground indices of each case."""
    import SimpleITK as sitk

    out = []
    for cid in case_ids:
        case = dataset.case(cid)
        missing = [c for c in channels if c not in case.channels]
        if missing:
            raise TrainingError(
                f"case {cid} has no {', '.join(missing)} channel (for the organ map, write the "
                "phantoms again: `ccbench data phantoms`)"
            )
        arrays = {c: sitk.GetArrayFromImage(case.read_channel(c)) for c in channels}
        label = sitk.GetArrayFromImage(case.read_label()).astype(np.int64)
        if label.max(initial=0) >= lookup.size:
            raise TrainingError(f"case {cid}: label value {label.max()} is not in the task's map")
        y = lookup[label]
        out.append((stack_channels(arrays, channels, rules), y, np.flatnonzero(y)))
    return out


def _plot_curve(rows: list[dict[str, Any]], losses: list[float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    window = max(1, len(losses) // 25)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid") if losses else np.zeros(0)
    ax1.plot(np.arange(len(losses)) + 1, losses, color="0.8", lw=0.8, label="per iteration")
    ax1.plot(np.arange(len(smooth)) + window, smooth, color="C0", label=f"mean of {window}")
    ax1.set(xlabel="iteration", ylabel="DiceCE loss", title="training loss")
    ax1.legend(frameon=False)
    its = [r["iteration"] for r in rows]
    ax2.plot(its, [r["val_dice"] for r in rows], "o-", color="C1")
    ax2.set(xlabel="iteration", ylabel="Dice", ylim=(0, 1), title="validation Dice (fold)")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_baseline(
    model: str,
    task: str,
    *,
    workspace: Workspace,
    profile: str = "quick",
    seed: int = 0,
    fold: int = 0,
    iterations: int | None = None,
    time_budget_s: float | None = None,
    store: str | None = None,
    reuse: bool = False,
    progress: Progress | None = None,
) -> TrainResult:
    """Train ``model`` on fold ``fold`` of ``task`` (see the module docstring).

    Parameters
    ----------
    model, task
        A name of :data:`~evaluator.learn.models.MODELS` and a task of datasets.yaml with the
        model's dimensionality.
    profile
        ``quick`` (minutes on 2 CPU cores) or ``full`` (the published recipe; a GPU).
    seed, fold
        Seed of every random choice; the fold whose ``train`` cases are learned from and whose
        ``val`` cases are validated on.
    iterations, time_budget_s
        Override the profile's iteration count and time budget.
    store
        Results store URL (default: the workspace's).
    reuse
        Keep an existing trained folder made with the same settings and data (the demo).
    progress
        Called after each iteration.

    Raises
    ------
    TrainingError
        Unknown model, profile or task, a task of the wrong dimensionality, a missing split
        or channel, or torch/MONAI not installed.
    """
    from evaluator.datasets.base import open_dataset
    from evaluator.datasets.registry import load_registry
    from evaluator.evaluate.pipeline import dataset_fingerprint

    if model not in MODELS:
        raise TrainingError(f"unknown model '{model}' (known: {', '.join(MODELS)})")
    if profile not in PROFILES:
        raise TrainingError(f"unknown profile '{profile}' (known: {', '.join(PROFILES)})")
    spec: ModelSpec = MODELS[model]
    task_spec = load_registry().task(task)
    if task_spec.dims != spec.dims:
        raise TrainingError(
            f"model '{model}' is {spec.dims}D and task '{task}' is {task_spec.dims}D"
        )
    try:
        import monai  # noqa: F401
        import torch
    except ImportError as err:
        raise TrainingError(
            f"training needs torch and MONAI ({err.name} is missing): "
            "`bash scripts/bootstrap.sh torch` installs them"
        ) from None
    chosen = Profile.from_json(spec.profiles[profile].to_json())
    updates: dict[str, Any] = {}
    if iterations is not None:
        updates["iterations"] = int(iterations)
    if time_budget_s is not None:
        updates["time_budget_s"] = float(time_budget_s)
    if updates:
        chosen = Profile.from_json({**chosen.to_json(), **updates})
    family = task_spec.phantom_of or task.split("-")[0]
    channels = [*task_spec.channels, *([ANATOMY_CHANNEL] if spec.anatomy else [])]
    from evaluator.datasets.phantoms import ORGAN_IDS, UPTAKE_ORGANS

    uptake = [ORGAN_IDS[name] for name in UPTAKE_ORGANS]
    rules = {c: channel_rule(c, family, organ_ids=uptake) for c in channels}
    label_values = [0, *sorted(task_spec.labels)]
    lookup = np.zeros(max(label_values) + 1, dtype=np.int64)
    lookup[label_values] = np.arange(len(label_values))

    train_ids, val_ids = fold_cases(task_spec, fold, workspace)
    dataset = open_dataset(task_spec, workspace=workspace)
    fingerprint = dataset_fingerprint(
        (dataset.case(c) for c in sorted([*train_ids, *val_ids])),
        cache=workspace.root / "cache" / "sha256.json",
        channels=True,
    )
    folder = trained_dir(workspace, model, task, fold)
    settings = {
        "model": model,
        "task": task,
        "fold": fold,
        "seed": seed,
        "profile_name": profile,
        "profile": chosen.to_json(),
        "dataset_fingerprint": fingerprint,
    }
    if reuse and (folder / "model.pt").is_file() and (folder / "config.json").is_file():
        old = json.loads((folder / "config.json").read_text())
        if all(old.get(k) == v for k, v in json.loads(json.dumps(settings)).items()):
            return TrainResult(
                model, task, fold, profile, seed, folder, int(old["iterations_done"]),
                float(old["seconds"]), bool(old["stopped_by_time_budget"]),
                float(old["final_val_dice"]), None, reused=True,
            )  # fmt: skip

    train = _load_cases(dataset, train_ids, channels, rules, lookup)
    val = _load_cases(dataset, val_ids, channels, rules, lookup)
    if not train:
        raise TrainingError(f"task '{task}' fold {fold} has no training cases")

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng(seed)
    from monai.losses import DiceCELoss

    from evaluator.learn.infer import LoadedModel, pick_device, predict_normalised

    device = pick_device()
    net = build_network(
        spec.network, chosen, dims=spec.dims, in_channels=len(channels),
        out_channels=len(label_values),
    ).to(device)  # fmt: skip
    optimiser = torch.optim.AdamW(net.parameters(), lr=chosen.learning_rate, weight_decay=1e-5)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=chosen.iterations)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    config: dict[str, Any] = {
        **settings,
        "network": spec.network,
        "dims": spec.dims,
        "instances": task_spec.instances,
        "channels": channels,
        "normalisation": rules,
        "label_values": label_values,
        "labels": {str(k): v for k, v in task_spec.labels.items()},
        "train_cases": train_ids,
        "val_cases": val_ids,
        "versions": _versions(),
        "device": str(device),
    }
    fg_labels = label_values[1:]

    def validate() -> float:
        net.eval()
        loaded = LoadedModel(network=net, config=config, device=device)
        scores = []
        for x, y, _ in val:
            pred = predict_normalised(loaded, x)
            per_label = dice_per_label(pred, np.asarray(label_values)[y], fg_labels)
            scores.append(float(np.mean(list(per_label.values()))) if per_label else 1.0)
        net.train()
        return float(np.mean(scores)) if scores else float("nan")

    folder.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def log(line: str) -> None:
        log_lines.append(line)
        (folder / "training.log").write_text("\n".join(log_lines) + "\n")

    log(
        f"{model} on {task} fold {fold}: {len(train)} training, {len(val)} validation cases; "
        f"profile {profile} ({chosen.iterations} iterations, patch {list(chosen.patch)}, "
        f"batch {chosen.batch}); seed {seed}; device {device}"
    )
    losses: list[float] = []
    curve: list[dict[str, Any]] = []
    start = time.perf_counter()
    stopped = False
    done = 0
    net.train()
    for it in range(chosen.iterations):
        xs, ys = [], []
        for _ in range(chosen.batch):
            x, y, fg = train[int(rng.integers(len(train)))]
            xp, yp = sample_patch(rng, x, y, fg, chosen.patch, chosen.foreground)
            xs.append(xp)
            ys.append(yp[None])
        xb = torch.from_numpy(np.stack(xs)).to(device)
        yb = torch.from_numpy(np.stack(ys)).to(device)
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.item()))
        done = it + 1
        elapsed = time.perf_counter() - start
        last = done == chosen.iterations
        over = chosen.time_budget_s is not None and elapsed > chosen.time_budget_s
        if done % chosen.validate_every == 0 or last or over:
            score = validate()
            curve.append(
                {
                    "iteration": done,
                    "loss": float(np.mean(losses[-chosen.validate_every :])),
                    "val_dice": score,
                    "seconds": round(time.perf_counter() - start, 2),
                }
            )
            log(
                f"iteration {done}/{chosen.iterations}: loss {curve[-1]['loss']:.4f}, "
                f"validation Dice {score:.4f} ({curve[-1]['seconds']:.1f} s)"
            )
        if progress is not None:
            progress(done, chosen.iterations, f"loss {losses[-1]:.3f}")
        if over and not last:
            stopped = True
            log(f"stopped by the time budget ({chosen.time_budget_s:.0f} s) at iteration {done}")
            break
    seconds = time.perf_counter() - start
    torch.save(net.state_dict(), folder / "model.pt")
    final = float(curve[-1]["val_dice"]) if curve else float("nan")
    config.update(
        iterations_done=done,
        stopped_by_time_budget=stopped,
        seconds=round(seconds, 2),
        final_val_dice=final,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    import csv

    with (folder / "curve.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["iteration", "loss", "val_dice", "seconds"])
        writer.writeheader()
        writer.writerows(curve)
    _plot_curve(curve, losses, folder / "curve.png", f"{model} on {task} (fold {fold})")
    run_id = record_training(workspace, store, config, folder)
    return TrainResult(
        model, task, fold, profile, seed, folder, done, seconds, stopped, final, run_id
    )


def record_training(
    workspace: Workspace,
    store: str | None,
    config: dict[str, Any],
    folder: Path,
    *,
    weights: Path | None = None,
) -> int:
    """A ``training`` run in the store with the folder's files as artifacts.

    ``weights`` is where the trained weights are (default: ``folder``, holding ``model.pt``).
    """
    from evaluator.store import Store, resolve_store_url

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    name = f"train--{config['model']}--{config['task']}--fold{config['fold']}--{stamp}"
    parameters = {
        k: config[k]
        for k in ("model", "profile_name", "profile", "seed", "fold", "iterations_done",
                  "stopped_by_time_budget", "seconds", "final_val_dice", "versions", "device")
    }  # fmt: skip
    with Store.open(resolve_store_url(store, workspace=workspace)) as db:
        run = db.create_run(
            name=name,
            task=config["task"],
            split=f"fold{config['fold']}",
            parameters=parameters,
            entry=config["model"],
            dataset_fingerprint=config["dataset_fingerprint"],
            kind="training",
        )
        note = "config.json + model.pt" if weights is None else "nnU-Net results folder"
        db.add_artifact(run.id, "weights", weights or folder, note=note)
        db.add_artifact(run.id, "logs", folder / "training.log")
        db.add_artifact(run.id, "table", folder / "curve.csv", note="training curve")
        db.add_artifact(run.id, "plot", folder / "curve.png", note="training curve")
        db.finish_run(run.id)
    return int(run.id)
