"""The output lock alone: held by one run, refused to others with the holder, taken over once it is gone."""

import errno
import fcntl
import json
import os
import socket
import subprocess
import sys

import pytest

from fasttag.errors import UsageError
from fasttag.write import OutputLock, check_unlocked, lock_path


def test_lock_is_exclusive_names_its_holder_and_is_removed_on_release(tmp_path):
    out = str(tmp_path / "o.jsonl")
    lock = OutputLock.acquire(out)
    assert json.loads(lock_path(out).read_text()) == {"host": socket.gethostname(), "pid": os.getpid()}
    for attempt in (OutputLock.acquire, check_unlocked):
        with pytest.raises(UsageError, match=f"being written by another fasttag run \\(pid {os.getpid()} on "):
            attempt(out)
    lock.release()
    assert not lock_path(out).exists()
    check_unlocked(out)
    OutputLock.acquire(out).release()


def test_a_stale_lock_file_is_taken_over(tmp_path):
    out = str(tmp_path / "o.jsonl")
    lock_path(out).write_text(json.dumps({"host": socket.gethostname(), "pid": gone_pid()}))
    check_unlocked(out)
    lock = OutputLock.acquire(out)
    assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    lock.release()


def test_without_flock_the_pid_decides(tmp_path, monkeypatch):
    def no_flock(fd, mode):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    out = str(tmp_path / "o.jsonl")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for holder, refused in [({"host": socket.gethostname(), "pid": live.pid}, True),
                                ({"host": "another-host", "pid": 1}, True),  # cannot be checked from here
                                ({"host": socket.gethostname(), "pid": gone_pid()}, False)]:
            lock_path(out).write_text(json.dumps(holder))
            if refused:
                with pytest.raises(UsageError, match=f"pid {holder['pid']} on {holder['host']}"):
                    OutputLock.acquire(out)
            else:
                OutputLock.acquire(out).release()
                assert not lock_path(out).exists()
    finally:
        live.kill()
        live.wait()


def gone_pid():
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
