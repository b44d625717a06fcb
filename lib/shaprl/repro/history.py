"""The library's source as it was at a commit, read from git history (no checkout).

Used to recover the provenance of results recorded before their per-file code hashes were:
a result records :func:`~shaprl.repro.cache.library_fingerprint` of the code it depends on,
and :meth:`GitHistory.sources` rebuilds exactly the files (and the package version) that
fingerprint hashes at a given commit, so a commit whose reconstruction has the recorded
fingerprint *is* the code that made the result (up to a SHA-256 collision).
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

#: the package's directory in the repository
PACKAGE = "lib/shaprl"
#: where ``__version__`` is defined, in the order the package reads it (older layouts first
#: kept it in the package's ``__init__``)
VERSION_FILES = ("_version.py", "__init__.py")


class GitError(RuntimeError):
    """A git command failed (no repository, unknown commit, shallow history)."""


def version_of(source: bytes) -> str | None:
    """The string literal assigned to ``__version__`` in a module's source, if any."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if "__version__" in names and isinstance(node.value.value, str):
                return node.value.value
    return None


def select_sources(
    entries: dict[str, str], code: tuple[str, ...] | None, package: str = PACKAGE
) -> dict[str, str] | None:
    """Package-relative path -> blob of the files :func:`~shaprl.repro.cache.library_sources`
    would read, given a commit's tree listing ``entries`` (repository path -> blob).

    The same rule: a directory part contributes every ``*.py`` file under it, a file part
    itself, ``None`` the whole package's ``*.py``. ``None`` when a part is missing at that
    commit (the fingerprint would have failed there, so it cannot be the code that made it).
    """
    prefix = package + "/"
    files = {p[len(prefix) :]: b for p, b in entries.items() if p.startswith(prefix)}
    if code is None:
        return {rel: b for rel, b in files.items() if rel.endswith(".py")}
    out: dict[str, str] = {}
    for part in code:
        part = part.strip("/")
        if part in files:
            out[part] = files[part]
            continue
        under = {rel: b for rel, b in files.items() if rel.startswith(part + "/")}
        if not under:
            return None
        out.update({rel: b for rel, b in under.items() if rel.endswith(".py")})
    return out


class GitHistory:
    """Reads commits, trees and blobs of the repository at ``root`` with the ``git`` CLI."""

    def __init__(self, root: Path, package: str = PACKAGE) -> None:
        self.root = Path(root)
        self.package = package
        self._blobs: dict[str, bytes] = {}

    def _git(self, *args: str, stdin: bytes | None = None) -> bytes:
        proc = subprocess.run(
            ["git", "-C", str(self.root), *args], input=stdin, capture_output=True, check=False
        )
        if proc.returncode:
            err = proc.stderr.decode(errors="replace").strip()
            raise GitError(f"git {' '.join(args[:3])}: {err}")
        return proc.stdout

    def commits_touching(self, paths: list[str]) -> list[str]:
        """Commits (newest first) that changed any of ``paths`` (repository-relative)."""
        out = self._git("log", "--format=%H", "--", *paths).decode().split()
        return list(dict.fromkeys(out))

    def head(self) -> str:
        return self._git("rev-parse", "HEAD").decode().strip()

    def ancestors(self, commit: str, depth: int) -> list[str]:
        """``commit`` and its ancestors, at most ``depth`` commits (``git rev-list`` order)."""
        return self._git("rev-list", f"--max-count={depth}", commit).decode().split()

    def tree(self, commit: str) -> dict[str, str]:
        """Repository path -> blob of every regular file under the package at ``commit``."""
        raw = self._git("ls-tree", "-r", "-z", commit, "--", self.package)
        entries = {}
        for item in raw.split(b"\0"):
            if not item:
                continue
            info, name = item.split(b"\t", 1)
            mode, kind, blob = info.decode().split()
            if kind == "blob" and mode in ("100644", "100755"):
                entries[name.decode()] = blob
        return entries

    def blobs(self, ids: list[str]) -> dict[str, bytes]:
        """The contents of blobs (cached: commits share most of their files)."""
        missing = [b for b in dict.fromkeys(ids) if b not in self._blobs]
        if missing:
            raw = self._git("cat-file", "--batch", stdin="\n".join(missing).encode() + b"\n")
            pos = 0
            for blob in missing:
                end = raw.index(b"\n", pos)
                size = int(raw[pos:end].split()[2])
                self._blobs[blob] = raw[end + 1 : end + 1 + size]
                pos = end + 1 + size + 1
        return {b: self._blobs[b] for b in ids}

    def version(self, entries: dict[str, str]) -> str | None:
        """``__version__`` of the package in a tree listing (:data:`VERSION_FILES`)."""
        for name in VERSION_FILES:
            blob = entries.get(f"{self.package}/{name}")
            found = version_of(self.blobs([blob])[blob]) if blob else None
            if found is not None:
                return found
        return None

    def sources(
        self, commit: str, code: tuple[str, ...] | None
    ) -> tuple[dict[str, bytes], str] | None:
        """The sources :func:`~shaprl.repro.cache.library_fingerprint` hashes at ``commit``
        (package-relative path -> bytes) and the package version; ``None`` when a part of
        ``code`` or the version is missing there."""
        entries = self.tree(commit)
        chosen = select_sources(entries, code, self.package)
        version = self.version(entries)
        if chosen is None or version is None:
            return None
        data = self.blobs(list(chosen.values()))
        return {rel: data[blob] for rel, blob in chosen.items()}, version
