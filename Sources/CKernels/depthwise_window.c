// Depthwise convolution with any window and dilation (the 5×5 of
// EfficientNet and MobileNetV3, ConvNeXt's 7×7, dilated 3×3 of segmentation
// heads), one output plane at a time, in the two layouts of the 3×3 kernel
// (depthwise.c):
//
// - *flat*, stride 1 with the output as wide as the input ("same"
//   padding): the input plane is copied `pad_top` rows and `pad_left`
//   floats down a zeroed buffer, so output q = oy·w + ox reads tap (ky, kx)
//   at `q + ky·dh·w + kx·dw`; a tap whose column falls outside the row reads
//   the neighbouring row and is masked off. Vectors run across row ends, so
//   small planes (7×7) waste no lanes.
// - *by rows*, horizontal stride 1 or 2, any vertical stride and padding:
//   the plane padded on every side (row width rounded up to whole vectors),
//   stride 2 taking the even lanes of two-vector loads.
//
// Each vector of VL outputs sums its taps column by column (kernel rows
// inner, fused multiply-adds), then bias, residual and clamp are applied
// before the store. Common windows (3, 5, 7 square) get their loops unrolled.
#include "vectors.h"

// a·b + c fuses into one multiply-add where the instruction set has it.
#pragma clang fp contract(fast)

static int window_is_flat(const aimetk_conv2d *k) {
    return k->stride_h == 1 && k->stride_w == 1 && k->out_w == k->in_w;
}

/// Row layout: columns of a padded row, every column the vector loads touch
/// for outputs rounded up to VL.
static long window_cols(const aimetk_conv2d *k) {
    const long ow = (k->out_w + VL - 1) / VL * VL, reach = (k->kernel_w - 1) * k->dilation_w;
    return k->stride_w == 1 ? ow + reach : 2 * ow + reach;
}

/// Floats of one padded plane: flat, the rows the windows touch plus the
/// slack of the last vector's reads; by rows, the padded rows.
static long window_plane_size(const aimetk_conv2d *k) {
    const long rows = (k->out_h - 1) * k->stride_h + (k->kernel_h - 1) * k->dilation_h + 1;
    if (window_is_flat(k)) return rows * k->in_w + (k->kernel_w - 1) * k->dilation_w + 2 * VL;
    return rows * window_cols(k);
}

long aimetk_depthwise_scratch(const aimetk_conv2d *k) { return 2 * window_plane_size(k); }

/// The input plane into its padded plane; only positions that hold input are
/// written (the rest, zeroed once per call, stays zero), and only those
/// inside the plane (rows past the last window's reach are never read).
INLINE void window_fill(const aimetk_conv2d *k, const float *x, float *padded) {
    const long rows = (k->out_h - 1) * k->stride_h + (k->kernel_h - 1) * k->dilation_h + 1;
    const long pt = k->pad_top, pl = k->pad_left, last = rows < pt + k->in_h ? rows : pt + k->in_h;
    if (window_is_flat(k)) {
        if (last > pt) copy_floats(padded + pt * k->in_w + pl, x, (last - pt) * k->in_w);
        return;
    }
    const long cols = window_cols(k), n = (cols < pl + k->in_w ? cols : pl + k->in_w) - pl;
    for (long r = pt; n > 0 && r < last; r++) copy_floats(padded + r * cols + pl, x + (r - pt) * k->in_w, n);
}

/// Flat layout, one plane (`col`: each lane's output column, stepped by VL
/// mod ow; `end`: where the stores turn lane by lane, see `finish`).
INLINE void window_flat_plane(const aimetk_conv2d *k, const float *padded, const float *w, vf b,
                              const float *residual, float *y, long end, vi first_col, long kh, long kw) {
    const long ow = k->out_w, count = k->out_h * ow, dy = k->dilation_h * ow, dx = k->dilation_w;
    const vf lo = splat(k->lo), hi = splat(k->hi);
    const vi width = (vi){0} + (int)ow, step = (vi){0} + (int)(VL % ow);
    vi col = first_col;
    for (long q = 0; q < count; q += VL) {
        vf v = b;
        for (long kx = 0; kx < kw; kx++) {
            const float *p = padded + q + kx * dx;
            vf s = splat(w[kx]) * load(p);
            for (long ky = 1; ky < kh; ky++) s = s + splat(w[ky * kw + kx]) * load(p + ky * dy);
            const long offset = kx * dx - k->pad_left;
            if (offset != 0) {
                const vi at = col + (int)offset;
                s = floats(bits(s) & ((at >= 0) & (at < width)));
            }
            v = v + s;
        }
        finish(v, y, residual, q, end, lo, hi);
        col = col + step;
        col = col - (width & (col >= width));
    }
}

/// Tap `offset` of outputs `ox ..< ox + VL` from one padded row: `row[s·(ox + j) + offset]`.
INLINE vf window_tap(const float *row, long ox, long offset, long stride) {
    return stride == 1 ? load(row + ox + offset) : evens(load2(row + 2 * ox + offset));
}

/// Row layout, one plane; `stride` (horizontal) is a constant at each call.
/// A vector running past its row's end stores its extra lanes on the next
/// rows, written (correctly) later; `end` as in `finish`.
INLINE void window_row_plane(const aimetk_conv2d *k, const float *padded, const float *w, vf b,
                             const float *residual, float *y, long end, long stride, long kh, long kw) {
    const long ow = k->out_w, cols = window_cols(k), dy = k->dilation_h * cols, dx = k->dilation_w;
    const vf lo = splat(k->lo), hi = splat(k->hi);
    for (long oy = 0; oy < k->out_h; oy++) {
        const float *top = padded + oy * k->stride_h * cols;
        for (long ox = 0; ox < ow; ox += VL) {
            vf v = b;
            for (long ky = 0; ky < kh; ky++) {
                const float *row = top + ky * dy;
                vf s = splat(w[ky * kw]) * window_tap(row, ox, 0, stride);
                for (long kx = 1; kx < kw; kx++) s = s + splat(w[ky * kw + kx]) * window_tap(row, ox, kx * dx, stride);
                v = v + s;
            }
            const long q = oy * ow + ox;
            finish(v, y, residual, q, q + VL <= end ? end : q + (ow - ox), lo, hi);
        }
    }
}

/// Planes [begin, end) for a `kh × kw` window (constants where the caller
/// can make them so). Two padded planes take turns, as in depthwise.c.
INLINE void window_planes(const aimetk_conv2d *k, long begin, long end, long kh, long kw) {
    memset(k->scratch, 0, (size_t)aimetk_depthwise_scratch(k) * sizeof(float));
    const long size = window_plane_size(k), out_plane = k->out_h * k->out_w;
    const int flat = window_is_flat(k);
    const vi first_col = first_columns(k->out_w);
    plane_cursor at = plane_at(k, begin);
    if (begin < end) window_fill(k, at.x, k->scratch);
    for (long p = begin; p < end; p++) {
        const plane_cursor next = plane_after(k, at);
        if (p + 1 < end) window_fill(k, next.x, k->scratch + (p + 1 - begin) % 2 * size);
        const float *padded = k->scratch + (p - begin) % 2 * size;
        const long o = at.o;
        const float *w = k->w + kh * kw * o;
        const vf b = splat(k->bias[o]);
        const float *res = k->residual ? k->residual + p * out_plane : 0;
        float *y = k->y + p * out_plane;
        const long stop = (end - p) * out_plane;  // stores may run into the call's next planes, not past them
        if (flat) window_flat_plane(k, padded, w, b, res, y, stop, first_col, kh, kw);
        else if (k->stride_w == 1) window_row_plane(k, padded, w, b, res, y, stop, 1, kh, kw);
        else window_row_plane(k, padded, w, b, res, y, stop, 2, kh, kw);
        at = next;
    }
}

INLINE void depthwise_window(const aimetk_conv2d *k, long begin, long end) {
    const long kh = k->kernel_h, kw = k->kernel_w;
    if (kh == 3 && kw == 3) window_planes(k, begin, end, 3, 3);
    else if (kh == 5 && kw == 5) window_planes(k, begin, end, 5, 5);
    else if (kh == 7 && kw == 7) window_planes(k, begin, end, 7, 7);
    else window_planes(k, begin, end, kh, kw);
}

AIMETK_BUILDS(depthwise_window, (const aimetk_conv2d *k, long begin, long end), depthwise_window(k, begin, end))

void aimetk_depthwise_planes(const aimetk_conv2d *k, long begin, long end, aimetk_isa isa) {
    AIMETK_CALL(depthwise_window, isa, (k, begin, end));
}
