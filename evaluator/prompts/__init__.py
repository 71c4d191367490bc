"""Prompts of prompted entries: the ``/input/prompts.json`` contract (:mod:`.contract`) and the
click simulation of interactive lesion segmentation (:mod:`.clicks`). Imports nothing heavy."""
