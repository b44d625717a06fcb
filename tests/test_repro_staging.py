"""A notebook's staging directory survives another process removing the empty ``.staging``."""

from __future__ import annotations

from pathlib import Path

from shaprl.repro import paths


def test_staging_dir_retries_when_its_parent_vanishes(tmp_path, monkeypatch):
    real_mkdir = Path.mkdir
    calls = []

    def flaky_mkdir(self, *args, **kwargs):
        calls.append(self)
        if len(calls) == 1:  # another worker removed the empty .staging under us
            raise FileNotFoundError(self)
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", flaky_mkdir)
    path = paths.staging_dir(tmp_path, "26_demo")
    assert path.is_dir() and path.parent.name == paths.STAGING and len(calls) >= 2
