"""The claims ledger: one schema for every paper's claims and where their evidence comes from.

A claim is a qualitative statement of a paper checked in code. Its **status** is one of

* ``reproduced`` / ``partly reproduced`` / ``not reproduced`` -- decided by the evidence;
* ``not testable here`` -- a property of the paper's own systems or data that this repository
  cannot observe (e.g. "trace w3 has the highest value" on traces that were never published);
  counted apart from the decided claims;
* ``indicative`` -- the verdict needs a larger budget than the run that produced it
  (``needs="paper"`` under ``quick``) and no committed long run supplies it.

Its **kind** is ``evidence`` or ``construction`` (holds by how an example was built), and its
**source** says where the numbers come from: this notebook run (with its profile), or a
committed long run under ``data/`` (:func:`committed_run`), identified by its path and the
hash of its configuration. A ``needs="paper"`` claim whose source is a committed run is
decided: the long run *is* the paper-budget evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DECIDED = ("reproduced", "partly reproduced", "not reproduced")
NOT_TESTABLE = "not testable here"
INDICATIVE = "indicative"
STATUSES = (*DECIDED, NOT_TESTABLE, INDICATIVE)
KINDS = ("evidence", "construction")


@dataclass(frozen=True)
class Evidence:
    """Where a verdict's numbers come from: this run, or a committed long run."""

    path: str  #: the committed run's main file, relative to the repository root
    config_hash: str  #: hash of the run's configuration (its JSON, volatile fields excluded)
    budget: str = "paper"  #: the budget the committed run used, in words
    #: why its numbers may not be what the current code gives (e.g. made by other code);
    #: appended to the claim's ``measured`` text by :func:`decide`
    warning: str = ""

    def describe(self) -> str:
        return f"committed run `{self.path}` (config {self.config_hash}, {self.budget} budget)"


def committed_run(path: str | Path | Sequence[str | Path], *, budget: str = "paper") -> Evidence:
    """Evidence from a committed long run: a validated table under ``data/`` with its JSON.

    The table is read through :func:`shaprl.repro.data.read_table` (so it is declared as an
    input of the notebook, and a change to it re-runs the notebook); the configuration hash
    is the JSON's meaningful fields (:func:`shaprl.repro.inputs.input_digest`). ``path`` may
    be several tables (a claim decided by more than one committed run, e.g. the chunks of
    one long run): every one is declared, the paths are joined with ``+`` and the hash
    covers all their configurations, in order.
    """
    import hashlib

    from .data import sidecar
    from .inputs import declare_input, input_digest
    from .paths import repo_root

    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        raise ValueError("committed_run: no path given")
    root = repo_root()
    shown, digests = [], []
    for p in map(Path, paths):
        if not p.is_absolute():
            p = root / p
        meta = sidecar(p)
        declare_input(p)
        declare_input(meta)
        shown.append(p.relative_to(root).as_posix() if p.is_relative_to(root) else str(p))
        digests.append(input_digest(meta))
    digest = (
        digests[0] if len(digests) == 1 else hashlib.sha256("".join(digests).encode()).hexdigest()
    )
    return Evidence(" + ".join(shown), digest[:12], budget)


def this_run(profile: str) -> str:
    return f"this run ({profile})"


@dataclass(frozen=True)
class Claim:
    """A qualitative claim of a paper, evaluated in code."""

    key: str
    paper: str  #: where the claim is made, e.g. "SVERL Table 5"
    statement: str  #: the claim in our words
    status: str  #: one of STATUSES
    measured: str  #: the numbers behind the verdict (or why it cannot be tested here)
    profile: str  #: profile of the notebook run that recorded the claim
    kind: str = "evidence"  #: evidence, or a construction check (holds by how it was built)
    source: str = ""  #: where the evidence comes from (this run, or a committed run)


def decide(
    key: str,
    *,
    holds: bool | str | None,
    measured: str,
    profile: str,
    needs: str | None = None,
    source: Evidence | None = None,
) -> tuple[str, str, str]:
    """``(status, measured, source)`` of a claim; see the module docstring for the rules.

    ``holds`` is True, False, ``"partly"`` or ``"not testable"`` (``measured`` then says why),
    or None when this profile does not run the experiment at all: *indicative*, with
    ``measured`` saying so and no verdict appended.
    """
    if holds is None:
        return INDICATIVE, measured, this_run(profile)
    if isinstance(holds, str):
        if holds == "not testable":
            return NOT_TESTABLE, measured, "—"
        if holds != "partly":
            raise ValueError(
                f"claim {key!r}: holds must be True, False, 'partly' or 'not testable', "
                f"got {holds!r}"
            )
        verdict = "partly reproduced"
    else:
        verdict = "reproduced" if bool(holds) else "not reproduced"
    if source is not None:
        if source.warning and source.warning not in measured:
            measured = f"{measured} [{source.warning}]"
        return verdict, measured, source.describe()
    where = this_run(profile)
    if needs is not None and needs != profile:
        outcome = {"reproduced": "holds", "not reproduced": "fails"}.get(verdict, "partly holds")
        return INDICATIVE, f"{measured} ({outcome} under {profile})", where
    return verdict, measured, where
