"""Data-parallel training in one place: batch slices on threads or worker processes, and MPI ranks.

- ``fit(..., parallel=Threads(n))`` (:mod:`~cnnkit.train.parallel.threads`) or ``parallel=Processes(n)``
  (:mod:`~cnnkit.train.parallel.processes`): each batch in n slices at once, the same gradients as the
  whole batch. Only for models whose layers treat every example on its own (:func:`why_not_split`, which
  reads each layer's ``mixes_examples``; :mod:`~cnnkit.train.parallel.slices`); others train whole.
- :func:`plan` (:mod:`~cnnkit.train.parallel.policy`): which of the two, and how many BLAS threads, for a
  model on a number of cores -- the rule ``cnnkit train`` follows.
- :mod:`cnnkit.train.parallel.mpi`: ``DataParallel`` for ``mpiexec -n N`` jobs (needs ``cnnkit[mpi]``;
  imported on its own, as ``from cnnkit.train.parallel.mpi import DataParallel``).
"""

from cnnkit.train.parallel.policy import SMALL_MODEL_MACS, describe, plan
from cnnkit.train.parallel.processes import Processes
from cnnkit.train.parallel.slices import why_not_split
from cnnkit.train.parallel.threads import Threads

__all__ = ["SMALL_MODEL_MACS", "Processes", "Threads", "describe", "plan", "why_not_split"]
