"""Processes under test: start a server, read its CPU time and memory from /proc, stop it."""
from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


OPEN_FILES_WANTED = 65_536  # 20,000 connections on one server, plus its database, Redis and files


def raise_open_files_limit() -> int:
    """Thousands of sockets need thousands of descriptors; children inherit the limit. Root (CI,
    this machine) may raise the hard limit too: a hard limit of 20,000 left a server with 20,000
    connections open no descriptor for a request."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < OPEN_FILES_WANTED:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, OPEN_FILES_WANTED))
            hard = OPEN_FILES_WANTED
        except (ValueError, OSError):
            pass  # not allowed: the size the limit allows is what gets measured
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else 1_048_576
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces: split after its closing parenthesis.
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


class Server:
    """One server process started by the bench, its output kept in a log file."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], log_dir: Path,
                 health_path: str = "/healthz", cwd: str | None = None) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.health_url = f"http://127.0.0.1:{port}{health_path}"
        self.cwd = cwd
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> "Server":
        if port_in_use(self.port):
            raise RuntimeError(f"{self.name}: port {self.port} is taken; another server would answer for this one")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.cwd)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:
                    if response.status < 500:
                        return self
            except urllib.error.HTTPError as exc:
                if exc.code < 500:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer {self.health_url} within {timeout:.0f}s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return rss_bytes(self.pid)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def livecart_server(name: str, port: int, database_url: str, redis_url: str | None, log_dir: Path,
                    extra_env: dict[str, str] | None = None) -> Server:
    """`livecart serve`, wrapped by bench.served so the bench can count its SQL statements."""
    env = {"DATABASE_URL": database_url, "PORT": str(port), "HOST": "127.0.0.1", "REDIS_URL": redis_url or ""}
    env.update(extra_env or {})
    argv = [sys.executable, "-m", "bench.served", "--port", str(port)]
    return Server(name, argv, port, env, log_dir)
