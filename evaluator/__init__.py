"""ccbench evaluator: datasets, metrics, runners, simulations and the results store."""

__version__ = "0.1.0"
__all__ = ["__version__"]
