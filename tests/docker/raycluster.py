"""A multi-node Ray cluster on this one machine: every node a `ray start --block` process of its own.

Nodes listen on 127.0.0.1 with ports of their own, keep their files under a private temp dir,
and share a fresh auth token, so another Ray instance on the machine (someone else's tests) is
neither joined nor disturbed. `stop()` ends exactly these processes (never `ray stop`, which
ends every Ray instance of the user). `kill_raylet()` is a node crash: SIGKILL to its raylet.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_range(n: int = 100) -> int:
    """Start of n consecutive ports free right now (a node's worker port range)."""
    for _ in range(200):
        base = free_port()
        if base + n >= 65535:
            continue
        try:
            for p in range(base, base + n, 7):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
    raise RuntimeError("no free range of ports for Ray workers")


@dataclass
class Node:
    name: str
    proc: subprocess.Popen
    node_manager_port: int
    log: Path
    crashed: bool = False                 # killed on purpose by kill_raylet


class LocalRayCluster:
    """Head + worker nodes on 127.0.0.1; `address` is what `--ray-address` takes."""

    def __init__(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="rn", dir="/tmp"))   # short: Ray's socket paths must fit 107 bytes
        self.port = free_port()
        self.nodes: list[Node] = []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        self.env.update(PATH=f"{BIN}{os.pathsep}{self.env.get('PATH', '')}", RAY_AUTH_MODE="token",
                        RAY_AUTH_TOKEN=secrets.token_hex(32), HF_HUB_OFFLINE="1", HARDSPOOF_NO_BAR="1",
                        OMP_NUM_THREADS="1")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_node(self, name: str, cpus: int, head: bool = False, resources: dict[str, float] | None = None,
                 object_store_bytes: int = 100_000_000) -> None:
        """Start a node (`ray start --block` in the background); `wait_nodes` tells when it has joined."""
        nm, workers = free_port(), _free_range()
        cmd = [str(BIN / "ray"), "start", "--block", "--node-ip-address=127.0.0.1", f"--num-cpus={cpus}",
               "--num-gpus=0", f"--object-store-memory={object_store_bytes}", "--disable-usage-stats",
               f"--node-manager-port={nm}", f"--object-manager-port={free_port()}",
               f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
               f"--metrics-export-port={free_port()}", f"--runtime-env-agent-port={free_port()}",
               f"--min-worker-port={workers}", f"--max-worker-port={workers + 99}", f"--temp-dir={self.tmp / name}"]
        if head:
            cmd += ["--head", f"--port={self.port}", "--include-dashboard=false",
                    f"--ray-client-server-port={free_port()}"]
        else:
            cmd += [f"--address={self.address}"]
        if resources:
            cmd += [f"--resources={json.dumps(resources)}"]
        log = self.tmp / f"{name}.log"
        with open(log, "w") as fh:
            proc = subprocess.Popen(cmd, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.nodes.append(Node(name, proc, nm, log))

    def active_node_ids(self) -> set[str]:
        """Ids of the nodes the GCS lists as active (empty while the head is not up)."""
        r = subprocess.run([str(BIN / "ray"), "status", f"--address={self.address}"], env=self.env,
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            return set()
        active = r.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0]
        return {w[len("node_"):] for line in active.splitlines() for w in line.split() if w.startswith("node_")}

    def node_id(self, name: str) -> str | None:
        """The Ray node id of node `name` (from its raylet's command line), None while it has no raylet."""
        argv = self._raylet(name)[1]
        return next((a.split("=", 1)[1] for a in argv if a.startswith("--node_id=")), None)

    def wait_nodes(self, *names: str, timeout_s: float = 90) -> bool:
        """True once the named nodes (the latest of each name) are active in the cluster; False when a
        node process that was not crashed on purpose exits, or time runs out."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if any(node.proc.poll() is not None and not node.crashed for node in self.nodes):
                return False
            ids = [self.node_id(n) for n in names]
            if all(ids) and set(ids) <= self.active_node_ids():
                return True
            time.sleep(1)
        return False

    def logs(self) -> str:
        return "\n".join(f"--- {n.name}\n{n.log.read_text(errors='replace')[-2000:]}" for n in self.nodes)

    def _raylet(self, name: str) -> tuple[int | None, list[str]]:
        """(pid, argv) of node `name`'s raylet, found by its node-manager port; (None, []) once it is gone."""
        node = next(n for n in reversed(self.nodes) if n.name == name)   # the latest of that name
        for pid, argv in _processes():
            if argv and argv[0].endswith("/raylet") and f"--node_manager_port={node.node_manager_port}" in argv:
                return pid, argv
        return None, []

    def kill_raylet(self, name: str) -> None:
        """A node crash: SIGKILL to the node's raylet (its workers and actors die with it)."""
        pid = self._raylet(name)[0]
        if pid is None:
            raise RuntimeError(f"node {name} has no raylet running")
        next(n for n in reversed(self.nodes) if n.name == name).crashed = True
        os.kill(pid, signal.SIGKILL)

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM every node (workers first, head last), SIGKILL what outlives grace_s, and any process
        whose command line names this cluster's temp dir; then delete the temp dir."""
        for node in reversed(self.nodes):
            if node.proc.poll() is None:
                os.killpg(node.proc.pid, signal.SIGTERM)
                try:
                    node.proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    os.killpg(node.proc.pid, signal.SIGKILL)
                    node.proc.wait()
        marker = str(self.tmp)
        for pid, argv in _processes():
            if any(marker in a for a in argv):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "LocalRayCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _processes():
    """(pid, argv) of the processes visible in /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        yield int(entry.name), [a.decode(errors="replace") for a in raw.split(b"\0") if a]
