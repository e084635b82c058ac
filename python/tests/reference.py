"""A NumPy eval-mode forward for aimetcle.nn layers: the test oracle.

aimetcle.nn deliberately leaves conv / linear / batch-norm / pooling forward
to the native runtime. Tests still need to run whole models (does BN folding
or CLE keep the function?), so this module computes every layer type in
plain NumPy, written for clarity over speed, with torch's exact semantics
(padding modes, 'same' padding, dilation, groups, output_padding, ceil_mode,
count_include_pad). Every op accumulates in float64 and returns float32.

``test_nn.py`` checks the convolutions against direct loop implementations,
and the transposed convolutions against their scatter-add definition and as
the adjoint of the convolution.

Use::

    with reference.numpy_forward():
        y = model.eval()(x)

Training-mode batch norm and dropout raise: an oracle that silently used
running statistics where torch would use batch statistics would be wrong.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional, Sequence, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from aimetcle import nn

_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _out(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32)


def _pair(v: Any) -> Tuple[int, int]:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ----------------------------------------------------------------------------
# Convolutions
# ----------------------------------------------------------------------------

def _conv_pads(padding: Any, kernel: Sequence[int], dilation: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
    """(before, after) per spatial axis; 'same' puts the odd extra element after, as torch."""
    if padding == "valid":
        return tuple((0, 0) for _ in kernel)
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    return tuple((p, p) for p in padding)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> np.ndarray:
    """torch.nn.functional.conv2d (plus padding_mode): x [N,C,H,W], weight [Cout, C/groups, kH, kW]."""
    x, w = _f64(x), _f64(weight)
    stride, dilation = _pair(stride), _pair(dilation)
    padding = padding if isinstance(padding, str) else _pair(padding)
    n, c, _, _ = x.shape
    cout, cg, kh, kw = w.shape
    if c != cg * groups or cout % groups:
        raise ValueError(f"conv2d: input {x.shape} does not fit weight {w.shape} with groups={groups}")
    pads = _conv_pads(padding, (kh, kw), dilation)
    xp = np.pad(x, ((0, 0), (0, 0)) + pads, mode=_PAD_MODES[padding_mode])
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if xp.shape[2] < ekh or xp.shape[3] < ekw:
        raise ValueError(f"conv2d: padded input {xp.shape[2:]} is smaller than the dilated kernel ({ekh}, {ekw})")
    # windows [N, C, OH, OW, kH, kW]: every (dilated) kernel tap of every output position
    win = sliding_window_view(xp, (ekh, ekw), axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    oh, ow = win.shape[2], win.shape[3]
    win = win.reshape(n, groups, cg, oh, ow, kh, kw)
    wg = w.reshape(groups, cout // groups, cg, kh, kw)
    if groups == 1:
        out = np.tensordot(win[:, 0], wg[0], axes=([1, 4, 5], [1, 2, 3]))  # [N, OH, OW, Cout]
        out = out.transpose(0, 3, 1, 2)
    else:
        out = np.einsum("ngcyxij,gocij->ngoyx", win, wg).reshape(n, cout, oh, ow)
    if bias is not None:
        out = out + _f64(bias).reshape(1, -1, 1, 1)
    return _out(out)


def conv1d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1,
           groups: int = 1, padding_mode: str = "zeros") -> np.ndarray:
    """conv2d on a height-1 image: x [N,C,L], weight [Cout, C/groups, K]."""
    one = lambda v: v[0] if isinstance(v, (tuple, list)) else v  # noqa: E731
    pad = padding if isinstance(padding, str) else (0, one(padding))
    y = conv2d(_f64(x)[:, :, None, :], _f64(weight)[:, :, None, :], bias, (1, one(stride)), pad,
               (1, one(dilation)), groups, padding_mode)
    return y[:, :, 0, :]


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> np.ndarray:
    """torch.nn.functional.conv_transpose2d: x [N,Cin,H,W], weight [Cin, Cout/groups, kH, kW].

    Each input pixel scatters ``x * w`` to outputs ``y*stride + i*dilation - padding``;
    done here one kernel tap at a time over the uncropped output, then cropped.
    """
    x, w = _f64(x), _f64(weight)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    (oph, opw), (dh, dw) = _pair(output_padding), _pair(dilation)
    n, cin, h, wd = x.shape
    cin_w, cog, kh, kw = w.shape
    if cin != cin_w or cin % groups:
        raise ValueError(f"conv_transpose2d: input {x.shape} does not fit weight {w.shape} with groups={groups}")
    cig = cin // groups
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    if full_h - 2 * ph < 1 or full_w - 2 * pw < 1:
        raise ValueError("conv_transpose2d: padding leaves an empty output")
    full = np.zeros((n, groups, cog, full_h, full_w))
    xg = x.reshape(n, groups, cig, h, wd)
    wg = w.reshape(groups, cig, cog, kh, kw)
    for i in range(kh):
        for j in range(kw):
            tap = np.einsum("ngchw,gco->ngohw", xg, wg[:, :, :, i, j])
            full[:, :, :, i * dh:i * dh + (h - 1) * sh + 1:sh, j * dw:j * dw + (wd - 1) * sw + 1:sw] += tap
    out = full.reshape(n, groups * cog, full_h, full_w)[:, :, ph:full_h - ph, pw:full_w - pw]
    if bias is not None:
        out = out + _f64(bias).reshape(1, -1, 1, 1)
    return _out(out)


def conv_transpose1d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> np.ndarray:
    one = lambda v: v[0] if isinstance(v, (tuple, list)) else v  # noqa: E731
    y = conv_transpose2d(_f64(x)[:, :, None, :], _f64(weight)[:, :, None, :], bias, (1, one(stride)),
                         (0, one(padding)), (0, one(output_padding)), groups, (1, one(dilation)))
    return y[:, :, 0, :]


# ----------------------------------------------------------------------------
# Other layers
# ----------------------------------------------------------------------------

def linear(x: Any, weight: Any, bias: Any = None) -> np.ndarray:
    x, w = _f64(x), _f64(weight)
    if x.shape[-1] != w.shape[1]:
        raise ValueError(f"linear: input {x.shape} does not fit weight {w.shape}")
    y = x @ w.T
    return _out(y if bias is None else y + _f64(bias))


def batch_norm(x: Any, running_mean: Any, running_var: Any, weight: Any = None, bias: Any = None,
               eps: float = 1e-5) -> np.ndarray:
    """Normalise over axis 1; with no running statistics, the batch's own (biased) statistics."""
    x = _f64(x)
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = x.mean(axis=axes) if running_mean is None else _f64(running_mean)
    var = x.var(axis=axes) if running_var is None else _f64(running_var)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * _f64(weight).reshape(shape)
    if bias is not None:
        y = y + _f64(bias).reshape(shape)
    return _out(y)


def relu(x: Any) -> np.ndarray:
    return _out(np.maximum(_f64(x), 0.0))


def relu6(x: Any) -> np.ndarray:
    return _out(np.minimum(np.maximum(_f64(x), 0.0), 6.0))


def leaky_relu(x: Any, negative_slope: float = 0.01) -> np.ndarray:
    x = _f64(x)
    return _out(np.where(x > 0, x, negative_slope * x))


def prelu(x: Any, weight: Any) -> np.ndarray:
    x, w = _f64(x), _f64(weight).ravel()
    if w.size > 1:
        w = w.reshape((1, -1) + (1,) * (x.ndim - 2))
    return _out(np.where(x > 0, x, w * x))


def sigmoid(x: Any) -> np.ndarray:
    return _out(1.0 / (1.0 + np.exp(-_f64(x))))


def _pool_size(length: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """torch's pooling output size, including its rule that the last window must start inside."""
    span = length + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


def max_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1,
               ceil_mode: bool = False) -> np.ndarray:
    x = _f64(x)
    (kh, kw), (ph, pw), (dh, dw) = _pair(kernel_size), _pair(padding), _pair(dilation)
    sh, sw = _pair(kernel_size if stride is None else stride)
    h, w = x.shape[-2:]
    oh = _pool_size(h, kh, sh, ph, dh, ceil_mode)
    ow = _pool_size(w, kw, sw, pw, dw, ceil_mode)
    need_h, need_w = (oh - 1) * sh + dh * (kh - 1) + 1, (ow - 1) * sw + dw * (kw - 1) + 1
    pads = ((0, 0),) * (x.ndim - 2) + ((ph, max(0, need_h - h - ph)), (pw, max(0, need_w - w - pw)))
    xp = np.pad(x, pads, constant_values=-np.inf)
    out = np.full(x.shape[:-2] + (oh, ow), -np.inf)
    for i in range(kh):
        for j in range(kw):
            tap = xp[..., i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            out = np.maximum(out, tap)
    return _out(out)


def avg_pool2d(x: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False,
               count_include_pad: bool = True, divisor_override: Optional[int] = None) -> np.ndarray:
    x = _f64(x)
    (kh, kw), (ph, pw) = _pair(kernel_size), _pair(padding)
    sh, sw = _pair(kernel_size if stride is None else stride)
    h, w = x.shape[-2:]
    oh = _pool_size(h, kh, sh, ph, 1, ceil_mode)
    ow = _pool_size(w, kw, sw, pw, 1, ceil_mode)
    need_h, need_w = (oh - 1) * sh + kh, (ow - 1) * sw + kw
    pads = ((0, 0),) * (x.ndim - 2) + ((ph, max(0, need_h - h - ph)), (pw, max(0, need_w - w - pw)))
    xp = np.pad(x, pads)
    total = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(kh):
        for j in range(kw):
            total += xp[..., i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw]

    def divisors(length: int, out: int, k: int, s: int, p: int) -> Tuple[np.ndarray, np.ndarray]:
        start = np.arange(out) * s - p
        end = np.minimum(start + k, length + p)  # the window, padding included
        inside = np.minimum(end, length) - np.maximum(start, 0)
        return end - start, inside

    with_pad_h, inside_h = divisors(h, oh, kh, sh, ph)
    with_pad_w, inside_w = divisors(w, ow, kw, sw, pw)
    if divisor_override:
        divisor = np.full((oh, ow), float(divisor_override))
    elif count_include_pad:
        divisor = np.outer(with_pad_h, with_pad_w).astype(np.float64)
    else:
        divisor = np.outer(inside_h, inside_w).astype(np.float64)
    return _out(total / divisor)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> np.ndarray:
    x = _f64(x)
    h, w = x.shape[-2:]
    oh, ow = _pair(output_size)
    oh, ow = h if oh is None else oh, w if ow is None else ow
    out = np.empty(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        h0, h1 = (i * h) // oh, -(-((i + 1) * h) // oh)
        for j in range(ow):
            w0, w1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            out[..., i, j] = x[..., h0:h1, w0:w1].mean(axis=(-2, -1))
    return _out(out)


# ----------------------------------------------------------------------------
# Module forwards and the context manager
# ----------------------------------------------------------------------------

def _conv_forward(m: Any, x: Any) -> np.ndarray:
    fn = conv1d if isinstance(m, nn.Conv1d) else conv2d
    return fn(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups, m.padding_mode)


def _conv_transpose_forward(m: Any, x: Any) -> np.ndarray:
    fn = conv_transpose1d if isinstance(m, nn.ConvTranspose1d) else conv_transpose2d
    return fn(x, m.weight, m.bias, m.stride, m.padding, m.output_padding, m.groups, m.dilation)


def _batch_norm_forward(m: Any, x: Any) -> np.ndarray:
    x = np.asarray(x)
    wanted = (2, 3) if isinstance(m, nn.BatchNorm1d) else (4,)
    if x.ndim not in wanted:
        raise ValueError(f"{type(m).__name__}: expected {' or '.join(f'{d}D' for d in wanted)} input "
                         f"(got {x.ndim}D input)")
    if x.shape[1] != m.num_features:
        raise ValueError(f"{type(m).__name__}({m.num_features}) got {x.shape[1]} channels")
    if m.training and m.running_mean is not None:
        raise NotImplementedError("the reference forward is eval-mode: call model.eval() first")
    return batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, m.eps)


def _dropout_forward(m: Any, x: Any) -> Any:
    if m.training and m.p > 0:
        raise NotImplementedError("the reference forward is eval-mode: call model.eval() first")
    return x


def _flatten_forward(m: Any, x: Any) -> np.ndarray:
    x = np.asarray(x)
    s, e = m.start_dim % x.ndim, m.end_dim % x.ndim
    return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1:])


FORWARDS = {
    nn.Conv1d: _conv_forward,
    nn.Conv2d: _conv_forward,
    nn.ConvTranspose1d: _conv_transpose_forward,
    nn.ConvTranspose2d: _conv_transpose_forward,
    nn.Linear: lambda m, x: linear(x, m.weight, m.bias),
    nn.BatchNorm1d: _batch_norm_forward,
    nn.BatchNorm2d: _batch_norm_forward,
    nn.ReLU: lambda m, x: relu(x),
    nn.ReLU6: lambda m, x: relu6(x),
    nn.PReLU: lambda m, x: prelu(x, m.weight),
    nn.LeakyReLU: lambda m, x: leaky_relu(x, m.negative_slope),
    nn.Sigmoid: lambda m, x: sigmoid(x),
    nn.Identity: lambda m, x: x,
    nn.Dropout: _dropout_forward,
    nn.Flatten: _flatten_forward,
    nn.MaxPool2d: lambda m, x: max_pool2d(x, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode),
    nn.AvgPool2d: lambda m, x: avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                          m.count_include_pad, m.divisor_override),
    nn.AdaptiveAvgPool2d: lambda m, x: adaptive_avg_pool2d(x, m.output_size),
}

_MISSING = object()


@contextlib.contextmanager
def numpy_forward() -> Iterator[None]:
    """Within the block, every nn leaf layer's ``forward`` is the NumPy reference above."""
    saved = {cls: cls.__dict__.get("forward", _MISSING) for cls in FORWARDS}
    dispatch = nn._runtime.enabled
    try:
        nn._runtime.enabled = False
        for cls, fn in FORWARDS.items():
            cls.forward = fn
        yield
    finally:
        nn._runtime.enabled = dispatch
        for cls, old in saved.items():
            if old is _MISSING:
                del cls.forward
            else:
                cls.forward = old


def run(model: Any, x: Any) -> np.ndarray:
    """``model(x)`` under ``numpy_forward()``."""
    with numpy_forward():
        return model(x)
