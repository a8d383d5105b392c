"""Turn an ordinary feedforward PyTorch network into a CNN-F: :func:`from_backbone`.

The backbone is traced with ``torch.fx`` (an ``nn.Sequential`` always traces) and rewritten
layer by layer into the CNN-F layers of :mod:`neurocnnf.nn`:

- ``Conv2d`` -> ``TiedConv2d`` + ``Bias``; ``Linear`` -> ``TiedLinear`` + ``Bias``. The CNN-F
  holds the backbone's own Parameter objects (no copy): the feedback (transposed conv,
  ``W.t()``) uses the forward weights, and training the CNN-F trains the backbone. Deep-copy
  the backbone first for two independent models.
- ``ReLU`` -> ``AdaReLU``; ``MaxPool2d`` (kernel == stride, no padding) -> ``AdaPool``;
  ``AvgPool2d`` / ``AdaptiveAvgPool2d`` (whole windows) -> ``AvgPool``; ``Flatten`` -> ``Flatten``;
  ``x + f(x)`` (an identity or projection shortcut) -> :class:`Residual`, whose feedback is
  the sum of both paths' feedback; ``Dropout`` / ``Identity`` are dropped (identity at test).
- ``BatchNorm2d`` right after a conv: ``batchnorm="fold"`` folds its *evaluation* statistics
  (running mean/var, affine) into new conv weights and bias, so the CNN-F at T = 0 computes the
  trained network in eval mode (the folded weights are new Parameters, not the backbone's);
  ``batchnorm="error"`` refuses. A BatchNorm anywhere else is refused.
- ``norm=True`` inserts what the theory assumes (Assumption 2.1.A, as in the built-in
  architectures): RMS norm + bias after every conv (the conv's bias becomes that bias) and a
  ``FeedbackNorm`` before every conv and linear layer. This *changes the function*: the result
  must be trained before use.

Taps (read-out layers, for extraction, losses and Brain-Score) are named after backbone
modules: by default the top-level children that contain a ReLU (a CORnet-Z-style
``Sequential(V1=..., V2=..., V4=..., IT=..., decoder=...)`` gives taps V1, V2, V4, IT), or,
when there are none, every ReLU module. ``reconstruct_at`` names the module whose output is h,
the layer k that the feedback reconstructs: everything up to it is the encoder.

Anything else (attention, other nonlinearities, concatenation, grouped convs, overlapping
max-pool, ...) raises one :class:`BackboneError` naming the layer and why. The layer list is
stored in ``model.config`` (``arch = 'backbone'``), so checkpoints rebuild the model without the
backbone's code.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn
from torch.fx.passes.shape_prop import ShapeProp

from neurocnnf import nn as fnn
from neurocnnf.errors import NeurocnnfError
from neurocnnf.models.engine import CNNF
from neurocnnf.models.layer_specs import Residual, build_layers, layer_specs
from neurocnnf.models.registry import register_architecture

SUPPORTED = ("supported: Conv2d, Linear, ReLU, MaxPool2d/AvgPool2d with kernel == stride, "
             "AdaptiveAvgPool2d, Flatten, BatchNorm2d after a conv (folded), Dropout, Identity, "
             "residual additions")
SUPPORTED_MODULES = (nn.Conv2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
                     nn.AdaptiveAvgPool2d, nn.Flatten, nn.BatchNorm2d, nn.Identity, nn.Dropout)
ADDS = (operator.add, operator.iadd, torch.add)
RELUS = (F.relu, torch.relu)


class BackboneError(NeurocnnfError, ValueError):
    """A backbone that cannot be turned into a CNN-F (the message names the layer and why)."""


def from_backbone(
    backbone: nn.Module,
    reconstruct_at: str,
    input_shape: tuple[int, int, int],
    taps: Sequence[str] | None = None,
    reconstruction_taps: Sequence[str] | None = None,
    batchnorm: Literal["fold", "error"] = "fold",
    norm: bool = False,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    iterations: int = 1,
    eta: float = 0.1,
    name: str = "backbone",
) -> CNNF:
    """A CNN-F with the weights of ``backbone`` (see the module docstring for the rules).

    backbone: a torch.fx-traceable module or nn.Sequential, images (N, *input_shape) ->
        logits (N, classes).
    reconstruct_at: name of the backbone module whose output is h (layer k), e.g. 'V1'.
    input_shape: (C, H, W) of the images.
    taps: module names to read out (default: top-level blocks that contain a ReLU, else every
        ReLU); reconstruction_taps: the body taps of the intermediate reconstruction loss
        (default: all body taps).
    batchnorm: 'fold' a BatchNorm2d after a conv into it (evaluation statistics) or 'error'.
    norm: insert the RMS norm + bias + feedback norm of the theory (changes the function).
    mean, std: per-channel input normalization applied to images in [0, 1] (default 0 and 1:
        the backbone sees the images as given, and T = 0 reproduces ``backbone(x)``).
    iterations, eta: the CNN-F defaults (T and the step size); name: stored in the config.
    """
    if not isinstance(backbone, nn.Module):
        raise BackboneError(f"backbone must be a torch.nn.Module (images -> logits), got "
                            f"{type(backbone).__name__}: wrap a function in an nn.Module")
    c = input_shape[0]
    mean = tuple(mean) if mean is not None else (0.0,) * c
    std = tuple(std) if std is not None else (1.0,) * c
    graph, output = _traced(backbone, tuple(input_shape), mean, std)
    if output.dim() != 2:
        raise BackboneError(f"backbone output must be logits (N, classes), got shape "
                            f"{tuple(output.shape)}")
    converter = _Converter(graph, taps, _default_taps(backbone), batchnorm, norm)
    encoder, body = converter.split(reconstruct_at)
    return _assemble(encoder, body, input_shape, output.shape[1], reconstruction_taps,
                     mean, std, name, iterations, eta)


def rebuild_backbone(
    name: str,
    input_shape: Sequence[int],
    num_classes: int,
    mean: Sequence[float],
    std: Sequence[float],
    reconstruction_taps: Sequence[str],
    encoder: Sequence[dict[str, Any]],
    body: Sequence[dict[str, Any]],
    iterations: int = 1,
    eta: float = 0.1,
) -> CNNF:
    """Rebuild a :func:`from_backbone` model from the entries of its ``model.config``
    (checkpoint loading; fresh parameters of the stored shapes)."""
    return _assemble(build_layers(encoder), build_layers(body), tuple(input_shape), num_classes,
                     reconstruction_taps, tuple(mean), tuple(std), name, iterations, eta)


def _assemble(encoder: list[fnn.FeedbackModule], body: list[fnn.FeedbackModule],
              input_shape: tuple[int, ...], num_classes: int,
              reconstruction_taps: Sequence[str] | None, mean: tuple[float, ...],
              std: tuple[float, ...], name: str, iterations: int, eta: float) -> CNNF:
    encoder_seq = fnn.FeedbackSequential(fnn.Normalize(mean, std), *encoder)
    body_seq = fnn.FeedbackSequential(*body)
    body_taps = [m.name for m in body_seq.modules() if isinstance(m, fnn.Tap)]
    if reconstruction_taps is None:
        reconstruction_taps = body_taps
    unknown = sorted(set(reconstruction_taps) - set(body_taps))
    if unknown:
        raise BackboneError(f"reconstruction_taps {unknown} are not body taps; body taps: "
                            f"{body_taps}")
    config = dict(arch="backbone", name=name, input_shape=list(input_shape),
                  num_classes=int(num_classes), mean=list(mean), std=list(std),
                  reconstruction_taps=list(reconstruction_taps),
                  encoder=layer_specs(encoder), body=layer_specs(body))
    return CNNF(encoder_seq, body_seq, tuple(input_shape), int(num_classes),
                tuple(reconstruction_taps), config, iterations, eta)


def _traced(backbone: nn.Module, input_shape: tuple[int, ...], mean: tuple[float, ...],
            std: tuple[float, ...]) -> tuple[fx.GraphModule, Tensor]:
    """The fx graph with shapes recorded (a probe batch in eval mode) and the probe's output."""
    try:
        graph = fx.symbolic_trace(backbone)
    except Exception as error:  # fx raises several types for untraceable code
        raise BackboneError(f"backbone is not torch.fx-traceable ({type(error).__name__}: "
                            f"{error}); write its forward without data-dependent control "
                            "flow, or pass an nn.Sequential") from None
    probe = (torch.full((2, *input_shape), 0.5) - torch.tensor(mean).view(1, -1, 1, 1)) \
        / torch.tensor(std).view(1, -1, 1, 1)
    was_training = backbone.training
    backbone.eval()  # no BatchNorm statistics are updated by the probe
    try:
        with torch.no_grad():
            param = next(backbone.parameters(), None)
            probe = probe.to(param.device) if param is not None else probe
            ShapeProp(graph).propagate(probe)
            output = graph(probe)
    except Exception as error:
        raise BackboneError(f"backbone does not run on images of shape (N, "
                            f"{', '.join(map(str, input_shape))}): {error}") from None
    finally:
        backbone.train(was_training)
    return graph, output


def _default_taps(backbone: nn.Module) -> list[str]:
    blocks = [name for name, child in backbone.named_children()
              if any(isinstance(m, nn.ReLU) for m in child.modules()) and list(child.children())]
    if blocks:
        return blocks
    return [name for name, m in backbone.named_modules() if isinstance(m, nn.ReLU)]


class _Converter:
    """Walks the fx graph backwards from the output: chains of layers and residual blocks."""

    def __init__(self, graph: fx.GraphModule, taps: Sequence[str] | None, default: list[str],
                 batchnorm: str, norm: bool):
        if batchnorm not in ("fold", "error"):
            raise BackboneError(f"batchnorm must be 'fold' or 'error', got {batchnorm!r}")
        self.graph, self.batchnorm, self.norm = graph, batchnorm, norm
        self.nodes = list(graph.graph.nodes)
        self.order = {node: i for i, node in enumerate(self.nodes)}
        for node in self.nodes:  # the first unsupported operation in forward order
            self._kind(node)
        self.scope_end = self._scope_ends()
        if taps is None:  # a block that ends in the logits is no read-out layer
            logits = next(n for n in self.nodes if n.op == "output").args[0]
            taps = [t for t in default if self.scope_end.get(t) is not logits]
        unknown = [t for t in taps if t not in self.scope_end]
        if unknown:
            raise BackboneError(f"taps {unknown} are not modules of the backbone; modules: "
                                f"{sorted(self.scope_end)}")
        self.taps_after: dict[fx.Node, list[str]] = {}
        for tap in taps:
            self.taps_after.setdefault(self.scope_end[tap], []).append(tap)
        self.edges: set[tuple[fx.Node, fx.Node]] = set()
        self.used_modules: set[str] = set()

    def _scope_ends(self) -> dict[str, fx.Node]:
        """Module name -> the last graph node computed inside it."""
        ends = {}
        for node in self.nodes:
            for scope in node.meta.get("nn_module_stack", {}):
                ends[scope] = node
            if node.op == "call_module":
                ends[node.target] = node
        return ends

    def split(self, reconstruct_at: str
              ) -> tuple[list[fnn.FeedbackModule], list[fnn.FeedbackModule]]:
        """(encoder layers, body layers) split after the module ``reconstruct_at``."""
        if reconstruct_at not in self.scope_end:
            raise BackboneError(f"reconstruct_at={reconstruct_at!r} is not a module of the "
                                f"backbone; modules: {sorted(self.scope_end)}")
        start = next(n for n in self.nodes if n.op == "placeholder")
        output = next(n for n in self.nodes if n.op == "output")
        end = output.args[0]
        if not isinstance(end, fx.Node):
            raise BackboneError("backbone must return one tensor (the logits)")
        cut = self.scope_end[reconstruct_at]
        body = self._chain(end, cut)
        encoder = self._chain(cut, start)
        self._check_edges(output)
        if not any(isinstance(m, fnn.AdaReLU | fnn.AdaPool) for m in _flat(body)):
            raise BackboneError(f"no ReLU or max-pool after {reconstruct_at!r}: the feedback "
                                "needs latent layers in the body; reconstruct at a lower layer")
        return encoder, body

    def _chain(self, end: fx.Node, start: fx.Node) -> list[fnn.FeedbackModule]:
        """Layers computing ``end`` from ``start`` (a chain, possibly with residual blocks)."""
        layers: list[fnn.FeedbackModule] = []
        node = end
        while node is not start:
            if node.op == "placeholder" or self.order[node] < self.order[start]:
                raise BackboneError(f"{_label(start, self.graph)} is inside a residual block or "
                                    "a side branch: reconstruct_at must name a layer on the "
                                    "main path")
            here = [fnn.Tap(t) for t in self.taps_after.get(node, [])]
            if _is_add(node):
                left, right = node.args
                if not (isinstance(left, fx.Node) and isinstance(right, fx.Node)):
                    raise BackboneError(f"{_label(node, self.graph)}: adds a constant; only "
                                        "residual additions of two paths are supported")
                fork = max(_ancestry(left) & _ancestry(right), key=self.order.__getitem__)
                self.edges |= {(left, node), (right, node)}
                paths = sorted([self._chain(left, fork), self._chain(right, fork)], key=len)
                layers = [Residual(fnn.FeedbackSequential(*paths[1]),
                                   fnn.FeedbackSequential(*paths[0])), *here, *layers]
                node = fork
                continue
            converted, source = self._convert(node)
            if len(source.all_input_nodes) != 1:
                raise BackboneError(f"cannot convert {_label(source, self.graph)}: it takes "
                                    f"{len(source.all_input_nodes)} tensor inputs; CNN-F layers "
                                    f"take one ({SUPPORTED})")
            layers = [*converted, *here, *layers]
            node = source.all_input_nodes[0]
            self.edges.add((node, source))
        return layers

    def _convert(self, node: fx.Node) -> tuple[list[fnn.FeedbackModule], fx.Node]:
        """CNN-F layers for ``node`` and the node whose input they take (a folded BatchNorm
        consumes the conv before it)."""
        label = _label(node, self.graph)
        kind = self._kind(node)
        if kind == "module":
            return self._convert_module(node, label)
        if kind == "relu":
            return [fnn.AdaReLU()], node
        if _flatten_dims(node) != (1, -1):
            raise BackboneError(f"cannot convert {label}: flatten must keep the batch dim "
                                "and flatten the rest (start_dim=1)")
        return [fnn.Flatten()], node

    def _kind(self, node: fx.Node) -> str:
        """'module', 'add', 'relu', 'flatten' or 'io'; an unsupported operation raises."""
        target = node.target
        if node.op in ("placeholder", "output"):
            return "io"
        if node.op == "call_module":
            module = self.graph.get_submodule(target)
            if not isinstance(module, SUPPORTED_MODULES):
                raise BackboneError(f"cannot convert {_label(node, self.graph)}: "
                                    f"{_why_not(module)}; {SUPPORTED}")
            return "module"
        if _is_add(node):
            return "add"
        if node.op == "call_function" and target in RELUS or node.op == "call_method" and \
                target in ("relu", "relu_"):
            return "relu"
        if node.op in ("call_function", "call_method") and (
                target is torch.flatten or target == "flatten"):
            return "flatten"
        if target in ("view", "reshape", torch.reshape, torch.cat, "size", "transpose"):
            why = "reshapes other than flatten(1) and concatenation have no CNN-F feedback"
        else:
            why = "no CNN-F counterpart"
        name = getattr(target, "__name__", str(target))
        raise BackboneError(f"cannot convert {_label(node, self.graph)} ({name}): {why}; "
                            f"{SUPPORTED}")

    def _convert_module(self, node: fx.Node, label: str
                        ) -> tuple[list[fnn.FeedbackModule], fx.Node]:
        module = self.graph.get_submodule(node.target)
        if node.target in self.used_modules and any(True for _ in module.parameters()):
            raise BackboneError(f"cannot convert {label}: the module is called more than once "
                                "(weights shared across layers are not supported)")
        self.used_modules.add(node.target)
        shape = node.meta["tensor_meta"].shape
        in_shape = node.all_input_nodes[0].meta["tensor_meta"].shape
        if isinstance(module, nn.BatchNorm2d):
            return self._fold(node, module, label)
        if isinstance(module, nn.Conv2d):
            return self._conv(module, module.weight, module.bias, label), node
        if isinstance(module, nn.Linear):
            return self._weighted(fnn.TiedLinear(module.in_features, module.out_features),
                                  module.weight, module.bias), node
        if isinstance(module, nn.ReLU):
            return [fnn.AdaReLU()], node
        if isinstance(module, nn.MaxPool2d):
            return [fnn.AdaPool(_whole_windows(module, in_shape, label))], node
        if isinstance(module, nn.AvgPool2d):
            if module.divisor_override is not None:
                raise BackboneError(f"cannot convert {label}: divisor_override is not supported")
            return [fnn.AvgPool(_whole_windows(module, in_shape, label))], node
        if isinstance(module, nn.AdaptiveAvgPool2d):
            return [fnn.AvgPool(_adaptive_window(in_shape, shape, label))], node
        if isinstance(module, nn.Flatten):
            if (module.start_dim, module.end_dim) != (1, -1):
                raise BackboneError(f"cannot convert {label}: Flatten must use start_dim=1, "
                                    "end_dim=-1")
            return [fnn.Flatten()], node
        return [], node  # Identity, Dropout (identity at test time)

    def _conv(self, conv: nn.Conv2d, weight: nn.Parameter, bias: nn.Parameter | None,
              label: str) -> list[fnn.FeedbackModule]:
        k, stride, padding = conv.kernel_size, conv.stride, conv.padding
        if isinstance(padding, str):
            padding = (0, 0) if padding == "valid" else tuple(d * (s - 1) // 2 for d, s in
                                                              zip(conv.dilation, k, strict=True))
        problems = [
            (conv.groups != 1, f"groups={conv.groups} (grouped/depthwise conv)"),
            (conv.dilation != (1, 1), f"dilation={conv.dilation}"),
            (k[0] != k[1] or stride[0] != stride[1] or padding[0] != padding[1],
             "non-square kernel, stride or padding"),
            (conv.padding_mode != "zeros", f"padding_mode={conv.padding_mode!r}"),
            (isinstance(conv.padding, str) and conv.padding == "same" and k[0] % 2 == 0,
             "padding='same' with an even kernel"),
        ]
        for bad, what in problems:
            if bad:
                raise BackboneError(f"cannot convert {label}: {what}; TiedConv2d supports "
                                    "square kernels, stride and zero padding, groups=1")
        tied = fnn.TiedConv2d(conv.in_channels, conv.out_channels, k[0], stride[0], padding[0])
        return self._weighted(tied, weight, bias)

    def _weighted(self, layer: fnn.TiedConv2d | fnn.TiedLinear, weight: nn.Parameter,
                  bias: nn.Parameter | None) -> list[fnn.FeedbackModule]:
        """The tied layer holding ``weight`` itself, then its bias (norm=True: RMS norm first)."""
        layer.weight = weight
        out_channels = weight.shape[0]
        layers: list[fnn.FeedbackModule] = [fnn.FeedbackNorm()] if self.norm else []
        layers.append(layer)
        if self.norm and isinstance(layer, fnn.TiedConv2d):
            layers.append(fnn.RMSNorm())
        if bias is not None or self.norm:
            bias_layer = fnn.Bias(out_channels)
            if bias is not None:
                bias_layer.bias = bias
            layers.append(bias_layer)
        return layers

    def _fold(self, node: fx.Node, bn: nn.BatchNorm2d, label: str
              ) -> tuple[list[fnn.FeedbackModule], fx.Node]:
        conv_node = node.args[0]
        conv = (self.graph.get_submodule(conv_node.target)
                if conv_node.op == "call_module" else None)
        if self.batchnorm == "error":
            raise BackboneError(f"cannot convert {label}: BatchNorm refused (batchnorm='error'); "
                                "use batchnorm='fold' to fold its evaluation statistics into "
                                "the conv before it")
        if not isinstance(conv, nn.Conv2d) or len(conv_node.users) != 1:
            raise BackboneError(f"cannot convert {label}: only a BatchNorm2d directly after a "
                                "conv (and its only user) can be folded; CNN-F has no "
                                "BatchNorm (norm=True inserts its RMS norm + bias)")
        if bn.running_var is None:
            raise BackboneError(f"cannot convert {label}: no running statistics to fold "
                                "(track_running_stats=False)")
        self.used_modules.add(conv_node.target)
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            bias = -bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            if bn.bias is not None:
                bias = bias + bn.bias
            weight = conv.weight * scale.view(-1, 1, 1, 1)
        layers = self._conv(conv, nn.Parameter(weight.clone()), nn.Parameter(bias.clone()),
                            _label(conv_node, self.graph))
        self.edges.add((conv_node, node))
        return layers, conv_node

    def _check_edges(self, output: fx.Node) -> None:
        for node in self.nodes:
            for user in node.users:
                if user is not output and (node, user) not in self.edges:
                    raise BackboneError(
                        f"{_label(node, self.graph)} also feeds {_label(user, self.graph)} "
                        "outside a chain or residual block: from_backbone supports chains of "
                        "layers with residual additions only")


def _is_add(node: fx.Node) -> bool:
    return (node.op == "call_function" and node.target in ADDS) or (
        node.op == "call_method" and node.target in ("add", "add_", "__add__"))


def _ancestry(node: fx.Node) -> set[fx.Node]:
    """``node`` and every node it depends on."""
    seen, todo = set(), [node]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo.extend(current.all_input_nodes)
    return seen


def _flatten_dims(node: fx.Node) -> tuple[int, int]:
    args = list(node.args[1:]) + [None, None]
    start = node.kwargs.get("start_dim", args[0] if args[0] is not None else 0)
    end = node.kwargs.get("end_dim", args[1] if args[1] is not None else -1)
    return start, end


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _whole_windows(pool: nn.MaxPool2d | nn.AvgPool2d, in_shape: torch.Size, label: str) -> int:
    """The kernel of a pooling layer whose windows tile its input exactly, else an error."""
    kernel = _pair(pool.kernel_size)
    stride = _pair(pool.stride if pool.stride is not None else pool.kernel_size)
    dilation = _pair(getattr(pool, "dilation", 1))
    if kernel != stride:
        raise BackboneError(f"cannot convert {label}: kernel {kernel} with stride {stride} "
                            "makes overlapping (or gapped) windows; AdaPool/AvgPool need "
                            "non-overlapping windows (kernel == stride)")
    if _pair(pool.padding) != (0, 0) or dilation != (1, 1) or kernel[0] != kernel[1]:
        raise BackboneError(f"cannot convert {label}: pooling needs a square kernel without "
                            "padding or dilation")
    if in_shape[-1] % kernel[0] or in_shape[-2] % kernel[0]:
        raise BackboneError(f"cannot convert {label}: input {tuple(in_shape[-2:])} is not a "
                            f"multiple of the kernel {kernel[0]}, so the feedback cannot "
                            "restore its size")
    return kernel[0]


def _adaptive_window(in_shape: torch.Size, out_shape: torch.Size, label: str) -> int:
    (h, w), (oh, ow) = tuple(in_shape[-2:]), tuple(out_shape[-2:])
    if h != w or oh != ow or h % oh:
        raise BackboneError(f"cannot convert {label}: adaptive pooling {h}x{w} -> {oh}x{ow} is "
                            "not whole square windows")
    return h // oh


def _why_not(module: nn.Module) -> str:
    kind = type(module).__name__
    if isinstance(module, nn.MultiheadAttention) or "attention" in kind.lower():
        return (f"{kind}: attention has no tied generative feedback in CNN-F (the feedback is "
                "defined for conv, linear, ReLU and pooling layers)")
    if isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm):
        return (f"{kind}: only a BatchNorm2d right after a conv can be folded; norm=True gives "
                "the RMS norm + bias CNN-F uses")
    if kind in vars(nn.modules.activation):
        return (f"{kind}: CNN-F's latent variables are defined for ReLU only (AdaReLU); "
                "other nonlinearities have no feedback mask")
    return f"{kind} has no CNN-F counterpart"


def _label(node: fx.Node, graph: fx.GraphModule) -> str:
    if node.op == "call_module":
        return f"layer {node.target!r} ({type(graph.get_submodule(node.target)).__name__})"
    scope = list(node.meta.get("nn_module_stack", {}))
    where = f" in {scope[-1]!r}" if scope else ""
    return f"operation {node.name!r}{where}"


def _flat(layers: list[fnn.FeedbackModule]) -> list[nn.Module]:
    return [m for layer in layers for m in layer.modules()]


# made from a network by from_backbone, so rebuilt only; regions commit to the taps named
# after them (a CORnet-style backbone with blocks V1, V2, V4, IT)
register_architecture("backbone", None, rebuild=rebuild_backbone)
