"""Fast kernels: each an optimisation of exactly one kernel of :mod:`cnnkit.reference`, with its signature.

Each module opens with what it speeds up, when, and the idea; measured gains live in docs/performance.md.
:mod:`cnnkit.fast.dispatch` decides which kernel runs for a shape; nothing else here makes that choice.
"""
