// ibjax's CPU routines for the tiny matrix products of a dense layer, as XLA FFI handlers.
//
// Built on first use by ibjax/native_products.py (a C++17 compiler, -O3 -march=native) and
// called from the compiled JAX program as custom calls. Each handler takes operands with any
// number of leading batch dimensions (vmapped seeds), the same in every operand, and loops over
// them; per batch element, with features-major activations (the batch of rows is the
// contiguous axis, as in ibjax.model):
//
//   ibjax_dense_forward          w [k, m], x [k, n]  ->  y [m, n],  y = w^T x
//   ibjax_dense_backward_input   w [k, m], d [m, n]  ->  dx [k, n], dx = w d
//   ibjax_dense_backward_kernel  x [k, n], d [m, n]  ->  g [k, m],  g = x d^T
//
// all float32, row-major. The summation order is fixed by this code (it does not depend on
// the number of batch elements), so a seed gets bitwise the same products alone or in a batch.
// Products are register-blocked on 8-float vectors (GCC/Clang vector extensions, compiled to
// whatever the target CPU has): for the paper network's shapes (k, m <= 12, n = 512) they run
// ~2x faster than XLA's CPU dot, whose batched small products are dispatch- and
// layout-bound.

#include <cstdint>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

typedef float v8 __attribute__((vector_size(32), aligned(4)));

inline v8 Load(const float* p) { return *reinterpret_cast<const v8*>(p); }
inline void Store(float* p, v8 v) { *reinterpret_cast<v8*>(p) = v; }
inline v8 Splat(float a) { return v8{a, a, a, a, a, a, a, a}; }
inline float LaneSum(v8 v) {
  float s = 0.0f;
  for (int l = 0; l < 8; ++l) s += v[l];
  return s;
}

// y[j, b] = sum_i a[i * sk + j * sm] * x[i, b] for j in [j0, j0 + JB) and b in [b0, b0 + 8 NV).
template <int JB, int NV>
inline void LinearBlock(int64_t k, int64_t n, const float* a, int64_t sk, int64_t sm, int64_t j0,
                        int64_t b0, const float* x, float* y) {
  v8 acc[JB][NV];
  for (int j = 0; j < JB; ++j)
    for (int v = 0; v < NV; ++v) acc[j][v] = Splat(0.0f);
  for (int64_t i = 0; i < k; ++i) {
    v8 xv[NV];
    for (int v = 0; v < NV; ++v) xv[v] = Load(x + i * n + b0 + 8 * v);
    for (int j = 0; j < JB; ++j) {
      const v8 w = Splat(a[i * sk + (j0 + j) * sm]);
      for (int v = 0; v < NV; ++v) acc[j][v] += w * xv[v];
    }
  }
  for (int j = 0; j < JB; ++j)
    for (int v = 0; v < NV; ++v) Store(y + (j0 + j) * n + b0 + 8 * v, acc[j][v]);
}

template <int NV>
inline void LinearColumns(int64_t k, int64_t m, int64_t n, const float* a, int64_t sk, int64_t sm,
                          int64_t b0, const float* x, float* y) {
  int64_t j = 0;
  for (; j + 3 <= m; j += 3) LinearBlock<3, NV>(k, n, a, sk, sm, j, b0, x, y);
  if (m - j == 2) LinearBlock<2, NV>(k, n, a, sk, sm, j, b0, x, y);
  if (m - j == 1) LinearBlock<1, NV>(k, n, a, sk, sm, j, b0, x, y);
}

// y [m, n] = A x with A[j, i] = a[i * sk + j * sm], x [k, n].
void Linear(int64_t k, int64_t m, int64_t n, const float* a, int64_t sk, int64_t sm,
            const float* x, float* y) {
  int64_t b = 0;
  for (; b + 32 <= n; b += 32) LinearColumns<4>(k, m, n, a, sk, sm, b, x, y);
  for (; b + 8 <= n; b += 8) LinearColumns<1>(k, m, n, a, sk, sm, b, x, y);
  for (; b < n; ++b) {
    for (int64_t j = 0; j < m; ++j) {
      float s = 0.0f;
      for (int64_t i = 0; i < k; ++i) s += a[i * sk + j * sm] * x[i * n + b];
      y[j * n + b] = s;
    }
  }
}

// g[i, o] = sum_b x[i, b] d[o, b] for i in [i0, i0 + IB), o in [o0, o0 + OB).
template <int IB, int OB>
inline void OuterBlock(int64_t m, int64_t n, const float* x, const float* d, int64_t i0,
                       int64_t o0, float* g) {
  v8 acc[IB][OB];
  for (int i = 0; i < IB; ++i)
    for (int o = 0; o < OB; ++o) acc[i][o] = Splat(0.0f);
  const int64_t n8 = n - n % 8;
  for (int64_t b = 0; b < n8; b += 8) {
    v8 dv[OB];
    for (int o = 0; o < OB; ++o) dv[o] = Load(d + (o0 + o) * n + b);
    for (int i = 0; i < IB; ++i) {
      const v8 xv = Load(x + (i0 + i) * n + b);
      for (int o = 0; o < OB; ++o) acc[i][o] += xv * dv[o];
    }
  }
  for (int i = 0; i < IB; ++i) {
    for (int o = 0; o < OB; ++o) {
      float s = LaneSum(acc[i][o]);
      for (int64_t b = n8; b < n; ++b) s += x[(i0 + i) * n + b] * d[(o0 + o) * n + b];
      g[(i0 + i) * m + o0 + o] = s;
    }
  }
}

template <int IB>
inline void OuterRows(int64_t m, int64_t n, const float* x, const float* d, int64_t i0,
                      float* g) {
  int64_t o = 0;
  for (; o + 4 <= m; o += 4) OuterBlock<IB, 4>(m, n, x, d, i0, o, g);
  if (m - o == 3) OuterBlock<IB, 3>(m, n, x, d, i0, o, g);
  if (m - o == 2) OuterBlock<IB, 2>(m, n, x, d, i0, o, g);
  if (m - o == 1) OuterBlock<IB, 1>(m, n, x, d, i0, o, g);
}

// g [k, m] = x d^T with x [k, n], d [m, n].
void Outer(int64_t k, int64_t m, int64_t n, const float* x, const float* d, float* g) {
  int64_t i = 0;
  for (; i + 3 <= k; i += 3) OuterRows<3>(m, n, x, d, i, g);
  if (k - i == 2) OuterRows<2>(m, n, x, d, i, g);
  if (k - i == 1) OuterRows<1>(m, n, x, d, i, g);
}

using F32 = ffi::Buffer<ffi::F32>;
using F32Result = ffi::ResultBuffer<ffi::F32>;

// The last two dimensions of operands a [..., a0, a1] and b [..., b0, b1], and their batch size
// (the product of the leading dimensions, which must agree), after checking that dimension
// a_shared of a equals dimension b_shared of b (the one the product contracts or keeps).
struct Shapes {
  int64_t batch, a0, a1, b0, b1;
};

ffi::Error GetShapes(const F32& a, const F32& b, int a_shared, int b_shared, const char* usage,
                     Shapes* s) {
  auto ad = a.dimensions();
  auto bd = b.dimensions();
  const size_t rank = ad.size();
  if (rank < 2 || bd.size() != rank) return ffi::Error::InvalidArgument(usage);
  s->batch = 1;
  for (size_t i = 0; i + 2 < rank; ++i) {
    if (ad[i] != bd[i]) return ffi::Error::InvalidArgument(usage);
    s->batch *= ad[i];
  }
  s->a0 = ad[rank - 2];
  s->a1 = ad[rank - 1];
  s->b0 = bd[rank - 2];
  s->b1 = bd[rank - 1];
  if ((a_shared ? s->a1 : s->a0) != (b_shared ? s->b1 : s->b0))
    return ffi::Error::InvalidArgument(usage);
  return ffi::Error::Success();
}

// Forward (y [m, n] = w^T x, x [k, n]) or backward to the input (y [k, n] = w d, d [m, n]), for
// w [k, m]: the same routine, reading w transposed or not.
template <bool kForward>
ffi::Error DenseLinear(F32 w, F32 x, F32Result y) {
  const char* usage = kForward ? "ibjax_dense_forward: w [k, m], x [k, n]"
                               : "ibjax_dense_backward_input: w [k, m], d [m, n]";
  Shapes s;  // w [k, m] = [a0, a1], x = [b0, b1]
  if (auto e = GetShapes(w, x, kForward ? 0 : 1, 0, usage, &s); e.failure()) return e;
  const int64_t k = s.a0, m = s.a1, n = s.b1;
  const int64_t in = kForward ? k : m, out = kForward ? m : k;
  for (int64_t i = 0; i < s.batch; ++i)
    Linear(in, out, n, w.typed_data() + i * k * m, kForward ? m : 1, kForward ? 1 : m,
           x.typed_data() + i * in * n, y->typed_data() + i * out * n);
  return ffi::Error::Success();
}

ffi::Error DenseBackwardKernel(F32 x, F32 d, F32Result g) {
  Shapes s;  // x [k, n], d [m, n]
  if (auto e = GetShapes(x, d, 1, 1, "ibjax_dense_backward_kernel: x [k, n], d [m, n]", &s);
      e.failure())
    return e;
  const int64_t k = s.a0, m = s.b0, n = s.a1;
  for (int64_t i = 0; i < s.batch; ++i)
    Outer(k, m, n, x.typed_data() + i * k * n, d.typed_data() + i * m * n,
          g->typed_data() + i * k * m);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(IbjaxDenseForward, DenseLinear<true>,
                              ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<F32>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(IbjaxDenseBackwardInput, DenseLinear<false>,
                              ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<F32>());
XLA_FFI_DEFINE_HANDLER_SYMBOL(IbjaxDenseBackwardKernel, DenseBackwardKernel,
                              ffi::Ffi::Bind().Arg<F32>().Arg<F32>().Ret<F32>());
