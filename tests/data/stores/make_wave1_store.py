"""Write a store with the wave-1 release (run from a checkout of commit 42e6cc1; see README.md)."""

import sys
from pathlib import Path


def main():
    from evaluator.datasets.phantoms import write_phantoms
    from evaluator.evaluate import evaluate_run, write_degraded_predictions
    from evaluator.simulate.dataset import run_dataset_study
    from evaluator.store import Store
    from evaluator.workspace import Workspace

    root = Path(sys.argv[1])
    ws = Workspace(root / "ws").ensure()
    write_phantoms("hecktor", workspace=ws, cases=3, progress=False)
    store = f"sqlite:///{root}/wave1.sqlite"
    db = Store.open(store)
    for name, q, team in (
        ("alpha", 0.9, "A"),
        ("beta", 0.6, "B"),
        ("threshold", 0.4, "ccbench baselines"),
    ):
        db.ensure_entry(
            name,
            image=f"ccbench/{name}:latest",
            image_digest="sha256:" + "ab" * 32,
            manifest={"name": name, "team": team, "image": f"ccbench/{name}:latest"},
        )
        pred = write_degraded_predictions(
            "hecktor-phantom", "all", root / "pred" / name, workspace=ws, seed=1, quality=q
        )
        evaluate_run(
            "hecktor-phantom",
            "all",
            pred,
            workspace=ws,
            store=store,
            entry=name,
            run_name=f"{name}--hecktor-phantom",
            workers=1,
            image_digest="sha256:" + "ab" * 32,
        )
    run_dataset_study(
        "hecktor-phantom",
        "all",
        op="drop",
        order="largest",
        workspace=ws,
        n_max=1,
        store=store,
        out=root / "sim",
        workers=1,
        plots=False,
    )


if __name__ == "__main__":
    main()
