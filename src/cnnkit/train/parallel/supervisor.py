"""A small parent process for each MPI rank, so that a rank killed by a signal is reported by rank and host.

mpiexec (hydra) reports a process killed with SIGKILL by its process id and host only ("PID 4711 RUNNING
AT node2, EXIT CODE: 9"), and the killed process can say nothing. ``cnnkit train --distributed`` therefore
runs each rank's training in a child of a small supervisor (the model of torchrun's per-node agent). The
supervisor waits; when the training process dies of a signal it prints::

    cnnkit train: rank 3 of 4 on node2 (pid 4711) ended by signal 9 (SIGKILL); mpiexec stops the job.

and ends by the same signal, on which mpiexec stops every other rank. Signals sent to the
supervisor (mpiexec's SIGTERM, Ctrl-C) are passed on to the training process, and if the supervisor itself
is killed, the kernel kills the training process too (Linux's PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

MARK = "CNNKIT_RANK_SUPERVISOR"  # set in the training process's environment: the supervisor's pid
FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)

# The rank, the number of ranks and the host, as each launcher tells them to the processes it starts:
# MPICH's hydra (PMI_HOSTNAME is the host's name in the hostfile), Open MPI, PMIx and Slurm's srun.
_RANK = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS")
_HOST = ("PMI_HOSTNAME", "SLURMD_NODENAME")


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
    sys.stdout.flush()
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
