"""Pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks").

The original ResNet adds the shortcut and *then* applies ReLU, so the identity path is interrupted after
every block. Moving batch norm and ReLU in front of each convolution ("pre-activation") leaves the
shortcut a pure identity from the first block to the last: ``x_{l+1} = x_l + F(x_l)``, and the gradient of
any block reaches every earlier block unchanged through the sum. The paper's layout, as in its reference
implementation (fb.resnet.torch's preresnet):

- stem: 7x7/2 conv -> BN -> ReLU -> 3x3/2 max pool (the first block takes this activated output as is);
- a block whose shortcut is the identity: ``x + conv(relu(bn(conv(relu(bn(x))))))`` (BasicBlock), or three
  such stages 1x1 -> 3x3 -> 1x1 (Bottleneck, 4x wider output);
- a block that changes the volume's size shares its first BN -> ReLU between both paths (``bn1``, ``relu1``
  before the split), and its shortcut is a strided 1x1 conv without batch norm;
- head: a final BN -> ReLU (the blocks leave their sums un-normalized), global average pool, one Linear.

Every stride-2 layer rounds down at 224 x 224 (``fit="crop"``), as in the original ResNet.

>>> from cnnkit.analysis import summary
>>> s = summary(preact_resnet18(), (3, 224, 224))
>>> s.total_params, s.total_macs, s.rows[-1].output_shape
(11687720, 1814073344, (1000,))
"""

from __future__ import annotations

from cnnkit.layers import (
    BatchNorm2d,
    Conv2d,
    Flatten,
    GlobalAvgPool2d,
    Linear,
    MaxPool2d,
    ReLU,
    Residual,
    Sequential,
)
from cnnkit.models.registry import register


def _conv(in_channels, out_channels, kernel_size, stride, rng):
    return Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=(kernel_size - 1) // 2,
                  bias=False, fit="crop" if stride > 1 else "error", rng=rng)


def _block(stages, in_channels, out_channels, stride, first, rng):
    """stages: (in, out, kernel, stride) of each conv. The first conv's BN -> ReLU is skipped in the network's
    first block (``first``: its input is already activated) and moved before the split when the shortcut
    is a projection; every later conv gets its own BN -> ReLU."""
    body = {}
    for i, (c_in, c_out, k, s) in enumerate(stages, start=1):
        if i > 1:
            body[f"bn{i}"], body[f"relu{i}"] = BatchNorm2d(c_in), ReLU()
        body[f"conv{i}"] = _conv(c_in, c_out, k, s, rng)
    if stride == 1 and in_channels == out_channels:
        preact = {} if first else {"bn1": BatchNorm2d(in_channels), "relu1": ReLU()}
        return Residual(Sequential({**preact, **body}))
    shortcut = Conv2d(in_channels, out_channels, 1, stride=stride, bias=False, fit="crop" if stride > 1 else
                      "error", rng=rng)
    residual = Residual(Sequential(body), shortcut)
    if first:
        return residual
    return Sequential(bn1=BatchNorm2d(in_channels), relu1=ReLU(), residual=residual)


def preact_basic_block(in_channels, channels, stride=1, *, first=False, rng=None):
    """Two 3x3 convs, each after BN -> ReLU; output ``channels`` (the identity shortcut when sizes match)."""
    stages = [(in_channels, channels, 3, stride), (channels, channels, 3, 1)]
    return _block(stages, in_channels, channels, stride, first, rng)


def preact_bottleneck(in_channels, channels, stride=1, *, first=False, rng=None):
    """1x1 (to ``channels``) -> 3x3 (stride) -> 1x1 (to 4 * ``channels``), each after BN -> ReLU."""
    stages = [(in_channels, channels, 1, 1), (channels, channels, 3, stride), (channels, 4 * channels, 1, 1)]
    return _block(stages, in_channels, 4 * channels, stride, first, rng)


def preact_resnet(block, blocks_per_stage, num_classes=1000, input_shape=(3, 224, 224), *, rng=None):
    """A pre-activation ResNet from a block function and the number of blocks in each of its four stages."""
    expansion = 4 if block is preact_bottleneck else 1
    stages, in_channels = {}, 64
    for i, (channels, count) in enumerate(zip((64, 128, 256, 512), blocks_per_stage, strict=True)):
        blocks = []
        for j in range(count):
            blocks.append(block(in_channels, channels, 2 if (j == 0 and i > 0) else 1, first=i == j == 0,
                                rng=rng))
            in_channels = channels * expansion
        stages[f"layer{i + 1}"] = Sequential(*blocks)
    return Sequential(
        conv1=_conv(input_shape[0], 64, 7, 2, rng), bn1=BatchNorm2d(64), relu=ReLU(),
        maxpool=MaxPool2d(3, stride=2, padding=1, fit="crop"), **stages,
        bn=BatchNorm2d(in_channels), relu_final=ReLU(), avgpool=GlobalAvgPool2d(), flatten=Flatten(),
        fc=Linear(in_channels, num_classes, rng=rng))


def _variant(name, block, counts):
    def build(num_classes: int = 1000, input_shape=(3, 224, 224), *, rng=None):
        return preact_resnet(block, counts, num_classes, input_shape, rng=rng)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = f"{name}: {block.__name__} blocks {counts}, pre-activation (He et al. 2016)."
    return register(build)


preact_resnet18 = _variant("preact_resnet18", preact_basic_block, (2, 2, 2, 2))
preact_resnet34 = _variant("preact_resnet34", preact_basic_block, (3, 4, 6, 3))
preact_resnet50 = _variant("preact_resnet50", preact_bottleneck, (3, 4, 6, 3))
