"""A small parent process for each MPI rank, so that a rank killed by a signal is reported by rank and host.

mpiexec (hydra) reports a process killed with SIGKILL by its process id and host only ("PID 4711 RUNNING
AT node2, EXIT CODE: 9"), and the killed process can say nothing. ``cnnkit train --distributed`` therefore
runs each rank's training in a child of a small supervisor (the model of torchrun's per-node agent). The
supervisor waits; when the training process dies of a signal it prints::

    cnnkit train: rank 3 of 4 on node2 (pid 4711) ended by signal 9 (SIGKILL); mpiexec stops the job.

and ends by the same signal, on which mpiexec stops every other rank. Signals sent to the
supervisor (mpiexec's SIGTERM, Ctrl-C) are passed on to the training process, and if the supervisor itself
is killed, the kernel kills the training process too (Linux's PR_SET_PDEATHSIG).

A last line before the job is stopped must reach the terminal: :func:`wait_until_read` waits until the
launcher has read it (see there why that is needed).
"""

from __future__ import annotations

import array
import os
import signal
import socket
import stat
import subprocess
import sys
import time

MARK = "CNNKIT_RANK_SUPERVISOR"  # set in the training process's environment: the supervisor's pid
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)

# The rank, the number of ranks and the host, as each launcher tells them to the processes it starts:
# MPICH's hydra (PMI_HOSTNAME is the host's name in the hostfile), Open MPI, PMIx and Slurm's srun.
_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")
_HOST = ("PMI_HOSTNAME", "SLURMD_NODENAME")


OUTPUT_GRACE = 5.0  # seconds a last message may wait for the launcher to read it


def wait_until_read(seconds: float = OUTPUT_GRACE, fds: tuple[int, ...] = (1, 2)) -> bool:
    """Flush Python's stdout and stderr, then wait until the launcher has read them (at most ``seconds``).

    Under mpiexec (MPICH's hydra) a rank's stdout and stderr are pipes to hydra's proxy on its host, which
    reads them and forwards each piece to mpiexec as it reads it. On MPI_Abort, mpiexec exits as soon as
    the abort reaches it and forwards nothing more. The abort travels the same way (rank -> proxy ->
    mpiexec), so output the proxy read before it takes the abort is printed, and output still in the pipe
    is lost: a proxy kept off the CPU by a loaded machine finds the rank's last line and its abort both
    waiting, and may take the abort first (in CI, after a network link went down, 2 runs in 4 printed
    nothing at all). Called between the last line and MPI_Abort, this makes the line arrive first.

    Returns True when everything written was read (or a descriptor is no pipe or socket, where nothing
    can be known), False when ``seconds`` passed first.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced: nothing of ours to wait for
            pass
    deadline = time.monotonic() + seconds
    while any(_unread(fd) for fd in fds):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _unread(fd: int) -> int:
    """Bytes written to ``fd`` that its reader has not read yet: a pipe's contents (FIONREAD); for a socket
    what the peer has not taken (SIOCOUTQ, Linux); 0 for anything else (a terminal, a file)."""
    try:
        import fcntl
        import termios

        mode = os.fstat(fd).st_mode
    except (ImportError, OSError):  # not Unix, or a closed descriptor
        return 0
    request = termios.FIONREAD if stat.S_ISFIFO(mode) else (
        getattr(termios, "TIOCOUTQ", None) if stat.S_ISSOCK(mode) else None)  # SIOCOUTQ == TIOCOUTQ
    if request is None:
        return 0
    count = array.array("i", [0])
    try:
        fcntl.ioctl(fd, request, count, True)
    except OSError:
        return 0
    return count[0]


def launcher_rank() -> tuple[int, int | None, str] | None:
    """(rank, number of ranks or None, host) from the MPI launcher's environment; None outside a launcher."""
    rank = _first(_RANK)
    if rank is None:
        return None
    size = _first(_SIZE)
    return int(rank), None if size is None else int(size), _first(_HOST) or socket.gethostname()


def describe_rank() -> str:
    """``rank 3 of 4 on node2``, from the launcher's environment (``this process on HOST`` outside one)."""
    found = launcher_rank()
    if found is None:
        return f"pid {os.getpid()} on {socket.gethostname()}"
    rank, size, host = found
    return f"rank {rank}{'' if size is None else f' of {size}'} on {host}"


def supervise(command: list[str] | None = None, *, name: str = "cnnkit train"):
    """Run this program again as a supervised child and exit with its status; return at once in the child.

    Call it first thing in a program started by mpiexec (or srun), before MPI is initialized: the child
    inherits the launcher's environment and file descriptors and becomes the MPI rank. Outside an MPI
    launcher this returns at once and nothing else happens.

    Args:
        command: the child's command line (default: this interpreter with this process's own arguments).
        name: how the program calls itself in the message.
    """
    if os.environ.get(MARK):
        _die_with_parent(int(os.environ[MARK]))
        return
    found = launcher_rank()
    if found is None:
        return
    command = command or [sys.executable, *sys.orig_argv[1:]]
    child = subprocess.Popen(command, env={**os.environ, MARK: str(os.getpid())}, close_fds=False)
    forwarded: set[int] = set()

    def forward(signum, frame):
        forwarded.add(signum)
        child.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    code = child.wait()
    if code < 0 and -code not in forwarded:
        print(f"{name}: {describe_rank()} (pid {child.pid}) ended by signal {-code} "
              f"({signal.Signals(-code).name}); mpiexec stops the job.", file=sys.stderr, flush=True)
    wait_until_read()  # before this process's end makes hydra stop the job
    if code < 0:  # end the same way, so that mpiexec sees a rank killed by a signal (and stops the job)
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # (Python ignores SIGPIPE, for one)
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(128 - code if code < 0 else code)  # no interpreter teardown: the child did the work


def _die_with_parent(parent: int):
    """Ask the kernel to kill this process when its supervisor dies (Linux); leave if it already has."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the launcher's own cleanup has to do
        pass
    if os.getppid() != parent:  # the supervisor died before prctl took effect
        os._exit(1)


def _first(names) -> str | None:
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None
