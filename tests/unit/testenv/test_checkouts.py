"""Each checkout has its own environment: the state pointer is keyed by the checkout's path, and
`hack/testenv down --force` finds only the processes marked with that checkout's state dir."""
from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoglm_testenv import config, procs


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUTOGLM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_two_checkouts_have_two_pointers(cache: Path, tmp_path: Path) -> None:
    one, two = config.state_pointer(tmp_path / "a" / "repo"), config.state_pointer(tmp_path / "b" / "repo")
    assert one != two
    assert one.parent.parent == two.parent.parent == cache / "checkouts"
    assert one.parent.name.startswith("repo-") and two.parent.name.startswith("repo-"), "named for humans too"


def test_one_checkout_has_one_pointer_however_it_is_named(cache: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "link").symlink_to(repo)
    same = {config.state_pointer(repo), config.state_pointer(tmp_path / "x" / ".." / "repo"),
            config.state_pointer(tmp_path / "link")}
    assert len(same) == 1


def test_the_default_is_this_checkout(cache: Path) -> None:
    assert config.state_pointer() == config.state_pointer(config.REPO_DIR)
    assert config.checkout_state_dir() == config.state_pointer().parent


@pytest.fixture
def sleeper() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A process marked as owned by a made-up checkout, and that owner."""
    owner = f"/nowhere/{uuid.uuid4().hex}"
    proc = subprocess.Popen(["sleep", "60"], env={**os.environ, config.OWNER_VARIABLE: owner})
    yield proc, owner
    proc.kill()
    proc.wait()


def test_processes_are_found_by_their_exact_owner(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, owner = sleeper
    assert procs.owned_by(owner) == [proc.pid]
    assert procs.owned_by(owner[:-1]) == [], "a prefix of another checkout's state dir is another checkout"


def test_stop_owned_by_stops_only_that_owner(sleeper: tuple[subprocess.Popen[bytes], str]) -> None:
    proc, owner = sleeper
    other = subprocess.Popen(["sleep", "60"], env={**os.environ, config.OWNER_VARIABLE: owner + "-other"})
    try:
        assert procs.stop_owned_by(owner) == [proc.pid]
        assert proc.wait(timeout=5) != 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
