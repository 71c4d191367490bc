"""ccbench leaderboards: rankings, statistics, plots and the static site."""

__all__: list[str] = []
