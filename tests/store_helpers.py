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
