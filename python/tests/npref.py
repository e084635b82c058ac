"""NumPy reference of batch-norm folding, cross-layer scaling and high-bias fold, written from the formulas (independent of the library).

Every layout is mapped to a dense logical view D[Cout, Cin, K] (entries a
grouped layer does not have are zero), the formula is applied there, and the
result is mapped back.
"""

import numpy as np


def to_dense(w, transposed, groups):
    w = np.asarray(w, dtype=np.float64)
    a, b = w.shape[:2]
    k = int(np.prod(w.shape[2:])) if w.ndim > 2 else 1
    flat = w.reshape(a, b, k)
    if transposed:
        cin, cout = a, b * groups
    else:
        cout, cin = a, b * groups
    d = np.zeros((cout, cin, k))
    per = a // groups
    for i in range(a):
        g = i // per
        for j in range(b):
            if transposed:
                d[g * b + j, i] = flat[i, j]
            else:
                d[i, g * b + j] = flat[i, j]
    return d


def from_dense(d, shape, transposed, groups):
    a, b = shape[:2]
    out = np.zeros((a, b, d.shape[2]))
    per = a // groups
    for i in range(a):
        g = i // per
        for j in range(b):
            out[i, j] = d[g * b + j, i] if transposed else d[i, g * b + j]
    return out.reshape(shape).astype(np.float32)


def bn_scale(gamma, var, eps):
    return np.asarray(gamma, np.float64) / np.sqrt(np.asarray(var, np.float64) + eps)


def fold_after(w, b, bn, transposed=False, groups=1):
    gamma, beta, mu, var, eps = bn
    s = bn_scale(gamma, var, eps)
    d = to_dense(w, transposed, groups) * s[:, None, None]
    b = np.zeros(d.shape[0]) if b is None else np.asarray(b, np.float64)
    return from_dense(d, w.shape, transposed, groups), (beta + (b - mu) * s).astype(np.float32)


def fold_before(w, b, bn):
    gamma, beta, mu, var, eps = bn
    s = bn_scale(gamma, var, eps)
    d = to_dense(w, False, 1)
    b = np.zeros(d.shape[0]) if b is None else np.asarray(b, np.float64)
    new_b = b + d.sum(2) @ (beta - mu * s)
    return from_dense(d * s[None, :, None], w.shape, False, 1), new_b.astype(np.float32)


def _sanitize(s):
    s = np.where(np.isfinite(s) & (s != 0), s, 1.0)
    return s


def cls_pair(l1, l2):
    """l = (w, b, transposed, groups). Returns (w1, b1, w2, S)."""
    d1, d2 = to_dense(l1[0], l1[2], l1[3]), to_dense(l2[0], l2[2], l2[3])
    r1 = np.abs(d1).max(axis=(1, 2))
    c2 = np.abs(d2).max(axis=(0, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = _sanitize(r1 / np.sqrt(r1 * c2))
    w1 = from_dense(d1 / s[:, None, None], l1[0].shape, l1[2], l1[3])
    b1 = None if l1[1] is None else (l1[1] / s).astype(np.float32)
    w2 = from_dense(d2 * s[None, :, None], l2[0].shape, l2[2], l2[3])
    return w1, b1, w2, s.astype(np.float32)


def cls_triplet(l1, dw, l3):
    d1, ddw, d3 = (to_dense(x[0], x[2], x[3]) for x in (l1, dw, l3))
    r1 = np.abs(d1).max(axis=(1, 2))
    rdw = np.abs(ddw).max(axis=(1, 2))
    c3 = np.abs(d3).max(axis=(0, 2))
    m = np.cbrt(r1 * rdw * c3)
    with np.errstate(divide="ignore", invalid="ignore"):
        s12, s23 = _sanitize(r1 / m), _sanitize(m / c3)
    w1 = from_dense(d1 / s12[:, None, None], l1[0].shape, l1[2], l1[3])
    b1 = None if l1[1] is None else (l1[1] / s12).astype(np.float32)
    wdw = from_dense(ddw * (s12 / s23)[:, None, None], dw[0].shape, dw[2], dw[3])
    bdw = None if dw[1] is None else (dw[1] / s23).astype(np.float32)
    w3 = from_dense(d3 * s23[None, :, None], l3[0].shape, l3[2], l3[3])
    return w1, b1, wdw, bdw, w3, s12.astype(np.float32), s23.astype(np.float32)


def high_bias_fold(b1, w2, b2, transposed2, groups2, gamma, beta, scale, relu):
    beta_s = np.asarray(beta, np.float64) / scale
    gamma_s = np.asarray(gamma, np.float64) / scale
    c = np.maximum(0, beta_s - 3 * np.abs(gamma_s)) if relu else beta_s
    d2 = to_dense(w2, transposed2, groups2)
    return (b1 - c).astype(np.float32), (b2 + d2.sum(2) @ c).astype(np.float32)
