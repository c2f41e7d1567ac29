/*
 * Training kernels for tfjs-backend-wasm, in WebAssembly SIMD, run in place on the backend's own heap: the module
 * imports the backend's WebAssembly.Memory and every pointer is a byte offset into it, so no tensor is copied in
 * or out. They replace passes that tfjs 4.22 runs as scalar loops (or that we ran in JS): max-pool gradient,
 * col2im scatter, ReLU gradient, bias-gradient sums and the transposed im2col of the filter gradient.
 *
 * The module must never touch memory it does not own: no globals, no static data, no shadow stack (the
 * backend's allocator owns the whole heap, its own stack included). build.sh checks the compiled module for
 * that; keep every temporary in locals and take scratch space from the caller (malloc'd by the backend).
 *
 * All tensors are float32, NHWC, dense; sizes are int (i32 in JS: a wasm32 heap holds under 2^30 floats). Build: bash tensor/backend/wasm-kernels/simd/build.sh
 */
#include <stdint.h>
#include <wasm_simd128.h>

typedef float f32;
#define EXPORT(name) __attribute__((export_name(#name)))

static void zero(f32 *p, int64_t n) {
  for (int64_t i = 0; i < n; i++) p[i] = 0;
}

/*
 * Gradient of a 2x2 stride-2 unpadded max pool. x: [n,h,w,c] (input), y, dy: [n,oh,ow,c]. dy goes to the first
 * element of each window (row-major) that equals its maximum, the cpu backend's tie rule (ties are common after
 * a ReLU); rows and columns no window covers (odd h or w) get zero.
 */
EXPORT(max_pool_grad_2x2)
void max_pool_grad_2x2(const f32 *x, const f32 *y, const f32 *dy, f32 *dx, int n, int h, int w, int c, int oh,
                       int ow) {
  const int64_t row = (int64_t)w * c;
  if (h != 2 * oh || w != 2 * ow) zero(dx, (int64_t)n * h * row);
  int64_t q = 0;
  for (int b = 0; b < n; b++) {
    for (int i = 0; i < oh; i++) {
      const int64_t r0 = ((int64_t)b * h + 2 * i) * row;
      for (int j = 0; j < ow; j++) {
        const int64_t p00 = r0 + 2 * (int64_t)j * c, p01 = p00 + c, p10 = p00 + row, p11 = p10 + c;
        int k = 0;
        for (; k + 4 <= c; k += 4, q += 4) {
          const v128_t m = wasm_v128_load(y + q), g = wasm_v128_load(dy + q);
          const v128_t a = wasm_f32x4_eq(wasm_v128_load(x + p00 + k), m);
          const v128_t b1 = wasm_v128_andnot(wasm_f32x4_eq(wasm_v128_load(x + p01 + k), m), a);
          const v128_t ab = wasm_v128_or(a, b1);
          const v128_t c1 = wasm_v128_andnot(wasm_f32x4_eq(wasm_v128_load(x + p10 + k), m), ab);
          wasm_v128_store(dx + p00 + k, wasm_v128_and(a, g));
          wasm_v128_store(dx + p01 + k, wasm_v128_and(b1, g));
          wasm_v128_store(dx + p10 + k, wasm_v128_and(c1, g));
          wasm_v128_store(dx + p11 + k, wasm_v128_andnot(g, wasm_v128_or(ab, c1)));
        }
        for (; k < c; k++, q++) {
          const f32 m = y[q], g = dy[q];
          const int a = x[p00 + k] == m, b1 = !a && x[p01 + k] == m, c1 = !a && !b1 && x[p10 + k] == m;
          dx[p00 + k] = a ? g : 0;
          dx[p01 + k] = b1 ? g : 0;
          dx[p10 + k] = c1 ? g : 0;
          dx[p11 + k] = (a || b1 || c1) ? 0 : g;
        }
      }
    }
  }
}

/*
 * col2im: dx[n,h,w,ci] = Σ over output positions of cols[n,oh,ow, kh,kw,ci] added into the kh x kw window each
 * row came from (stride sh,sw; the window starts top/left pixels before the output position times the stride).
 * The scatter half of the input gradient of a convolution whose product half, dy x Wᵀ, ran on XNNPACK.
 */
EXPORT(col2im)
void col2im(const f32 *cols, f32 *dx, int n, int h, int w, int ci, int kh, int kw, int oh, int ow, int sh, int sw,
            int top, int left) {
  zero(dx, (int64_t)n * h * w * ci);
  const int64_t k = (int64_t)kh * kw * ci;
  const f32 *src = cols;
  for (int b = 0; b < n; b++) {
    for (int oy = 0; oy < oh; oy++) {
      const int y0 = oy * sh - top;
      for (int ox = 0; ox < ow; ox++, src += k) {
        const int x0 = ox * sw - left;
        for (int i = 0; i < kh; i++) {
          const int iy = y0 + i;
          if (iy < 0 || iy >= h) continue;
          f32 *drow = dx + (((int64_t)b * h + iy) * w) * ci;
          for (int j = 0; j < kw; j++) {
            const int ix = x0 + j;
            if (ix < 0 || ix >= w) continue;
            f32 *d = drow + (int64_t)ix * ci;
            const f32 *s = src + ((int64_t)i * kw + j) * ci;
            int c = 0;
            for (; c + 4 <= ci; c += 4) {
              wasm_v128_store(d + c, wasm_f32x4_add(wasm_v128_load(d + c), wasm_v128_load(s + c)));
            }
            for (; c < ci; c++) d[c] += s[c];
          }
        }
      }
    }
  }
}

/*
 * ReLU gradient in one pass instead of step(x), a cast and a multiply, with tfjs's values exactly: dy · step(x),
 * where step(x) is 1 for x > 0, NaN for NaN and 0 otherwise. So dx = dy where x > 0, else dy · s with s = NaN
 * (x is NaN) or +0, which is NaN for a NaN or ±Inf dy and keeps the sign of dy's zero.
 */
EXPORT(relu_grad)
void relu_grad(const f32 *dy, const f32 *x, f32 *dx, int len) {
  const v128_t z = wasm_f32x4_splat(0);
  int64_t i = 0;
  for (; i + 4 <= len; i += 4) {
    const v128_t xv = wasm_v128_load(x + i);
    const v128_t dv = wasm_v128_load(dy + i);
    /* x != x is all ones (a NaN pattern) for a NaN x, else all zeros (+0). */
    const v128_t s = wasm_f32x4_ne(xv, xv);
    wasm_v128_store(dx + i, wasm_v128_bitselect(dv, wasm_f32x4_mul(dv, s), wasm_f32x4_gt(xv, z)));
  }
  for (; i < len; i++) dx[i] = x[i] > 0 ? dy[i] : dy[i] * (x[i] != x[i] ? __builtin_nanf("") : 0.0f);
}

/*
 * Sum of the rows of x [outer, inner] into out [inner], accumulated in float64 (acc: caller's scratch of inner
 * doubles), so a bias gradient over a large batch keeps float32 precision.
 */
EXPORT(sum_rows)
void sum_rows(const f32 *x, f32 *out, double *acc, int outer, int inner) {
  for (int64_t i = 0; i < inner; i++) acc[i] = 0;
  const f32 *p = x;
  for (int64_t r = 0; r < outer; r++, p += inner) {
    int64_t i = 0;
    for (; i + 4 <= inner; i += 4) {
      const v128_t v = wasm_v128_load(p + i);
      wasm_v128_store(acc + i, wasm_f64x2_add(wasm_v128_load(acc + i), wasm_f64x2_promote_low_f32x4(v)));
      wasm_v128_store(acc + i + 2,
                      wasm_f64x2_add(wasm_v128_load(acc + i + 2),
                                     wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(v, v, 2, 3, 0, 1))));
    }
    for (; i < inner; i++) acc[i] += p[i];
  }
  for (int64_t i = 0; i < inner; i++) out[i] = (f32)acc[i];
}

/*
 * Transposed im2col for the filter gradient: patches[(i·kw + j)·ci + c, p] = x[b, oy·sh + i − top, ox·sw + j −
 * left, c] (zero outside the image) for p = (b·oh + oy)·ow + ox, so that dW = patches x dy[p, co] is one MatMul
 * without transpose flags. Rows are written one (i, j) at a time, channels innermost in the read.
 */
EXPORT(im2col_t)
void im2col_t(const f32 *x, f32 *patches, int n, int h, int w, int ci, int kh, int kw, int oh, int ow, int sh,
              int sw, int top, int left) {
  const int64_t P = (int64_t)n * oh * ow;
  for (int i = 0; i < kh; i++) {
    for (int j = 0; j < kw; j++) {
      f32 *rows = patches + ((int64_t)i * kw + j) * ci * P;
      int64_t p = 0;
      for (int b = 0; b < n; b++) {
        for (int oy = 0; oy < oh; oy++) {
          const int iy = oy * sh + i - top;
          const int rowIn = iy >= 0 && iy < h;
          const f32 *xrow = x + ((int64_t)b * h + iy) * w * ci;
          for (int ox = 0; ox < ow; ox++, p++) {
            const int ix = ox * sw + j - left;
            if (!rowIn || ix < 0 || ix >= w) {
              for (int c = 0; c < ci; c++) rows[c * P + p] = 0;
            } else {
              const f32 *s = xrow + (int64_t)ix * ci;
              for (int c = 0; c < ci; c++) rows[c * P + p] = s[c];
            }
          }
        }
      }
    }
  }
}

/* out = max(a, b) or min(a, b) elementwise, same shapes; NaN in either gives NaN, as Math.max/min do. */
EXPORT(maximum)
void maximum(const f32 *a, const f32 *b, f32 *out, int len) {
  int i = 0;
  for (; i + 4 <= len; i += 4) wasm_v128_store(out + i, wasm_f32x4_max(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < len; i++) out[i] = wasm_f32x4_extract_lane(wasm_f32x4_max(wasm_f32x4_splat(a[i]), wasm_f32x4_splat(b[i])), 0);
}

EXPORT(minimum)
void minimum(const f32 *a, const f32 *b, f32 *out, int len) {
  int i = 0;
  for (; i + 4 <= len; i += 4) wasm_v128_store(out + i, wasm_f32x4_min(wasm_v128_load(a + i), wasm_v128_load(b + i)));
  for (; i < len; i++) out[i] = wasm_f32x4_extract_lane(wasm_f32x4_min(wasm_f32x4_splat(a[i]), wasm_f32x4_splat(b[i])), 0);
}

/* out[r, :] = x[r, :] + bias, x: [rows, c] (a bias added over the channel axis of NHWC activations). */
EXPORT(add_bias)
void add_bias(const f32 *x, const f32 *bias, f32 *out, int rows, int c) {
  for (int r = 0; r < rows; r++, x += c, out += c) {
    int k = 0;
    for (; k + 4 <= c; k += 4) wasm_v128_store(out + k, wasm_f32x4_add(wasm_v128_load(x + k), wasm_v128_load(bias + k)));
    for (; k < c; k++) out[k] = x[k] + bias[k];
  }
}

/*
 * Filter gradient for few input channels (first layers): dw[i,j,c,:] = Σ_p x[b, oy·sh + i − top, ox·sw + j − left,
 * c] · dy[p,:], accumulated per image in `part` (caller's scratch of kh·kw·ci·co floats) and then added into dw, so
 * no sum runs over more than one image's positions in float32. With kh·kw·ci as small as 9 the GEMM form is a
 * product with 9 rows whose [positions, co] weight matrix XNNPACK repacks on every call (dy is new each step).
 * co a multiple of 4.
 */
EXPORT(conv2d_few_channels_filter_grad)
void conv2d_few_channels_filter_grad(const f32 *x, const f32 *dy, f32 *dw, f32 *part, int n, int h, int w, int ci,
                                     int kh, int kw, int oh, int ow, int co, int sh, int sw, int top, int left) {
  const int64_t size = (int64_t)kh * kw * ci * co;
  zero(dw, size);
  const f32 *g = dy;
  for (int b = 0; b < n; b++) {
    zero(part, size);
    for (int oy = 0; oy < oh; oy++) {
      for (int ox = 0; ox < ow; ox++, g += co) {
        for (int i = 0; i < kh; i++) {
          const int iy = oy * sh + i - top;
          if (iy < 0 || iy >= h) continue;
          for (int j = 0; j < kw; j++) {
            const int ix = ox * sw + j - left;
            if (ix < 0 || ix >= w) continue;
            const f32 *px = x + (((int64_t)b * h + iy) * w + ix) * ci;
            f32 *row = part + ((int64_t)i * kw + j) * ci * co;
            for (int c = 0; c < ci; c++, row += co) {
              const v128_t s = wasm_f32x4_splat(px[c]);
              for (int o = 0; o < co; o += 4) {
                wasm_v128_store(row + o, wasm_f32x4_add(wasm_v128_load(row + o), wasm_f32x4_mul(s, wasm_v128_load(g + o))));
              }
            }
          }
        }
      }
    }
    for (int64_t k = 0; k < size; k += 4) wasm_v128_store(dw + k, wasm_f32x4_add(wasm_v128_load(dw + k), wasm_v128_load(part + k)));
  }
}
