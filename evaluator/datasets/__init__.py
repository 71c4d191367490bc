"""Dataset adapters (one per on-disk format), phantom generators, splits and checks."""
