"""A standalone Spark master and worker on 127.0.0.1 from the pip-installed pyspark (`make
cluster-up`): started on free ports, recorded in a folder, stopped with every process they started."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_DIR = Path(".cluster")
_STATE = "cluster.json"
# Never reach a proxy for the master's own web UI on loopback.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
T = TypeVar("T")


def spark_home() -> Path:
    """SPARK_HOME of the pip-installed pyspark (its bin/ has spark-class and spark-submit)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def spark_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for Spark's launch scripts: SPARK_HOME set, so they need no `python3`."""
    env = dict(os.environ if base is None else base)
    env.setdefault("SPARK_HOME", str(spark_home()))
    return env


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


@dataclass
class StandaloneCluster:
    """A running standalone master and worker; `stop()` ends them and everything they started."""

    workdir: Path
    master_url: str
    webui_url: str
    master_pid: int
    worker_pid: int
    # Start times (/proc clock ticks) of the daemons: a pid reused since is not ours.
    master_start: int = 0
    worker_start: int = 0
    # Popen handles when this process started the daemons, so they are reaped, not left zombies.
    _children: list[subprocess.Popen] = field(default_factory=list, repr=False, compare=False)

    def master_state(self) -> dict:
        """The master's JSON status (workers, applications)."""
        with _NO_PROXY.open(f"{self.webui_url}/json/", timeout=10) as response:
            return json.loads(response.read())

    def processes(self) -> list[int]:
        """Live processes of this cluster: the daemons, executors and their Python workers."""
        return sorted(pid for pid, _ in _cluster_processes(self._roots()))

    def stop(self, timeout: float = 60.0) -> None:
        """Terminate the daemons and their descendants and wait for them to exit (SIGKILL after
        `timeout` seconds). Safe to call twice."""
        procs = _cluster_processes(self._roots())
        if procs:
            log.info("stopping Spark standalone cluster %s", self.master_url)
        _signal_all(procs, signal.SIGTERM)
        if not self._wait_gone(procs, timeout):
            log.warning("cluster processes still alive after %.0f s: killing them", timeout)
            _signal_all(procs, signal.SIGKILL)
            if not self._wait_gone(procs, 30.0):
                raise RuntimeError(f"cluster processes did not exit: {sorted(p for p, _ in procs)}")
        for name in (_STATE, "master.pid", "worker.pid", "master_url"):
            (self.workdir / name).unlink(missing_ok=True)

    def __enter__(self) -> StandaloneCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _roots(self) -> list[int]:
        return [
            pid
            for pid, start in (
                (self.master_pid, self.master_start),
                (self.worker_pid, self.worker_start),
            )
            if _alive(pid, start)
        ]

    def _wait_gone(self, procs: set[tuple[int, int]], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            for child in self._children:
                child.poll()  # reap our own children
            if not any(_alive(pid, start) for pid, start in procs):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def save(self) -> None:
        """Record the cluster in its folder: `cluster.json`, pid files and `master_url`."""
        state = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        state["workdir"] = str(self.workdir)
        (self.workdir / _STATE).write_text(json.dumps(state, indent=2) + "\n")
        (self.workdir / "master.pid").write_text(f"{self.master_pid}\n")
        (self.workdir / "worker.pid").write_text(f"{self.worker_pid}\n")
        (self.workdir / "master_url").write_text(f"{self.master_url}\n")


def load_cluster(workdir: Path | str) -> StandaloneCluster | None:
    """The cluster recorded in `workdir`, or None if there is none."""
    state_file = Path(workdir) / _STATE
    if not state_file.is_file():
        return None
    state = json.loads(state_file.read_text())
    state["workdir"] = Path(state["workdir"])
    return StandaloneCluster(**state)


def start_standalone(
    workdir: Path | str,
    cores: int = 2,
    memory: str = "2g",
    timeout: float = 300.0,
    attempts: int = 3,
) -> StandaloneCluster:
    """Start a master and one worker on 127.0.0.1; return once the worker has registered.

    Logs go to `workdir/master.log` and `workdir/worker.log`, executors run under `workdir/work`.
    Ports are picked free at start; a daemon that loses a port race is started again on new ones.
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    env = spark_env()
    env["SPARK_LOCAL_IP"] = LOOPBACK  # RPC and web UIs bind to loopback only
    # One try per port (we retry on fresh ones), and no REST submission server.
    daemon_opts = "-Dspark.port.maxRetries=0 -Dspark.master.rest.enabled=false"
    for var in ("SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS"):
        env[var] = f"{env.get(var, '')} {daemon_opts}".strip()
    # The daemons only schedule: a light JIT and GC leave the cores to the executors.
    env.setdefault("SPARK_DAEMON_JAVA_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    launcher = _Launcher(workdir, env, time.monotonic() + timeout, attempts)
    try:
        master, webui_url, master_url = launcher.master()
        worker = launcher.worker(master, master_url, webui_url, cores, memory)
        cluster = StandaloneCluster(
            workdir,
            master_url,
            webui_url,
            master.pid,
            worker.pid,
            master_start=_start_time(master.pid),
            worker_start=_start_time(worker.pid),
            _children=[master, worker],
        )
        cluster.save()
    except BaseException:
        for proc in launcher.started:  # failed or interrupted: leave nothing running
            _terminate(proc)
        raise
    log.info("Spark standalone cluster up: %s (%d cores, %s)", master_url, cores, memory)
    return cluster


@dataclass
class _Launcher:
    """Starts the daemons through spark-class, on fresh ports until one comes up."""

    workdir: Path
    env: dict[str, str]
    deadline: float
    attempts: int
    started: list[subprocess.Popen] = field(default_factory=list)

    def master(self) -> tuple[subprocess.Popen, str, str]:
        """The master process, its web UI URL and its URL, once it is ALIVE."""
        for attempt in range(self.attempts):
            port, webui = free_port(), free_port()
            master = self._spawn(
                ["org.apache.spark.deploy.master.Master", "--host", LOOPBACK, "--port", str(port)]
                + ["--webui-port", str(webui)],
                "master.log",
            )
            webui_url = f"http://{LOOPBACK}:{webui}"
            status = _wait_for(master, lambda url=webui_url: _elected(url), self.deadline)
            if status is not None:
                return master, webui_url, status["url"]
            _terminate(master)
            if time.monotonic() > self.deadline:
                break
            log.warning("Spark master did not start on port %d (attempt %d)", port, attempt + 1)
        raise RuntimeError(f"Spark master did not start:\n{_tail(self.workdir / 'master.log')}")

    def worker(
        self, master: subprocess.Popen, master_url: str, webui_url: str, cores: int, memory: str
    ) -> subprocess.Popen:
        """The worker process, once the master lists it ALIVE."""
        for attempt in range(self.attempts):
            port, webui = free_port(), free_port()
            worker = self._spawn(
                ["org.apache.spark.deploy.worker.Worker", master_url, "--host", LOOPBACK]
                + ["--port", str(port), "--webui-port", str(webui), "--cores", str(cores)]
                + ["--memory", memory, "--work-dir", str(self.workdir / "work")],
                "worker.log",
            )

            def registered(port: int = port) -> bool:
                workers = (_master_status(webui_url) or {}).get("workers", [])
                return any(w.get("port") == port and w.get("state") == "ALIVE" for w in workers)

            if _wait_for(worker, registered, self.deadline, also=master):
                return worker
            _terminate(worker)
            if master.poll() is not None or time.monotonic() > self.deadline:
                break
            log.warning("Spark worker did not start on port %d (attempt %d)", port, attempt + 1)
        raise RuntimeError(
            f"Spark worker did not register with {master_url}:\n"
            + _tail(self.workdir / "worker.log")
        )

    def _spawn(self, args: list[str], log_name: str) -> subprocess.Popen:
        cmd = [str(Path(self.env["SPARK_HOME"]) / "bin" / "spark-class"), *args]
        log.debug("starting %s", " ".join(cmd))
        with open(self.workdir / log_name, "ab") as out:
            # Own session and process group: signals for the daemons never reach their starter.
            proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(proc)
        return proc


def _wait_for(
    proc: subprocess.Popen,
    check: Callable[[], T],
    deadline: float,
    also: subprocess.Popen | None = None,
) -> T | None:
    """Poll `check()` until it returns something truthy; None if `proc` (or `also`) exits first
    or the deadline passes."""
    while time.monotonic() < deadline:
        if proc.poll() is not None or (also is not None and also.poll() is not None):
            return None
        result = check()
        if result:
            return result
        time.sleep(0.5)
    return None


def _elected(webui_url: str) -> dict | None:
    """The master's status once it is ALIVE (elected leader), else None."""
    status = _master_status(webui_url)
    return status if status and status.get("status") == "ALIVE" else None


def _master_status(webui_url: str) -> dict | None:
    try:
        with _NO_PROXY.open(f"{webui_url}/json/", timeout=5) as response:
            return json.loads(response.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None


def _terminate(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {path})"


# --- processes, by id ------------------------------------------------------------------------
# A process is (pid, start time): the start time tells a live daemon from a reused pid.


def _stat(pid: int) -> tuple[str, int, int, int] | None:
    """(state, ppid, pgid, start time) of a process from /proc, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[2]), int(fields[19])


def _start_time(pid: int) -> int:
    stat = _stat(pid)
    return stat[3] if stat else 0


def _alive(pid: int, start: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z" and stat[3] == start


def _cluster_processes(roots: Sequence[int]) -> set[tuple[int, int]]:
    """The root daemons, their process groups and all their descendants, alive now.

    Executors share the worker's process group; PySpark's Python daemon makes its own, so
    descendants are followed through parent ids too.
    """
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    members = {pid for pid in roots if pid in table}
    members |= {pid for pid, st in table.items() if st[2] in members}
    grew = True
    while grew:
        children = {pid for pid, st in table.items() if st[1] in members} - members
        grew = bool(children)
        members |= children
    return {(pid, table[pid][3]) for pid in members if table[pid][0] != "Z"}


def _signal_all(procs: set[tuple[int, int]], sig: int) -> None:
    for pid, start in procs:
        if _alive(pid, start):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
