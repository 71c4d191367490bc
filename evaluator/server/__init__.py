"""``ccbench serve``: a self-hosted challenge server on the ccbench store (work in progress).

Modules: :mod:`.challenge` (the challenge definition file), :mod:`.auth` (tokens). Nothing is
imported at package import time.
"""
