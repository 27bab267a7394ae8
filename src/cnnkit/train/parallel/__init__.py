"""Data-parallel training in one place: batch slices on threads, on worker processes, or over MPI ranks.

- ``cnnkit.train.parallel.mpi``: ``DataParallel`` for ``mpiexec -n N`` jobs (needs ``cnnkit[mpi]``).
"""
