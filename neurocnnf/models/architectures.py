"""CNN-F architectures, built from one small set of blocks.

- ``fmnist_small`` (paper sec. 3.1): conv 1->32 5x5 and conv 32->64 5x5 (each + Norm + Bias +
  AdaReLU + AdaPool), FC 3136->10. Our reading of "2 conv + 1 FC": k = output of the first
  conv block (32 x 14 x 14), feedback runs through conv2 and the FC layer.
- ``fmnist_adv`` (Table 2): conv 1->16, 16->32, 32->32 + pool, 32->64 + pool (3x3), FC
  3136->1000->128->10. k = output of the 2nd conv block (32 x 28 x 28). About 3.3M parameters.
- ``wrn`` (Table 3, default depth 40, width 2): pre-activation WideResNet with Norm + Bias,
  channels 16/32/64/128, k = output of block 5 of group 1 (32 x 32 x 32). About 2.24M.

Every conv block is [conv, Norm, Bias, AdaReLU, Tap, (AdaPool), FeedbackNorm]: the Tap reads
the block's post-activation features, the FeedbackNorm normalizes the feedback entering the
block from above (as the reference implementation does).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from neurocnnf import nn as fnn
from neurocnnf.models.commitments import committed_regions
from neurocnnf.models.engine import CNNF
from neurocnnf.models.registry import register_architecture


def conv_block(
    name: str, in_channels: int, out_channels: int, kernel_size: int, pool: bool
) -> list[fnn.FeedbackModule]:
    """[conv, Norm, Bias, AdaReLU, Tap(name), (AdaPool), FeedbackNorm] with 'same' padding."""
    layers: list[fnn.FeedbackModule] = [
        fnn.TiedConv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        fnn.RMSNorm(), fnn.Bias(out_channels), fnn.AdaReLU(), fnn.Tap(name),
    ]
    if pool:
        layers.append(fnn.AdaPool(2))
    layers.append(fnn.FeedbackNorm())
    return layers


def feedback_convnet(
    arch: str,
    in_channels: int = 1,
    image_size: int = 28,
    conv_channels: Sequence[int] = (32, 64),
    kernel_size: int = 5,
    pool_after: Sequence[bool] = (True, True),
    hidden: Sequence[int] = (),
    encoder_blocks: int = 1,
    num_classes: int = 10,
    reconstruction_taps: Sequence[str] | None = None,
    iterations: int = 1,
    eta: float = 0.1,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    recurrent: bool = True,
) -> CNNF:
    """A plain conv stack + FC head with feedback; the first ``encoder_blocks`` form the encoder.

    Conv taps are named conv1..convN, hidden FC taps fc1..fcM. ``reconstruction_taps`` defaults
    to the body's conv taps. ``mean``/``std``: per-channel input normalisation in pixel scale
    [0, 1] (default 0.5 / 0.5); given ones are stored in the config, so checkpoints keep them.
    ``recurrent=False``: the ablation twin (feedback trained, never fed forward; see CNNF).
    """
    if len(pool_after) != len(conv_channels):
        raise ValueError("pool_after needs one flag per conv layer")
    if not 0 <= encoder_blocks < len(conv_channels):
        raise ValueError(f"encoder_blocks must be in [0, {len(conv_channels) - 1}]")
    config = dict(
        arch=arch, in_channels=in_channels, image_size=image_size,
        conv_channels=list(conv_channels), kernel_size=kernel_size, pool_after=list(pool_after),
        hidden=list(hidden), encoder_blocks=encoder_blocks, num_classes=num_classes,
    )
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            if len(value) != in_channels:
                raise ValueError(f"{key} needs one value per input channel ({in_channels}), "
                                 f"got {list(value)}")
            config[key] = [float(v) for v in value]
    if std is not None and min(std) <= 0:
        raise ValueError(f"std must be > 0 in every channel, got {list(std)}")
    blocks, size, channels = [], image_size, in_channels
    for i, (out_channels, pool) in enumerate(zip(conv_channels, pool_after, strict=True)):
        blocks.append(conv_block(f"conv{i + 1}", channels, out_channels, kernel_size, pool))
        channels, size = out_channels, size // 2 if pool else size
    head: list[fnn.FeedbackModule] = [fnn.Flatten()]
    features = channels * size * size
    for j, width in enumerate(hidden):
        head += [fnn.TiedLinear(features, width), fnn.Bias(width), fnn.AdaReLU(),
                 fnn.Tap(f"fc{j + 1}")]
        features = width
    head += [fnn.TiedLinear(features, num_classes), fnn.Bias(num_classes)]
    encoder = fnn.FeedbackSequential(
        fnn.Normalize(tuple(config.get("mean", (0.5,) * in_channels)),
                  tuple(config.get("std", (0.5,) * in_channels))),
        *[m for block in blocks[:encoder_blocks] for m in block],
    )
    body = fnn.FeedbackSequential(*[m for block in blocks[encoder_blocks:] for m in block], *head)
    if reconstruction_taps is None:
        reconstruction_taps = [f"conv{i + 1}" for i in range(encoder_blocks, len(conv_channels))]
    return CNNF(
        encoder, body, (in_channels, image_size, image_size), num_classes,
        tuple(reconstruction_taps), config, iterations, eta, recurrent,
    )


def fmnist_small(iterations: int = 1, eta: float = 0.1, num_classes: int = 10,
                 recurrent: bool = True) -> CNNF:
    """FMNIST-small (paper sec. 3.1): 2 conv (5x5) + 1 FC, k after the first conv block.
    ``recurrent=False``: its ablation twin (the feedback trained as a regulariser only)."""
    return feedback_convnet(
        "fmnist_small", 1, 28, (32, 64), 5, (True, True), (), 1, num_classes,
        iterations=iterations, eta=eta, recurrent=recurrent,
    )


def fmnist_adv(iterations: int = 1, eta: float = 0.1, num_classes: int = 10) -> CNNF:
    """FMNIST-adv (Table 2): 4 conv (3x3) + 3 FC, k after the second conv block."""
    return feedback_convnet(
        "fmnist_adv", 1, 28, (16, 32, 32, 64), 3, (False, False, True, True), (1000, 128), 2,
        num_classes, iterations=iterations, eta=eta,
    )


def vgg6(
    iterations: int = 1,
    eta: float = 0.1,
    num_classes: int = 10,
    width: int = 48,
    in_channels: int = 3,
    image_size: int = 32,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> CNNF:
    """VGG-6 for small natural images: three stages of two 3x3 convs (``width``, 2x, 4x
    channels), a 2x2 pool after each stage, FC to the classes; k after the first conv block.

    The natural-image backbone of the CIFAR-10 zoo (why this one: docs/reproduction.md, CIFAR-10).
    """
    return feedback_convnet(
        "vgg6", in_channels, image_size, (width, width, 2 * width, 2 * width, 4 * width, 4 * width),
        3, (False, True, False, True, False, True), (), 1, num_classes,
        iterations=iterations, eta=eta, mean=mean, std=std,
    )


def wrn(
    depth: int = 40,
    widen_factor: int = 2,
    k_block: int = 5,
    num_classes: int = 10,
    in_channels: int = 3,
    image_size: int = 32,
    iterations: int = 2,
    eta: float = 0.1,
) -> CNNF:
    """Pre-activation WideResNet-``depth``-``widen_factor`` with feedback (Table 3).

    k is the output of block ``k_block`` of group 1. Taps: conv1, group1..group3 (residual-sum
    outputs, the intermediate reconstruction layers) and head (final AdaReLU).
    """
    if (depth - 4) % 6 != 0:
        raise ValueError(f"WRN depth must be 6n + 4, got {depth}")
    n = (depth - 4) // 6
    if not 1 <= k_block < n:
        raise ValueError(f"k_block must be in [1, {n - 1}] for depth {depth}")
    widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
    config = dict(
        arch="wrn", depth=depth, widen_factor=widen_factor, k_block=k_block,
        num_classes=num_classes, in_channels=in_channels, image_size=image_size,
    )

    def group(in_c: int, out_c: int, stride: int) -> list[fnn.FeedbackModule]:
        return [fnn.PreActResidual(in_c if b == 0 else out_c, out_c, stride if b == 0 else 1)
                for b in range(n)]

    group1 = group(widths[0], widths[1], 1)
    encoder = fnn.FeedbackSequential(
        fnn.Normalize((0.5,) * in_channels, (0.5,) * in_channels),
        fnn.TiedConv2d(in_channels, widths[0], 3, padding=1), fnn.Tap("conv1"), *group1[:k_block],
    )
    final_size = image_size // 4
    body = fnn.FeedbackSequential(
        *group1[k_block:], fnn.Tap("group1"),
        *group(widths[1], widths[2], 2), fnn.Tap("group2"),
        *group(widths[2], widths[3], 2), fnn.Tap("group3"),
        fnn.RMSNorm(), fnn.Bias(widths[3]), fnn.AdaReLU(), fnn.Tap("head"), fnn.FeedbackNorm(),
        fnn.AvgPool(final_size), fnn.Flatten(), fnn.TiedLinear(widths[3], num_classes),
        fnn.Bias(num_classes),
    )
    return CNNF(
        encoder, body, (in_channels, image_size, image_size), num_classes,
        ("group1", "group2", "group3"), config, iterations, eta,
    )


# Default Brain-Score commitments, from each tap's depth in the feedforward hierarchy
# (fmnist_small has two conv layers: V1, V2 -> conv1; V4, IT -> conv2); the natural-image
# vgg6's from its CNN-F's RSA with fMRI (commitments.py).
register_architecture(
    "fmnist_small", fmnist_small, rebuild=partial(feedback_convnet, "fmnist_small"),
    regions={"V1": "conv1", "V2": "conv1", "V4": "conv2", "IT": "conv2"},
    fixed_layout=("num_classes", "recurrent"),
)
register_architecture(
    "fmnist_adv", fmnist_adv, rebuild=partial(feedback_convnet, "fmnist_adv"),
    regions={"V1": "conv1", "V2": "conv2", "V4": "conv3", "IT": "conv4"},
    fixed_layout=("num_classes",),
)
register_architecture(
    "vgg6", vgg6, rebuild=partial(feedback_convnet, "vgg6"), regions=committed_regions("vgg6"),
)
register_architecture(
    "wrn", wrn, regions={"V1": "conv1", "V2": "group1", "V4": "group2", "IT": "group3"},
)
