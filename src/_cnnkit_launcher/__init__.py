"""The ``cnnkit`` console script's entry point (``[project.scripts]``), kept outside the cnnkit package.

Importing ``cnnkit.cli`` imports ``cnnkit`` first -- NumPy and every layer, about half a second -- and the
console script does that import before any of cnnkit's code can answer Ctrl-C, so Ctrl-C in that time ended
in a KeyboardInterrupt traceback. This package imports nothing but ``os`` and ``signal``; from the moment
the script imports it until :func:`cnnkit.cli.main` installs its own handler (and again after that
hands it back), Ctrl-C prints the line cnnkit.cli prints for an interrupt and exits with status 130.
Nothing else should import it: it sets the process's SIGINT handler as it is imported.
"""

import os
import signal


def _interrupted(signum, frame):
    os.write(2, b"cnnkit: interrupted\n")  # straight to the file descriptor: no buffer to re-enter mid-write
    raise SystemExit(130)  # through any import in progress, which cleans up after itself


signal.signal(signal.SIGINT, _interrupted)


def main():
    """Import the command line, the slow part, then run it (``cnnkit.cli.main`` exits with its status)."""
    from cnnkit.cli import main as run

    run()
