"""Two "hosts" on one Linux machine: network namespaces joined by a veth pair, for MPI jobs over TCP.

::

    namespace cnnkit-PID-node1            namespace cnnkit-PID-node2
      ckn0 10.77.0.1/24  <---- veth ---->   ckn0 10.77.0.2/24
      host name node1 (own UTS)             host name node2
      /etc/hosts: node1, node2 (and node3 = 10.77.0.3, an address nobody answers)

The addresses exist only inside the two namespaces (no route anywhere else). MPICH's hydra starts its
proxies the way it would over ssh, through ``-launcher ssh -launcher-exec LAUNCHER``, where LAUNCHER is a
small script standing in for ssh: ``LAUNCHER [-x] HOST COMMAND...`` runs COMMAND in HOST's namespace under
HOST's name. mpiexec itself runs "on node1" through the same script. Every byte between the hosts crosses
the veth pair as TCP: UCX (MPICH's network layer) is held to its TCP transport on ckn0 -- without that it
would find the other "host"'s shared memory, as the namespaces share one kernel -- and hydra's control
connections use ckn0's address (``-iface ckn0``).

Needs root (to make namespaces), iproute2 (``ip``) and util-linux (``unshare``); :func:`why_not` says what
is missing, for a skip. :meth:`TwoHosts.down` removes everything, and :func:`remove_stale` removes what an
earlier test session killed mid-test left behind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from mpi_helpers import MPIEXEC, environment

PREFIX = "cnnkit-"
INTERFACE = "ckn0"
SUBNET = "10.77.0"
HOSTS = {"node1": f"{SUBNET}.1", "node2": f"{SUBNET}.2"}
NOBODY = {"node3": f"{SUBNET}.3"}  # resolves, but no machine answers there: an unreachable host
ENV = {"UCX_TLS": "tcp", "UCX_NET_DEVICES": INTERFACE}  # ranks on different hosts talk TCP over the veth

LAUNCHER = r"""#!/bin/sh
# ssh stand-in for hydra (mpiexec -launcher ssh -launcher-exec THIS): "THIS [-x] HOST COMMAND..." runs
# COMMAND on HOST, that is: in HOST's network namespace, under HOST's name, parsed by a shell as ssh does.
# A host it cannot reach fails after a second, as ssh does after its lookup or connect: failing at once
# raced hydra, which then sometimes tore the job down before it had forwarded the message.
while [ "${1#-}" != "$1" ]; do shift; done
host=$1
shift
case $host in
%(hosts)s
  %(nobody)s)
    echo "ssh: connect to host $host port 22: No route to host" >&2; sleep 1; exit 255;;
  *)
    echo "ssh: Could not resolve hostname $host: Name or service not known" >&2; sleep 1; exit 255;;
esac
exec ip netns exec "$namespace" unshare --uts sh -c 'hostname "$0" && exec sh -c "$1"' "$host" "$*"
"""


def why_not() -> str | None:
    """Why two hosts cannot be made here, or None when they can."""
    if sys.platform != "linux":
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "making network namespaces needs root (CI runs as root)"
    missing = [tool for tool in ("ip", "unshare", "hostname") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (apt-get install iproute2 util-linux hostname)"
    if MPIEXEC is None:
        return "no mpiexec (pip install mpich)"
    probe = f"{PREFIX}probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    if made.returncode != 0:
        return f"cannot make a network namespace here: {made.stderr.strip()}"
    return None


class TwoHosts:
    """node1 and node2, up from construction until :meth:`down`; ``directory`` holds the launcher."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.namespaces = {host: f"{PREFIX}{os.getpid()}-{host}" for host in HOSTS}
        self.launcher = self.directory / "ssh-to-namespace"
        try:
            self._up()
        except BaseException:
            self.down()
            raise

    def _up(self):
        for namespace in self.namespaces.values():
            _ip("netns", "add", namespace)
            etc = Path("/etc/netns") / namespace  # `ip netns exec` mounts these files over /etc
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text("127.0.0.1 localhost\n" + "".join(
                f"{address} {name}\n" for name, address in {**HOSTS, **NOBODY}.items()))
        first, second = self.namespaces.values()
        _ip("link", "add", INTERFACE, "netns", first, "type", "veth", "peer", "name", INTERFACE,
            "netns", second)
        for host, namespace in self.namespaces.items():
            _ip("-n", namespace, "addr", "add", f"{HOSTS[host]}/24", "dev", INTERFACE)
            _ip("-n", namespace, "link", "set", "lo", "up")
        self.link("up")
        cases = "\n".join(f"  {host}|{HOSTS[host]}) namespace={namespace};;"
                          for host, namespace in self.namespaces.items())
        nobody = "|".join(f"{name}|{address}" for name, address in NOBODY.items())
        self.launcher.write_text(LAUNCHER % {"hosts": cases, "nobody": nobody})
        self.launcher.chmod(0o755)

    def link(self, state: str, host: str = "node2", wait: bool = True):
        """Set ``host``'s end of the veth pair "up" or "down" (down: the hosts cannot reach each other)."""
        if state == "up":
            for namespace in self.namespaces.values():
                _ip("-n", namespace, "link", "set", INTERFACE, "up")
            if wait:  # UCX refuses an interface whose carrier the kernel has not yet reported
                self._wait_until_running()
        else:
            _ip("-n", self.namespaces[host], "link", "set", INTERFACE, state)

    def _wait_until_running(self, seconds: float = 10.0):
        deadline = time.monotonic() + seconds
        while True:
            states = [json.loads(_ip("-j", "-n", namespace, "link", "show", INTERFACE))[0]["operstate"]
                      for namespace in self.namespaces.values()]
            if all(state == "UP" for state in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the veth pair is not running after {seconds:g} s: {states}")
            time.sleep(0.05)

    def hostfile(self, text: str = "node1:2\nnode2:2\n", name: str = "hostfile") -> Path:
        path = self.directory / name
        path.write_text(text)
        return path

    def mpiexec(self, hostfile: Path, *args) -> list[str]:
        """The command line that runs ``mpiexec -f hostfile ARGS`` on node1 (ARGS: ``-n 4 cnnkit ...``)."""
        line = [MPIEXEC, "-f", str(hostfile), "-launcher", "ssh", "-launcher-exec", str(self.launcher),
                "-iface", INTERFACE, *map(str, args)]
        return self.on("node1", line)

    def on(self, host: str, command: list[str]) -> list[str]:
        """``command`` run on ``host`` (through the launcher, as ``ssh host command``)."""
        return [str(self.launcher), host, shlex.join(command)]

    def pids(self, host: str) -> list[int]:
        """The processes running on ``host`` (in its namespace)."""
        out = subprocess.run(["ip", "netns", "pids", self.namespaces[host]], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def rank_process(self, host: str, rank: int) -> int | None:
        """The pid of the process that trains as ``rank`` on ``host`` (the supervised child), or None."""
        for pid in self.pids(host):
            try:
                environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"PMI_RANK={rank}".encode() in environment and any(
                    item.startswith(b"CNNKIT_RANK_SUPERVISOR=") for item in environment):
                return pid
        return None

    def proxy_process(self, host: str) -> int | None:
        """The pid of hydra's proxy on ``host`` (which forwards its ranks' output to mpiexec), or None."""
        for pid in self.pids(host):
            try:
                program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if Path(program.decode()).name == "hydra_pmi_proxy":
                return pid
        return None

    def received(self, host: str) -> int:
        """Bytes ``host``'s end of the veth pair has received so far."""
        link = json.loads(_ip("-j", "-s", "-n", self.namespaces[host], "link", "show", INTERFACE))[0]
        return int(link["stats64"]["rx"]["bytes"])

    def kill_all(self):
        """SIGKILL every process still running on either host."""
        for namespace in self.namespaces.values():
            _kill_in(namespace)

    def down(self):
        """Kill what still runs in the namespaces and remove them, the veth pair and the /etc/netns files."""
        for namespace in self.namespaces.values():
            _remove(namespace)


def run(command: list[str], *, env: dict | None = None, timeout: float = 120.0):
    """Run ``command`` (environment: the checkout's cnnkit, UCX on TCP over ckn0, ``env``) in its own process
    group; on timeout kill the whole group and raise ``subprocess.TimeoutExpired``."""
    proc = start(command, env=env)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc)
        raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def start(command: list[str], *, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=environment(**{**ENV, **(env or {})}), start_new_session=True)


def stop(proc: subprocess.Popen):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


@contextmanager
def paused(pid: int):
    """``pid`` stopped (SIGSTOP) inside the block and running again after it, whatever the block raised:
    a process the machine's load keeps off the CPU for a while, on demand."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass


def remove_stale():
    """Remove namespaces of earlier test sessions whose process is gone (a session killed mid-test)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for namespace in re.findall(rf"^({re.escape(PREFIX)}(\d+)-\w+)", listed, flags=re.MULTILINE):
        name, pid = namespace
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _remove(name)


def _remove(namespace: str):
    _kill_in(namespace)
    subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)  # takes the veth end along
    shutil.rmtree(Path("/etc/netns") / namespace, ignore_errors=True)


def _kill_in(namespace: str):
    out = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True, text=True)
    for pid in out.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
