"""Run profiles: smoke (tests), quick (default reproduction) and paper (the papers' budgets)."""

from __future__ import annotations

import os
from typing import Any

PROFILES = ("smoke", "quick", "paper")


def resolve_profile(profile: str | None = None) -> str:
    """The active profile: the argument, else $SHAPRL_PROFILE, else ``"quick"``."""
    chosen = profile or os.environ.get("SHAPRL_PROFILE") or "quick"
    if chosen not in PROFILES:
        raise ValueError(
            f"unknown profile {chosen!r}; choose one of {', '.join(PROFILES)} "
            "(e.g. make reproduce PROFILE=paper)"
        )
    return chosen


def settings(profile: str | None, **by_profile: dict[str, Any]) -> dict[str, Any]:
    """Pick the settings of the active profile.

    ``by_profile`` maps profile names to dicts; every profile must be given (so a
    notebook states its budgets explicitly) and all must share the same keys.
    """
    active = resolve_profile(profile)
    missing = [p for p in PROFILES if p not in by_profile]
    extra = [p for p in by_profile if p not in PROFILES]
    if missing or extra:
        raise ValueError(
            f"settings need exactly the profiles {PROFILES}; missing {missing}, unknown {extra}"
        )
    keys = {p: set(v) for p, v in by_profile.items()}
    if len({frozenset(k) for k in keys.values()}) != 1:
        raise ValueError(f"every profile must set the same keys; got {keys}")
    return {"profile": active, **by_profile[active]}
