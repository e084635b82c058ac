// The depthwise 3×3 convolution of MobileNet-like networks (see
// aimet_kernels.h), one output plane at a time: the input plane is copied
// into a zero-bordered padded plane, then VL outputs at a time run with no
// bounds checks, three kernel rows of three fused multiply-adds, bias,
// residual and clamp applied before the store.
//
// Two layouts. Stride 1 with one column of padding each side ("same", all
// of MobileNet's stride-1 convs) runs *flat*: the padded plane is the input
// plane with the vertical padding around it, output q = oy·w + ox reads
// taps at q + ky·w + kx, and the taps that wrap into the neighbouring row
// are masked; vectors run across row ends, so small planes (7×7, 14×14)
// waste no lanes. Everything else runs *by rows* of a plane padded on every
// side (row width rounded up to VL), stride 2 taking the even and odd lanes
// of two-vector loads (two output rows per vector when they are at most
// VL/2 wide).
//
// The same padded rows serve the dense stride-2 conv over a few input
// channels at the end of the file (a network's first conv).
#include "vectors.h"

// a·b + c fuses into one multiply-add where the instruction set has it.
#pragma clang fp contract(fast)

typedef float vf8 __attribute__((vector_size(VL / 2 * 4)));  // half a vector, one output row of a pair

/// Whether the flat kernel runs the geometry: stride 1 and "same" horizontal
/// padding (one column each side), so output pixel `q = oy·ow + ox` reads
/// `plane[q + ky·w + kx]` of the input plane copied `pad_top` rows and one
/// float down a zeroed buffer, except where a row wraps (masked).
static int is_flat(const aimetk_conv2d *k) {
    return k->stride_h == 1 && k->stride_w == 1 && k->pad_left == 1 && k->in_w == k->out_w;
}

/// Flat kernel: floats of one padded plane (the rows a window touches, one
/// float before, and a vector of slack after the last vector's reads).
static long flat_size(const aimetk_conv2d *k) { return (k->out_h + 2) * k->in_w + 2 + 2 * VL; }

/// Row kernel: columns of a padded row, every column the vector loads touch
/// for outputs rounded up to VL: `ow + 2` for stride 1, `2·ow + 2` for stride 2.
static long padded_cols(const aimetk_conv2d *k) {
    long ow = (k->out_w + VL - 1) / VL * VL;
    return k->stride_w == 1 ? ow + 2 : 2 * ow + 2;
}

/// Floats of one padded plane (the kernel uses two, see `depthwise_planes`).
static long plane_size(const aimetk_conv2d *k) {
    return is_flat(k) ? flat_size(k) : ((k->out_h - 1) * k->stride_h + 3) * padded_cols(k);
}

long aimetk_depthwise3x3_scratch(const aimetk_conv2d *k) { return 2 * plane_size(k); }

/// The input plane into its padded plane. Only the positions that hold input
/// are written: the rest, zeroed once per call, stays zero for every plane.
INLINE void fill(const aimetk_conv2d *k, const float *x, float *padded) {
    if (is_flat(k)) {
        copy_floats(padded + k->pad_top * k->in_w + 1, x, k->in_h * k->in_w);
        return;
    }
    // padded[r][c] = x[r − pad_top][c − pad_left] where that is inside the input and the plane.
    const long cols = padded_cols(k), rows = (k->out_h - 1) * k->stride_h + 3, pl = k->pad_left, pt = k->pad_top;
    const long n = (cols < pl + k->in_w ? cols : pl + k->in_w) - pl;
    const long last = rows < pt + k->in_h ? rows : pt + k->in_h;
    for (long r = pt; n > 0 && r < last; r++) copy_floats(padded + r * cols + pl, x + (r - pt) * k->in_w, n);
}

/// The nine weights as vectors.
typedef struct { vf w0, w1, w2, w3, w4, w5, w6, w7, w8; } weights;

INLINE weights splat_weights(const float *w) {
    return (weights){splat(w[0]), splat(w[1]), splat(w[2]), splat(w[3]), splat(w[4]),
                     splat(w[5]), splat(w[6]), splat(w[7]), splat(w[8])};
}

/// Flat kernel, one plane: VL consecutive outputs at a time across rows; the
/// left taps of column 0 and the right taps of the last column read the
/// neighbouring row and are masked off (`col`: each lane's output column).
/// `end`: where the stores turn lane by lane (see `finish`); `first_col`: the
/// columns of lanes 0 ..< VL (`j mod ow`).
INLINE void flat_plane(const aimetk_conv2d *k, const float *padded, weights w, vf b, const float *residual,
                       float *y, long end, vi first_col) {
    const long ow = k->out_w, count = k->out_h * ow;
    const vf lo = splat(k->lo), hi = splat(k->hi);
    const vi width = (vi){0} + (int)ow, last = width - 1, step = (vi){0} + (int)(VL % ow);
    vi col = first_col;
    for (long q = 0; q < count; q += VL) {
        const float *r0 = padded + q, *r1 = r0 + ow, *r2 = r1 + ow;
        vf left = w.w0 * load(r0) + w.w3 * load(r1) + w.w6 * load(r2);
        vf centre = w.w1 * load(r0 + 1) + w.w4 * load(r1 + 1) + w.w7 * load(r2 + 1);
        vf right = w.w2 * load(r0 + 2) + w.w5 * load(r1 + 2) + w.w8 * load(r2 + 2);
        vf v = (b + centre) + (floats(bits(left) & ~(col == 0)) + floats(bits(right) & ~(col == last)));
        finish(v, y, residual, q, end, lo, hi);
        col = col + step;
        col = col - (width & (col >= width));
    }
}

/// The three horizontal taps of outputs `ox ..< ox + VL` from one padded row:
/// `row[s·(ox + j) + kx]` for `kx < 3` (stride 2: the even and odd lanes of two-vector loads).
INLINE void taps(const float *row, long ox, long stride, vf *t0, vf *t1, vf *t2) {
    if (stride == 1) {
        *t0 = load(row + ox);
        *t1 = load(row + ox + 1);
        *t2 = load(row + ox + 2);
    } else {
        vf2 a = load2(row + 2 * ox), b = load2(row + 2 * ox + 2);
        *t0 = evens(a);
        *t1 = odds(a);
        *t2 = evens(b);
    }
}

/// Row kernel, one plane: each output row VL outputs at a time from three
/// padded rows; `stride` (horizontal) is a constant at each call, so the taps
/// specialize. A vector running past its row's end stores its extra lanes on
/// the next rows, written (correctly) later; `end` as in `finish`.
INLINE void row_plane(const aimetk_conv2d *k, const float *padded, weights w, vf b, const float *residual,
                      float *y, long end, long stride) {
    const long ow = k->out_w, cols = padded_cols(k);
    const vf lo = splat(k->lo), hi = splat(k->hi);
    for (long oy = 0; oy < k->out_h; oy++) {
        const float *r0 = padded + oy * k->stride_h * cols, *r1 = r0 + cols, *r2 = r1 + cols;
        for (long ox = 0; ox < ow; ox += VL) {
            vf a0, a1, a2, b0, b1, b2, c0, c1, c2;
            taps(r0, ox, stride, &a0, &a1, &a2);
            taps(r1, ox, stride, &b0, &b1, &b2);
            taps(r2, ox, stride, &c0, &c1, &c2);
            // Three independent chains, one per kernel row.
            vf s0 = w.w0 * a0 + w.w1 * a1 + w.w2 * a2;
            vf s1 = w.w3 * b0 + w.w4 * b1 + w.w5 * b2;
            vf s2 = w.w6 * c0 + w.w7 * c1 + w.w8 * c2;
            // Near `end`, only this row's lanes are stored.
            long q = oy * ow + ox;
            finish((b + s0) + (s1 + s2), y, residual, q, q + VL <= end ? end : q + (ow - ox), lo, hi);
        }
    }
}

/// Stride 2, output rows at most VL / 2 wide: two output rows per vector
/// (lanes 0 ..< VL/2 row oy, the others row oy + 1), the even and odd
/// columns of both padded rows split out of one two-register shuffle each.
INLINE vf evens_of(vf a, vf b) {
    return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
INLINE vf odds_of(vf a, vf b) {
    return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

/// Half a vector of row `q` (a multiple of `ow`): VL/2 floats, or the row's
/// `ow` lanes where VL/2 would pass `end` (as in `finish`).
INLINE vf8 load_half(const float *p, long q, long end, long ow) {
    vf8 x = {0};
    if (q + VL / 2 <= end) memcpy(&x, p + q, sizeof x);
    else memcpy(&x, p + q, (size_t)ow * sizeof(float));
    return x;
}

INLINE void store_half(float *p, vf8 x, long q, long end, long ow) {
    if (q + VL / 2 <= end) memcpy(p + q, &x, sizeof x);
    else memcpy(p + q, &x, (size_t)ow * sizeof(float));
}

/// One plane, two rows at a time (see `evens_of`); the padded rows as for
/// `row_plane` with stride 2. Row oy + 1's store follows row oy's, whose
/// extra lanes it overwrites.
INLINE void paired_plane(const aimetk_conv2d *k, const float *padded, weights w, vf b, const float *residual,
                         float *y, long end) {
    const long ow = k->out_w, oh = k->out_h, cols = padded_cols(k), pair = k->stride_h * cols;
    const vf lo = splat(k->lo), hi = splat(k->hi);
    for (long oy = 0; oy < oh; oy += 2) {
        const int both = oy + 1 < oh;
        const float *a0 = padded + oy * pair, *a1 = a0 + cols, *a2 = a1 + cols;
        const float *b0 = both ? a0 + pair : a0, *b1 = b0 + cols, *b2 = b1 + cols;
        vf s0 = w.w0 * evens_of(load(a0), load(b0)) + w.w1 * odds_of(load(a0), load(b0)) +
                w.w2 * evens_of(load(a0 + 2), load(b0 + 2));
        vf s1 = w.w3 * evens_of(load(a1), load(b1)) + w.w4 * odds_of(load(a1), load(b1)) +
                w.w5 * evens_of(load(a1 + 2), load(b1 + 2));
        vf s2 = w.w6 * evens_of(load(a2), load(b2)) + w.w7 * odds_of(load(a2), load(b2)) +
                w.w8 * evens_of(load(a2 + 2), load(b2 + 2));
        vf v = (b + s0) + (s1 + s2);
        const long q = oy * ow;
        if (residual) {
            vf8 r0 = load_half(residual, q, end, ow), r1 = both ? load_half(residual, q + ow, end, ow) : r0;
            v = v + __builtin_shufflevector(r0, r1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        }
        v = clamp(v, lo, hi);
        store_half(y, __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7), q, end, ow);
        if (both) store_half(y, __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15), q + ow, end, ow);
    }
}

/// Planes [begin, end). Two padded planes take turns: plane p + 1 is copied
/// before plane p is computed, so its stores have reached the cache before
/// its loads (a load spanning stores still in flight waits for them).
INLINE void depthwise_planes(const aimetk_conv2d *k, long begin, long end) {
    memset(k->scratch, 0, (size_t)aimetk_depthwise3x3_scratch(k) * sizeof(float));
    const long size = plane_size(k), out_plane = k->out_h * k->out_w;
    const int flat = is_flat(k);
    const vi first_col = first_columns(k->out_w);
    plane_cursor at = plane_at(k, begin);
    if (begin < end) fill(k, at.x, k->scratch);
    for (long p = begin; p < end; p++) {
        const plane_cursor next = plane_after(k, at);
        if (p + 1 < end) fill(k, next.x, k->scratch + (p + 1 - begin) % 2 * size);
        const float *padded = k->scratch + (p - begin) % 2 * size;
        const long o = at.o;
        const weights w = splat_weights(k->w + 9 * o);
        const vf b = splat(k->bias[o]);
        const float *res = k->residual ? k->residual + p * out_plane : 0;
        float *y = k->y + p * out_plane;
        // Stores may run into the next planes of the call, not past them.
        const long stop = (end - p) * out_plane;
        if (flat) flat_plane(k, padded, w, b, res, y, stop, first_col);
        else if (k->stride_w == 1) row_plane(k, padded, w, b, res, y, stop, 1);
        else if (k->out_w <= VL / 2) paired_plane(k, padded, w, b, res, y, stop);
        else row_plane(k, padded, w, b, res, y, stop, 2);
        at = next;
    }
}

AIMETK_BUILDS(depthwise_planes, (const aimetk_conv2d *k, long begin, long end), depthwise_planes(k, begin, end))

void aimetk_depthwise3x3_planes(const aimetk_conv2d *k, long begin, long end, aimetk_isa isa) {
    AIMETK_CALL(depthwise_planes, isa, (k, begin, end));
}

// MARK: Dense 3×3, stride 2, few input channels
//
// A network's first conv (RGB in) as an im2col GEMM has K = 27 and runs
// poorly; directly, each input channel's plane is padded once (as for the
// row kernel), then for each VL outputs of a row and each block of output
// channels the taps are loaded once and feed every channel of the block
// (their accumulators stay in registers).

enum { BLOCK = 8 };  // output channels per block

long aimetk_dense3x3s2_scratch(const aimetk_conv2d *k) { return k->channels * plane_size(k); }

INLINE void dense_image(const aimetk_conv2d *k, long image, long o_begin, long o_end) {
    const long channels = k->channels, size = plane_size(k), cols = padded_cols(k);
    const long ow = k->out_w, out_plane = k->out_h * ow, in_plane = k->in_h * k->in_w;
    memset(k->scratch, 0, (size_t)aimetk_dense3x3s2_scratch(k) * sizeof(float));
    for (long c = 0; c < channels; c++) fill(k, k->x + (image * channels + c) * in_plane, k->scratch + c * size);
    const vf lo = splat(k->lo), hi = splat(k->hi);
    // Output rows outermost: the input rows they read stay in L1 for every block.
    for (long oy = 0; oy < k->out_h; oy++) {
        for (long ox = 0; ox < ow; ox += VL) {
            for (long o0 = o_begin; o0 < o_end; o0 += BLOCK) {
                const long count = o_end - o0 < BLOCK ? o_end - o0 : BLOCK;
                vf acc[BLOCK];
                for (int j = 0; j < BLOCK; j++) acc[j] = splat(j < count ? k->bias[o0 + j] : 0);
                for (long c = 0; c < channels; c++) {
                    const float *row = k->scratch + c * size + oy * 2 * cols;
                    for (int ky = 0; ky < 3; ky++) {
                        vf t0, t1, t2;
                        taps(row + ky * cols, ox, 2, &t0, &t1, &t2);
                        for (int j = 0; j < BLOCK; j++) {
                            if (j >= count) break;
                            const float *w = k->w + ((o0 + j) * channels + c) * 9 + ky * 3;
                            acc[j] = acc[j] + w[0] * t0 + w[1] * t1 + w[2] * t2;
                        }
                    }
                }
                // Past the plane's end only this row's lanes are stored (the next plane is written).
                const long q = oy * ow + ox, end = q + VL <= out_plane ? out_plane : q + (ow - ox);
                for (int j = 0; j < BLOCK && j < count; j++) {
                    const long plane = (image * k->out_channels + o0 + j) * out_plane;
                    finish(acc[j], k->y + plane, k->residual ? k->residual + plane : 0, q, end, lo, hi);
                }
            }
        }
    }
}

AIMETK_BUILDS(dense_image, (const aimetk_conv2d *k, long image, long o_begin, long o_end),
              dense_image(k, image, o_begin, o_end))

void aimetk_dense3x3s2(const aimetk_conv2d *k, long image, long o_begin, long o_end, aimetk_isa isa) {
    AIMETK_CALL(dense_image, isa, (k, image, o_begin, o_end));
}
