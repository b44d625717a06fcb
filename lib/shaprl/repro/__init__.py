"""The reproduction pipeline: profiles, artefacts and claims, caching, and the runner.

Notebooks use three things from here::

    cfg = repro.settings(profile, smoke={...}, quick={...}, paper={...})
    report = repro.Report("01_road_sign", profile)
    report.table(...); report.figure(...); report.claim(...); report.finalize()

``python -m shaprl.repro.run`` executes the notebook series (``make reproduce``).
"""

from .cache import cached
from .paths import cache_dir, output_dir, repo_root
from .profiles import PROFILES, resolve_profile, settings
from .report import Claim, Report

__all__ = [
    "PROFILES",
    "Claim",
    "Report",
    "cache_dir",
    "cached",
    "output_dir",
    "repo_root",
    "resolve_profile",
    "settings",
]
