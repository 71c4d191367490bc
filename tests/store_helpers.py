"""Helpers shared by the store tests."""

from __future__ import annotations

import threading

from evaluator.store import Store


def open_concurrently(url: str, n: int) -> list[BaseException]:
    """Open (and close) the store at ``url`` from ``n`` threads started together.

    Returns what the threads raised; an empty list when every opener succeeded.
    """
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            Store.open(url).close()
        except BaseException as err:  # collected and re-raised in the test thread
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def stored_rows(url: str, name: str) -> list[tuple[object, ...]]:
    """Every stored number and error of run ``name``: scores, components, errors (NaN as text)."""
    import math

    store = Store.open(url)
    try:
        run = store.find_run(name)
        assert run is not None, name
        frame = store.results_frame(run_ids=[run.id])
        comps = store.components_frame(run_ids=[run.id])
        errors = store.errors_frame(run_ids=[run.id])
    finally:
        store.close()

    def norm(v: float) -> object:
        return "nan" if math.isnan(v) else v

    return (
        [(r.case_id, r.label, r.metric, norm(r.value)) for r in frame.itertuples()]
        + [(r.case_id, r.label, r.metric, r.component, norm(r.value)) for r in comps.itertuples()]
        + [(r.case_id, r.error_class, r.message) for r in errors.itertuples()]
    )
