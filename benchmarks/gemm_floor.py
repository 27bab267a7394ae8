"""How close can a 1x1 convolution get? cnnkit's 1x1 layer against a bare ``np.matmul`` of the same shape
and against PyTorch's convolution, NCHW and channels-last, on two threads and on one.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.gemm_floor

A 1x1 convolution is one matrix multiply (per image on NCHW memory, one for the whole batch on
channels-last memory). If cnnkit's time equals the bare multiply's, the kernel adds nothing and only a
faster BLAS could beat PyTorch's: that is the floor issue 7's "faster than PyTorch on 1x1" runs into.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import compare, use_clock


def main(shape=(8, 256, 14, 14), out_channels=512, budget=6.0):
    import torch
    from threadpoolctl import threadpool_limits

    from cnnkit.functional.conv import convnd
    from cnnkit.functional.layout import channels_last
    from cnnkit.runtime import keep_freed_memory

    keep_freed_memory()
    rng = np.random.default_rng(0)
    N, C, H, W = shape
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((out_channels, C, 1, 1), dtype=np.float32)
    x_last, w2 = channels_last(x), w.reshape(out_channels, C)
    rows = np.moveaxis(x_last, 1, -1).reshape(-1, C)
    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    tx_last = tx.to(memory_format=torch.channels_last)

    def torch_conv(t):
        def run():
            with torch.no_grad():
                torch.nn.functional.conv2d(t, tw)
        return run

    contenders = {"torch NCHW": torch_conv(tx), "torch channels-last": torch_conv(tx_last),
                  "cnnkit NCHW": lambda: convnd(x, w),
                  "matmul per image": lambda: np.matmul(w2, x.reshape(N, C, -1)),
                  "cnnkit channels-last": lambda: convnd(x_last, w), "matmul rows": lambda: rows @ w2.T}
    for threads, clock in ((2, "wall"), (1, "cpu")):
        torch.set_num_threads(threads)
        use_clock(clock)
        with threadpool_limits(threads, user_api="blas"):
            timing = compare(contenders, budget=budget)
        print(f"{threads} thread(s), {clock} clock, forward of {shape} -> {out_channels} channels:")
        for name, seconds in timing.best.items():
            ratio = seconds / timing.best["torch NCHW"]
            print(f"  {name:<22} {seconds * 1e3:6.2f} ms  ({ratio:.2f}x torch NCHW)")


if __name__ == "__main__":
    main()
