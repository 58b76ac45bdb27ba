"""Where `tessera serve` puts its workers' memory-mapped metrics files: on a tmpfs when there is one
(a write into a page that disk writeback has just cleaned can wait on the journal), one folder per
state directory, or where [serving] metrics_dir says."""
from __future__ import annotations

from pathlib import Path

import pytest

from serving import server
from tessera.config import Settings


def settings_at(tmp_path: Path, name: str, **serving: object) -> Settings:
    return Settings(paths={"state_dir": tmp_path / name}, serving=serving)  # type: ignore[arg-type]


def test_the_configured_folder_wins(tmp_path: Path) -> None:
    assert server.metrics_base(settings_at(tmp_path, "a", metrics_dir=tmp_path / "m")) == tmp_path / "m"


def test_a_tmpfs_folder_of_each_state_directory_its_own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_on_tmpfs", lambda path: path == Path("/dev/shm"))
    monkeypatch.setattr(server.os, "access", lambda path, mode: True)
    a, b = server.metrics_base(settings_at(tmp_path, "a")), server.metrics_base(settings_at(tmp_path, "b"))
    assert a.parent == b.parent == Path("/dev/shm")
    assert a != b
    assert a == server.metrics_base(settings_at(tmp_path, "a")), "the same state directory, the same folder"


def test_without_a_tmpfs_the_state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server, "_on_tmpfs", lambda path: False)
    assert server.metrics_base(settings_at(tmp_path, "a")) == tmp_path / "a" / "serving"


def test_tmpfs_is_read_from_the_mount_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "mounts"
    table.write_text("/dev/vda / ext4 rw 0 0\ntmpfs /dev/shm tmpfs rw,nosuid 0 0\n")
    real_path = server.Path
    monkeypatch.setattr(server, "Path", lambda p: table if p == "/proc/mounts" else real_path(p))
    assert server._on_tmpfs(Path("/dev/shm"))
    assert not server._on_tmpfs(Path("/"))
    assert not server._on_tmpfs(Path("/dev"))
