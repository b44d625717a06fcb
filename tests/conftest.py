"""Shared test settings: deterministic hypothesis profile, one torch thread, Agg backend."""

import os

import shaprl  # noqa: F401 -- first: it sets the kernel baseline before numpy loads

# isort: split
import matplotlib
from hypothesis import settings

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")
settings.register_profile("repro", deadline=None, derandomize=True, max_examples=60)
settings.load_profile("repro")
