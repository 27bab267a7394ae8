"""The tuning table: every number the fast kernels and the dispatch use to decide, each with one line of why.

Measured on the machines and shapes of docs/performance.md (interleaved with PyTorch, 2 cores). The
numbers are rules of thumb for cache sizes and fixed costs, not laws: ``benchmarks/`` re-measures them,
and ``with cnnkit.reference_mode():`` or ``algorithm=`` bypasses them all.
"""

# -- which convolution kernel (cnnkit.fast.dispatch) --
# Winograd's filter transform costs 36 * C * K numbers per call; under 32 input channels per group, or 32
# output tiles of 4x4 in the batch, im2col measured faster.
WINOGRAD_MIN_CHANNELS, WINOGRAD_MIN_TILES = 32, 32
# ... in inference. In training (forward + backward) Winograd already wins from 16 channels: 0.59-0.88x
# im2col's time on 7 layer shapes with 16-24 input channels (CIFAR ResNets', GoogLeNet's, batch 8-128, one
# and two threads; AMD EPYC, AVX-512), 1.09-1.11x with 8; the zoo suite's measured dispatch agrees.
WINOGRAD_MIN_CHANNELS_TRAINING = 16
# Dispatch by measurement (runtime.configure(dispatch="measure")): timed rounds per layer shape, at most
# MEASURE_ROUNDS and while MEASURE_BUDGET seconds last. Three rounds of the minimum settle the order of
# kernels that differ by 10% or more; 50 ms keeps a new shape's cost below one training step of most layers.
MEASURE_BUDGET, MEASURE_ROUNDS = 0.05, 3
# ... on the first MEASURE_IMAGES images of the batch (the choice is kept for the whole batch): the kernels
# work through a batch in parts of a few images, so a larger batch repeats what these show, and a test-set
# evaluation at batch 500 costs what a training batch does to measure.
MEASURE_IMAGES = 32

# -- batch parts and chunks: cache-sized pieces of work --
# im2col elements per batch part: ~2 MB of float32, written and multiplied while in cache.
COLUMNS_PER_PART = 1 << 19
# ... and per row band of one image's backward, when its columns exceed that (the stem, 5x5 layers on large
# images): twice a forward band, whose size made the 4 backward multiplies of each band too small on one
# thread (new/old 0.98-1.25x); at this size 0.76-1.04x on one thread, 0.80-1.03x on two, over 3 layers and
# 3 runs, and 2-3x less scratch memory than whole images' columns (AMD EPYC AVX-512, session 11).
BACKWARD_BAND_COLUMNS = 2 * COLUMNS_PER_PART
# Filter matrices of at most THREADED_PARTS numbers multiply little per column copied, so their batch parts
# run on the elementwise threads with a one-thread BLAS, if the layer has THREADED_MIN_MACS multiply-adds
# to share (fwd+bwd 0.61-0.91x the time on (64, 3, 32, 32) with 3x3 and 5x5 filters; LeNet-5's lost).
# Larger ones too when the parts fall evenly, two or more per thread: fwd 0.86-0.97x, fwd+bwd 0.79-0.98x
# on 7 layers of batch 8-64 (the 7x7 stem, strided 3x3, 5x5; AMD EPYC AVX-512, two threads); an uneven
# or one-per-thread split (batch 2, 3, 5) was 1.05-1.29x slower.
THREADED_PARTS, THREADED_MIN_MACS = 4096, 32_000_000
# Strided im2col layers on channels-last input with at least this many channels gather channels-last
# columns (each tap copies runs of C numbers: no phases, no wide grid): faster on strided 3x3 layers of
# 32-512 channels, slower on a 5x5 layer of 16 (runs of 64 bytes); stride-1 layers were not faster
# (docs/performance.md, session 9).
LAST_COLUMNS_MIN_CHANNELS = 32
# im2col's backward lays a batch part's columns side by side so that dW is one multiply, for filter
# matrices (K/G x C/G*F*F) of more than ONE_MULTIPLY_MIN_FILTERS numbers (0.75-0.9x the backward's time on
# (8,256,14,512,3,2,1), (32,32,16,16,3), LeNet's conv2); smaller ones take a multiply per image and a sum:
# one long multiply of a few rows ran 1.3-2.1x slower (LeNet's conv1, (64|128, 3|8, 32, 8|16, 3); AMD EPYC
# AVX-512, one and two threads).
ONE_MULTIPLY_MIN_FILTERS = 1024
# Winograd: tile-array elements per batch part (2 MB of float32), at least this many tiles per part (fewer
# spend more in Python than in BLAS), and layers with C/G * K/G at most this run their parts, forward and
# backward, on threads with a one-thread BLAS each (their multiplies, 36 of (P, C) @ (C, K), are too small
# for two BLAS threads; the NumPy transforms between them run on both cores too). Two threads: backward
# 0.83-1.00x the time on 8 layers of 64-128 channels (session 8), forward 0.70-0.98x on 4 such layers
# (NCHW and channels-last input, 4 runs, AMD EPYC AVX-512 and its AVX2 kernels; session 10); 256-512
# channels measured no faster (a two-thread BLAS keeps them).
WINOGRAD_PART_ELEMENTS, WINOGRAD_MIN_PART_TILES, WINOGRAD_THREADED_PARTS = 1 << 19, 256, 128 * 128
# Winograd's transformed filters (4x the weights for F(4x4, 3x3)) are kept while the weights stay the same
# (cnnkit.runtime.derived) for layers of at least this many weights (256 x 256 x 3 x 3: 1.5-2 ms to make
# on one core, up to 20 ms for 512 x 512, against ~0.1-1 ms to compare the weights with a snapshot).
WINOGRAD_KEPT_FILTERS = 256 * 256 * 9
# Depthwise: padded input numbers per (image, channel block) item, 2 MB of float32 (best on (8,64,56,56)).
DEPTHWISE_ITEM_ELEMENTS = 1 << 19
# Depthwise layers with at most this many output positions per map run channels-last (rows of C numbers):
# 1.3-2.4x faster on MobileNet-V2's 7x7-28x28 maps (stride 2 included), slower from 32x32 on with <= 144
# channels, where the planes' rows are long enough for NumPy's inner loops.
DEPTHWISE_CHANNELS_LAST_POSITIONS = 28 * 28
# ReLU on arrays of at least this many elements runs in batch chunks (one pass over memory instead of two).
RELU_CHUNKED_ELEMENTS = 1 << 18
