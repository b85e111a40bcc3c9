"""``make run`` (``python -m app.dev.devserver``) as a terminal runs it: real processes, real signals, real ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.dev.devserver import port_is_free
from tests.app.faults import ROOT, wait_until
from tests.helpers import free_port


def group_members(pgids: set[int]) -> list[int]:
    """Pids of live (not zombie) processes in any of ``pgids``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgid = fields[0], int(fields[2])
        if pgid in pgids and state != "Z":
            found.append(int(entry.name))
    return found


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


class Launcher:
    """``python -m app.dev.devserver`` in a session of its own, as a terminal's foreground job."""

    def __init__(self, var_dir: Path, port: int) -> None:
        env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "HOSO_VAR_DIR": str(var_dir),
               "HOSO_BIND": f"127.0.0.1:{port}", "HOSO_ARGON2_MEMORY_KIB": "8192", "HOSO_ARGON2_TIME_COST": "1",
               "HOSO_LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen([sys.executable, "-m", "app.dev.devserver"], cwd=ROOT, env=env,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=lambda s=stream, out=lines: out.extend(iter(s.readline, "")), daemon=True).start()

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)

    def wait_for_banner(self, timeout: float = 90) -> None:
        assert wait_until(lambda: "HoSo is running" in "".join(self.stdout) or self.process.poll() is not None,
                          timeout, 0.1), self.output()
        assert self.process.poll() is None, self.output()

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the terminal's foreground process group (the launcher's)."""
        os.killpg(self.process.pid, signal.SIGINT)

    def kill(self) -> None:
        """Clean up after a failed test: the launcher and every group it started."""
        groups = descendants_groups(self) if self.process.poll() is None else set()
        for pgid in {self.process.pid, *groups}:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()


def descendants_groups(launcher: Launcher) -> set[int]:
    """Process groups of the launcher's children (each child leads its own)."""
    return {os.getpgid(pid) for pid in children_of(launcher.process.pid)}


@pytest.mark.slow
def test_ctrl_c_twenty_times_leaves_no_process_and_frees_the_port(tmp_path):
    port = free_port()
    started = time.monotonic()
    took = []
    for attempt in range(20):
        launcher = Launcher(tmp_path / "var", port)
        try:
            launcher.wait_for_banner()
            took.append(round(time.monotonic() - started))
            groups = descendants_groups(launcher)
            assert len(groups) == 3 and launcher.process.pid not in groups  # database, API, worker
            launcher.interrupt()
            assert launcher.process.wait(timeout=60) == 0, launcher.output()
            assert group_members(groups) == [], (attempt, launcher.output())
            assert port_is_free("127.0.0.1", port), attempt
        finally:
            launcher.kill()
    print(f"\nbanner at (s since start): {took}; all 20 runs: {time.monotonic() - started:.0f} s")
    assert time.monotonic() - started < 240  # about 8 s a cycle here; a hang fails sooner, by its own timeouts


@pytest.mark.slow
def test_a_crashed_worker_is_restarted_and_the_api_keeps_serving(tmp_path):
    launcher = Launcher(tmp_path / "var", free_port())
    try:
        launcher.wait_for_banner()
        workers = [pid for pid in children_of(launcher.process.pid)
                   if "notifications" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(workers) == 1
        os.killpg(workers[0], signal.SIGKILL)
        assert wait_until(lambda: "notification worker restarted" in "".join(launcher.stderr), 30), launcher.output()
        assert "exited with status -9" in "".join(launcher.stderr)
        again = [pid for pid in children_of(launcher.process.pid)
                 if "notifications" in Path(f"/proc/{pid}/cmdline").read_text()]
        assert len(again) == 1 and again != workers
        assert launcher.process.poll() is None
        groups = descendants_groups(launcher)
        launcher.interrupt()
        assert launcher.process.wait(timeout=60) == 0
        assert group_members(groups) == []
    finally:
        launcher.kill()


def test_a_taken_port_is_named_with_the_way_out(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        launcher = Launcher(tmp_path / "var", port)
        try:
            assert launcher.process.wait(timeout=60) == 2
            wait_until(lambda: launcher.stderr, 5)
            message = "".join(launcher.stderr)
            assert f"port {port} on 127.0.0.1 is taken" in message
            assert f"HOSO_BIND=127.0.0.1:{port + 1} make run" in message
            assert "HoSo is running" not in "".join(launcher.stdout)
            assert not (tmp_path / "var" / "db").exists()  # nothing was started
        finally:
            launcher.kill()


LEADER = """
import signal, subprocess, sys, time
# a worker of our own that ignores SIGTERM, in our process group (what an orphaned gunicorn worker did)
stubborn = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(flush=True); time.sleep(600)"],
    stdout=subprocess.PIPE)
stubborn.stdout.readline()
def stop(*_):
    with open(sys.argv[1], "a") as log:
        log.write(sys.argv[2] + " " + str(time.monotonic()) + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
print(stubborn.pid, flush=True)
time.sleep(600)
"""


def test_stop_goes_api_worker_database_and_leaves_no_stubborn_grandchild(tmp_path):
    from app.dev.devserver import Child, DevSystem

    log = tmp_path / "stopped.log"
    system = DevSystem(dict(os.environ))
    grandchildren = []
    for name, rank in (("database", 2), ("api", 0), ("worker", 1)):
        child = Child(name, [sys.executable, "-c", LEADER, str(log), name], stop_timeout=5, restart=False,
                      stop_rank=rank, popen_options={"stdout": subprocess.PIPE})
        process = system.start(child)
        grandchildren.append(int(process.stdout.readline()))
    groups = {os.getpgid(child.process.pid) for child in system.children}
    assert os.getpgid(os.getpid()) not in groups and len(groups) == 3
    system.stop()
    for child in system.children:
        child.process.stdout.close()
    order = [line.split()[0] for line in log.read_text().splitlines()]
    assert order == ["api", "worker", "database"]
    assert wait_until(lambda: group_members(groups) == [], 5), grandchildren
