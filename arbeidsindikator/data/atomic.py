"""Atomic outputs: a file or a directory appears whole or not at all.

Everything is written next to its final place under a hidden temporary name and renamed at
the end, so an interrupted command never leaves a half-written result and never destroys
the previous one before the new one is complete."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path


def write_text(path: Path | str, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


@contextmanager
def directory(out: Path | str):
    """Yield an empty temporary directory beside `out`; on success it replaces `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


WORK_PREFIX = "arbeidsindikator-work-"
STALE_WITHOUT_OWNER = 600  # seconds: a working directory without an owner note this old is abandoned


def _process_start(pid: int) -> str | None:
    """The start time of a process (clock ticks since boot), to tell a live owner from a new
    process that got the same pid; None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
            return "alive"  # no /proc (not Linux): alive is all we can tell
        except ProcessLookupError:
            return None
        except PermissionError:
            return "alive"


def _owner_alive(note: Path) -> bool:
    try:
        pid, start = note.read_text().split()
    except (OSError, ValueError):
        return False
    now = _process_start(int(pid))
    return now is not None and (now == start or now == "alive")


def clean_stale_workdirs(parent: Path | None = None, prefix: str = WORK_PREFIX) -> list[Path]:
    """Remove working directories left by runs that were killed (their owner process is gone)."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for d in parent.glob(f"{prefix}*"):
        if not d.is_dir():
            continue
        note = d / "owner"
        if note.exists():
            stale = not _owner_alive(note)
        else:
            try:
                stale = time.time() - d.stat().st_mtime > STALE_WITHOUT_OWNER
            except OSError:
                continue
        if stale:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    return removed


@contextmanager
def work_directory(prefix: str = WORK_PREFIX):
    """A temporary working directory that is removed however the run ends: on success, on an
    error, on Ctrl-C or SIGTERM (the CLI turns it into an exit), and, for a run killed outright,
    by the next run, which finds it by its dead owner."""
    clean_stale_workdirs(prefix=prefix)
    d = Path(tempfile.mkdtemp(prefix=prefix))
    pid = os.getpid()
    (d / "owner").write_text(f"{pid} {_process_start(pid) or 'alive'}")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
