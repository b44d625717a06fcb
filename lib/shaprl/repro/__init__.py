"""The reproduction pipeline: profiles, artefacts and claims, caching, and the runner.

Notebooks use three things from here::

    cfg = repro.settings(profile, smoke={...}, quick={...}, paper={...})
    report = repro.Report("01_road_sign", profile)
    report.table(...); report.figure(...); report.claim(...); report.finalize()

Committed data under ``data/`` is read through :func:`read_table` (validated, versioned, and
declared as an input of the notebook, so a change re-runs it); a claim whose evidence is a
committed long run passes ``source=committed_run(path)``.

``python -m shaprl.repro.run`` executes the notebook series (``make reproduce``).
"""

from .cache import cached
from .claims import Claim, Evidence, committed_run
from .data import DataFormatError, read_table, write_table
from .inputs import declare_input
from .paths import cache_dir, output_dir, repo_root
from .profiles import PROFILES, resolve_profile, settings
from .report import Report

__all__ = [
    "PROFILES",
    "Claim",
    "DataFormatError",
    "Evidence",
    "Report",
    "committed_run",
    "declare_input",
    "read_table",
    "write_table",
    "cache_dir",
    "cached",
    "output_dir",
    "repo_root",
    "resolve_profile",
    "settings",
]
