"""Throwaway Redis deployments for the store tests: a server, a cluster, a Sentinel group.

Each runs from its own temporary directory on free loopback ports, saves nothing to disk, and
is killed when its context ends. Without redis-server the caller's test is skipped, or failed
when ``CI`` is set (CI installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

__all__ = ["cluster", "free_port", "ping", "sentinel_group", "server", "wait_until"]

# Seconds a deployment may take to come up before its test fails.
_START = 20.0


def free_port(offset: int | None = None) -> int:
    """A free loopback port; with ``offset``, one whose ``port + offset`` is free too (a
    cluster node listens on its port and on its bus port, 10000 above)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if offset is None:
            return port
        if port + offset < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + offset))
                except OSError:
                    continue
            return port


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def wait_until(ready: Callable[[], bool], what: str, timeout: float = _START) -> None:
    """Poll ``ready`` until it holds; fail the test naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f} s")
        time.sleep(0.02)


def binary(name: str = "redis-server") -> str:
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


@contextlib.contextmanager
def server(workdir: Path, *args: str, port: int | None = None) -> Iterator[int]:
    """A redis-server in ``workdir`` (made if missing) with ``args`` on the command line;
    its port. A replica's first sync starts at once, not after the default 5 s."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    if args[:1] == ("--sentinel",):  # redis-server reads a config file first, then options
        command = [binary(), *args[1:2], "--sentinel", *args[2:]]
    else:
        command = [binary(), "--save", "", "--appendonly", "no"]
        command += ["--repl-diskless-sync-delay", "0", *args]
    command += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    proc = subprocess.Popen(
        command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(
            lambda: ping(port) or proc.poll() is not None, "redis-server did not answer PING"
        )
        if proc.poll() is not None:
            pytest.fail(f"redis-server exited with code {proc.returncode}")
        yield port
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _command(port: int, *args: str) -> str:
    run = subprocess.run(
        [binary("redis-cli"), "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return run.stdout


@contextlib.contextmanager
def cluster(workdir: Path, masters: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``masters`` primaries (no replicas) whose slots are all served;
    the primaries' ports."""
    with contextlib.ExitStack() as stack:
        ports = [
            stack.enter_context(
                server(
                    workdir / f"node{i}",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                    port=free_port(offset=10000),
                )
            )
            for i in range(masters)
        ]
        _command(
            ports[0], "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-yes"
        )
        for port in ports:
            wait_until(
                lambda port=port: "cluster_state:ok" in _command(port, "cluster", "info"),
                f"the cluster node on {port} did not report cluster_state:ok",
            )
        yield ports


def _replica_ready(sentinel: int, service: str, replica: int) -> bool:
    with redis.Redis(port=sentinel) as client:
        return any(
            r["port"] == replica and r["flags"] == "slave" and r["master-link-status"] == "ok"
            for r in client.sentinel_slaves(service)
        )


@contextlib.contextmanager
def sentinel_group(workdir: Path, service: str = "budgets") -> Iterator[tuple[int, int, int]]:
    """A primary, its replica (in sync) and one Sentinel monitoring ``service`` that knows the
    replica: the ports of (primary, replica, sentinel).

    The Sentinel polls and publishes every 100 ms instead of every 10 s and 2 s
    (``SENTINEL DEBUG``, Redis 7), so a failover, and the reconfiguration of the old primary
    as a replica that follows it, take a second, not twenty.
    """
    with contextlib.ExitStack() as stack:
        primary = stack.enter_context(server(workdir / "primary"))
        replica = stack.enter_context(
            server(workdir / "replica", "--replicaof", "127.0.0.1", str(primary))
        )
        wait_until(
            lambda: "master_link_status:up" in _command(replica, "info", "replication"),
            "the replica did not sync",
        )
        config = workdir / "sentinel" / "sentinel.conf"
        config.parent.mkdir(parents=True)
        config.write_text(
            f"sentinel monitor {service} 127.0.0.1 {primary} 1\n"
            f"sentinel down-after-milliseconds {service} 1000\n"
            f"sentinel failover-timeout {service} 5000\n"
        )
        sentinel = stack.enter_context(server(config.parent, "--sentinel", str(config)))
        _command(sentinel, "sentinel", "debug", "info-period", "100", "publish-period", "100")
        # Listed at once, but a failover refuses the replica until the Sentinel's own link to
        # it is up and it reported its link to the primary (flags "slave", status "ok").
        wait_until(
            lambda: _replica_ready(sentinel, service, replica),
            "the Sentinel did not find the replica ready to promote",
        )
        yield primary, replica, sentinel
