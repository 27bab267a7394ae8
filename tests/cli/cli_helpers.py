"""Helpers of the CLI tests: run `cnnkit ...` in this process, or Ctrl-C a real one in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from cnnkit.cli import main


def run_main(args, capsys):
    """(exit code, stdout, stderr) of ``cnnkit ARGS`` run in this process through cnnkit.cli.main."""
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return info.value.code, out, err


def interrupt(command: list[str], ready, timeout: float = 120) -> tuple[int, str, str]:
    """Start ``command`` in a process group of its own, wait until ``ready(process)`` returns true (it may
    read the process's stdout), then send SIGINT to the whole group as Ctrl-C in a terminal does.

    Returns:
        (exit status, the rest of stdout, stderr); the group is killed if the command outlives ``timeout``.
    """
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            while not ready(process):
                assert process.poll() is None, f"ended before it was interrupted: {process.stderr.read()}"
            os.killpg(process.pid, signal.SIGINT)
            out, err = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, out, err
