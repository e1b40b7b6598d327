"""Starting and stopping a real server process for the tests that need one."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(base: str, process: subprocess.Popen, log: Path, *, seconds: float = 30) -> None:
    """Return once ``GET /healthz`` answers 200; fail with the server's log if it exits or times out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the server did not come up:\n{log.read_text()}")
        time.sleep(0.2)


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, *, seconds: float = 20) -> int:
    """Ask the process to stop; kill it if it has not within ``seconds``. Returns its exit code."""
    process.send_signal(sig)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return -9
