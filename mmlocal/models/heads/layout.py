"""Memory layout of local heads on the CPU: cost, not maths.

oneDNN's CPU convolutions and the bilinear resize run natively in
channels-last, NCHW convolutions convert internally. Measured here (one
thread, batch 128, forward + backward; ``/proc/cpuinfo``: AMD EPYC): a
decoder's 64->12 3x3 convolution at 32x32 took 351 ms in NCHW and 191 ms in
channels-last, its 12->3 one 71 ms and 29 ms, a 64->64 one at 8x8 the same
in both; the NCHW bilinear resize makes 3 full copies of its output per
call. The reconstruction decoders use it; the classifiers psi gain nothing
(their first convolution has stride 2: 1c2f on a 16x32x32 map 62 against
68 ms, on smaller maps 10-20 % slower). BatchNorm stays on NCHW tensors: its channels-last CPU
backward sums with about 100x the rounding error (1.5e-5 against 1.5e-7
relative to float64) and leaves the zero-by-construction gradient of a
pre-BN bias 40x noisier. Other devices keep their layout (not measured
there yet).
"""
import torch
import torch.nn as nn


def cpu_layout(x: torch.Tensor) -> torch.Tensor:
    """Channels-last on the CPU, unchanged elsewhere."""
    if x.device.type == 'cpu' and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def conv_bn(block: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """A conv-BN-ReLU block: the convolution in ``x``'s layout, BN on an NCHW
    tensor."""
    conv, bn, relu = block
    return relu(bn(conv(x).contiguous()))
