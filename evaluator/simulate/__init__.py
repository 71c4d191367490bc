"""Degradation operators, toy-sphere studies and dataset-level studies."""
