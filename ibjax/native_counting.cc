// ibjax's CPU routine for the exact counting behind the discrete MI estimators, as an XLA FFI
// handler (the same integers as ibjax/mi/_entropy.py's sorts, segment sums and table lookups).
//
// Built with native_products.cc into one library by ibjax/native.py and called from the
// compiled JAX program as a custom call (ibjax/native_counting.py):
//
//   ibjax_discrete_mi_limbs  digits [..., W, N] int32, labels [..., N] int32
//                            -> limbs_t [..., Lt] int32, limbs_ty [..., Lty] int32
//
// attributes: radix, num_classes (digits lie in [0, radix), labels in [0, num_classes)), and
// two fixed-point tables, table_t [(N + 1) * Lt] and table_ty [(N + 1) * Lty] (row c: the
// limbs of -(c/N) log2(c/N), see ibjax.mi._entropy.fixed_point_table). For each batch
// element the rows T (one digit per column) are grouped with their labels Y:
//
//   limbs_t  = sum over the groups of equal rows T of table_t[size]
//   limbs_ty = sum over T groups of table_ty[size] + sum over classes of table_ty[size]
//              - sum over the groups of equal (T, Y) of table_ty[size]
//
// in int32 arithmetic with wraparound, as the XLA program sums them (the tables are built so
// that nothing wraps). ibjax.mi._entropy turns the limbs into bits in float32.
//
// Leading (batch) dimensions: every operand has as many as the results; each is the results'
// size or 1 (vmap's "expand_dims": an operand not batched along an axis has size 1 there).
// Values outside their range are masked into it (garbage in, garbage out, never out of
// bounds); the Python side passes only in-range values.
//
//   ibjax_column_ranks       values [..., N] float32 -> ranks [..., N] int32
//
// attribute dense (0 or 1): along the last axis, each value's number of smaller values
// (dense = 0: equal-mass binning's rank) or of smaller distinct values (dense = 1: an exact
// relabelling into [0, N)), in the order of JAX's sorts: -0 equals 0, every NaN is equal to
// every other and above +inf.
//
//   ibjax_knn_counts         t [..., d, N] float32, y [..., N] int32, x [..., D, N] float32
//                            -> counts [..., 4, N] int32
//
// attribute k: the neighbour counts of ibjax/mi/_knn.py's kNN estimators, per row i, with
// max-norm distances dt_ij = max_f |t_fi - t_fj| (dx likewise; a row's distance to itself is
// +inf): the class size (rows j, i included, with y_j = y_i); the rows with dt_ij <= the k-th
// smallest dt_ij among the same class (+inf if there are fewer than k); and, with D > 0, the
// rows with dx_ij, and with dt_ij, < the k-th smallest max(dx_ij, dt_ij) (0 when D = 0).
// The k-th smallest counts ties separately. Operands as above (batch sizes or 1); values
// must be finite (the Python side measures only finite layers).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <tuple>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

int BitLength(uint64_t v) {
  int bits = 0;
  while (v) {
    ++bits;
    v >>= 1;
  }
  return bits;
}

// Offsets (in elements) of each batch element's block in an operand whose leading dimensions
// are `dims` (each 1 or the batch's size in `batch`), blocks of `block` elements.
ffi::Error BatchOffsets(ffi::Span<const int64_t> dims, const std::vector<int64_t>& batch,
                        int64_t block, std::vector<int64_t>* offsets) {
  const size_t rank = batch.size();
  std::vector<int64_t> stride(rank, 0);
  int64_t step = block;
  for (size_t i = rank; i-- > 0;) {
    if (dims[i] != batch[i] && dims[i] != 1)
      return ffi::Error::InvalidArgument(
          "ibjax: an operand's batch dimension is neither the results' nor 1");
    stride[i] = dims[i] == 1 ? 0 : step;
    step *= dims[i];
  }
  int64_t total = 1;
  for (int64_t b : batch) total *= b;
  offsets->assign(total, 0);
  std::vector<int64_t> index(rank, 0);
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t offset = 0;
    for (size_t i = 0; i < rank; ++i) offset += index[i] * stride[i];
    (*offsets)[flat] = offset;
    for (size_t i = rank; i-- > 0;) {  // next multi-index, last dimension fastest
      if (++index[i] < batch[i]) break;
      index[i] = 0;
    }
  }
  return ffi::Error::Success();
}

// Sorts keys whose set bits all lie below bit `bits`: least-significant-digit radix sort, 11
// bits a pass (a pass is skipped when every key has the same digit there); std::sort for
// short arrays. `tmp` is scratch space of the same length.
void SortKeys(std::vector<uint64_t>& keys, std::vector<uint64_t>& tmp, int bits) {
  const int64_t n = static_cast<int64_t>(keys.size());
  if (n < 256) {
    std::sort(keys.begin(), keys.end());
    return;
  }
  constexpr int kBits = 11, kBuckets = 1 << kBits;
  std::vector<uint32_t> counts(kBuckets);
  for (int shift = 0; shift < bits; shift += kBits) {
    std::fill(counts.begin(), counts.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++counts[(keys[i] >> shift) & (kBuckets - 1)];
    if (counts[(keys[0] >> shift) & (kBuckets - 1)] == static_cast<uint32_t>(n)) continue;
    uint32_t start = 0;
    for (int b = 0; b < kBuckets; ++b) {
      const uint32_t count = counts[b];
      counts[b] = start;
      start += count;
    }
    for (int64_t i = 0; i < n; ++i) tmp[counts[(keys[i] >> shift) & (kBuckets - 1)]++] = keys[i];
    keys.swap(tmp);
  }
}

void AddRow(const int32_t* table, int64_t size, int limbs, uint32_t sign, uint32_t* sums) {
  for (int l = 0; l < limbs; ++l)
    sums[l] += sign * static_cast<uint32_t>(table[size * limbs + l]);
}

// One batch element: the limbs of H(T) (table_t) and of H(T) + H(Y) - H(T, Y) (table_ty).
class Counter {
 public:
  Counter(int64_t width, int64_t n, int64_t radix, int64_t num_classes)
      : width_(width), n_(n), radix_bits_(BitLength(static_cast<uint64_t>(radix - 1))),
        label_bits_(BitLength(static_cast<uint64_t>(num_classes - 1))),
        num_classes_(num_classes), order_(n), labels_(n), class_sizes_(num_classes) {
    radix_mask_ = radix_bits_ == 0 ? 0 : (~uint64_t{0} >> (64 - radix_bits_));
    label_mask_ = label_bits_ == 0 ? 0 : (~uint64_t{0} >> (64 - label_bits_));
    Layout(radix_bits_);
    keys_.resize(n);
    keys_tmp_.resize(n);
    row_words_.resize(n * std::max<int64_t>(words_, 1));  // the most words any data needs
  }

  void Count(const int32_t* digits, const int32_t* labels, ffi::Span<const int32_t> table_t,
             int limbs_t, ffi::Span<const int32_t> table_ty, int limbs_ty, int32_t* out_t,
             int32_t* out_ty) {
    std::vector<uint32_t> sum_t(limbs_t, 0), sum_ty(limbs_ty, 0);
    std::fill(class_sizes_.begin(), class_sizes_.end(), 0);
    // Pack with as many bits per digit as this element's largest digit needs (binning-width
    // passes radix N, but a neuron has few distinct bins): rows are equal exactly when their
    // packed keys are, whatever the bits, and short keys sort faster.
    uint64_t largest = 0;
    for (int64_t j = 0; j < width_ * n_; ++j)
      largest = std::max(largest, static_cast<uint64_t>(static_cast<uint32_t>(digits[j])) &
                                      radix_mask_);
    Layout(BitLength(largest));
    for (int64_t i = 0; i < n_; ++i) {
      labels_[i] = static_cast<uint64_t>(static_cast<uint32_t>(labels[i])) & label_mask_;
      if (labels_[i] < static_cast<uint64_t>(num_classes_)) ++class_sizes_[labels_[i]];
    }
    if (one_key_) {
      for (int64_t i = 0; i < n_; ++i) {
        uint64_t key = 0;
        for (int64_t w = 0; w < width_; ++w)
          key = (key << digit_bits_) |
                (static_cast<uint64_t>(static_cast<uint32_t>(digits[w * n_ + i])) & digit_mask_);
        keys_[i] = label_bits_ == 0 ? key : (key << label_bits_) | labels_[i];
      }
      SortKeys(keys_, keys_tmp_, static_cast<int>(width_ * digit_bits_ + label_bits_));
      const int shift = label_bits_;
      Runs([&](int64_t a, int64_t b) { return (keys_[a] >> shift) == (keys_[b] >> shift); },
           [&](int64_t a, int64_t b) { return keys_[a] == keys_[b]; }, table_t, limbs_t,
           table_ty, limbs_ty, sum_t.data(), sum_ty.data());
    } else {
      const int64_t k = std::max<int64_t>(words_, 1);
      std::fill(row_words_.begin(), row_words_.end(), 0);
      for (int64_t w = 0; w < width_; ++w) {
        const int64_t word = w / per_word_;
        for (int64_t i = 0; i < n_; ++i) {
          uint64_t& slot = row_words_[i * k + word];
          slot = (slot << digit_bits_) |
                 (static_cast<uint64_t>(static_cast<uint32_t>(digits[w * n_ + i])) & digit_mask_);
        }
      }
      std::iota(order_.begin(), order_.end(), 0);
      const uint64_t* rows = row_words_.data();
      const uint64_t* lab = labels_.data();
      std::sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) {
        for (int64_t j = 0; j < k; ++j)
          if (rows[a * k + j] != rows[b * k + j]) return rows[a * k + j] < rows[b * k + j];
        return lab[a] < lab[b];
      });
      auto same_row = [&](int64_t a, int64_t b) {
        const int64_t ra = order_[a], rb = order_[b];
        for (int64_t j = 0; j < k; ++j)
          if (rows[ra * k + j] != rows[rb * k + j]) return false;
        return true;
      };
      Runs(same_row,
           [&](int64_t a, int64_t b) { return same_row(a, b) && lab[order_[a]] == lab[order_[b]]; },
           table_t, limbs_t, table_ty, limbs_ty, sum_t.data(), sum_ty.data());
    }
    for (int64_t c = 0; c < num_classes_; ++c)
      AddRow(table_ty.begin(), class_sizes_[c], limbs_ty, 1u, sum_ty.data());
    for (int l = 0; l < limbs_t; ++l) out_t[l] = static_cast<int32_t>(sum_t[l]);
    for (int l = 0; l < limbs_ty; ++l) out_ty[l] = static_cast<int32_t>(sum_ty[l]);
  }

 private:
  // Walks the sorted rows: runs of equal T add their size's limbs (table_t to sum_t, table_ty
  // to sum_ty), runs of equal (T, Y) subtract theirs from sum_ty.
  template <typename SameRow, typename SameRowLabel>
  void Runs(SameRow same_row, SameRowLabel same_row_label, ffi::Span<const int32_t> table_t,
            int limbs_t, ffi::Span<const int32_t> table_ty, int limbs_ty, uint32_t* sum_t,
            uint32_t* sum_ty) {
    int64_t row_start = 0, pair_start = 0;
    for (int64_t i = 1; i <= n_; ++i) {
      const bool row_ends = i == n_ || !same_row(i - 1, i);
      const bool pair_ends = row_ends || !same_row_label(i - 1, i);
      if (pair_ends) {
        AddRow(table_ty.begin(), i - pair_start, limbs_ty, ~0u, sum_ty);  // -1 in uint32
        pair_start = i;
      }
      if (row_ends) {
        AddRow(table_t.begin(), i - row_start, limbs_t, 1u, sum_t);
        AddRow(table_ty.begin(), i - row_start, limbs_ty, 1u, sum_ty);
        row_start = i;
      }
    }
  }

  // Digits of digit_bits bits each: per_word_ to a 64-bit word, words_ words to a row, and
  // whether a row and its label fit in one key.
  void Layout(int digit_bits) {
    digit_bits_ = digit_bits;
    digit_mask_ = digit_bits_ == 0 ? 0 : (~uint64_t{0} >> (64 - digit_bits_));
    per_word_ = digit_bits_ == 0 ? width_ + 1 : 64 / digit_bits_;
    words_ = width_ == 0 ? 0 : (width_ + per_word_ - 1) / per_word_;
    one_key_ = width_ * digit_bits_ + label_bits_ <= 64;
  }

  int64_t width_, n_;
  int radix_bits_, digit_bits_ = 0, label_bits_;
  int64_t num_classes_;
  uint64_t radix_mask_ = 0, digit_mask_ = 0, label_mask_ = 0;
  int64_t per_word_ = 1, words_ = 0;
  bool one_key_ = true;
  std::vector<int64_t> order_;
  std::vector<uint64_t> labels_, keys_, keys_tmp_, row_words_;
  std::vector<int64_t> class_sizes_;
};

ffi::Error DiscreteMiLimbs(ffi::Buffer<ffi::S32> digits, ffi::Buffer<ffi::S32> labels,
                           ffi::Result<ffi::Buffer<ffi::S32>> out_t,
                           ffi::Result<ffi::Buffer<ffi::S32>> out_ty, int64_t radix,
                           int64_t num_classes, ffi::Span<const int32_t> table_t,
                           ffi::Span<const int32_t> table_ty) {
  auto dd = digits.dimensions();
  auto ld = labels.dimensions();
  auto td = out_t->dimensions();
  auto tyd = out_ty->dimensions();
  const size_t rank = td.size() - 1;  // batch dimensions
  if (dd.size() != rank + 2 || ld.size() != rank + 1 || tyd.size() != rank + 1)
    return ffi::Error::InvalidArgument(
        "ibjax_discrete_mi_limbs: digits [..., W, N], labels [..., N], results [..., L]");
  const int64_t width = dd[rank], n = dd[rank + 1];
  const int64_t limbs_t = td[rank], limbs_ty = tyd[rank];
  if (ld[rank] != n || n < 1 || radix < 1 || num_classes < 1 ||
      static_cast<int64_t>(table_t.size()) != (n + 1) * limbs_t ||
      static_cast<int64_t>(table_ty.size()) != (n + 1) * limbs_ty)
    return ffi::Error::InvalidArgument(
        "ibjax_discrete_mi_limbs: labels, tables or attributes do not match the digits");
  std::vector<int64_t> batch(rank);
  for (size_t i = 0; i < rank; ++i) {
    batch[i] = td[i];
    if (tyd[i] != td[i])
      return ffi::Error::InvalidArgument("ibjax_discrete_mi_limbs: results' batch differs");
  }
  std::vector<int64_t> digit_at, label_at;
  ffi::Error err = BatchOffsets(dd, batch, width * n, &digit_at);
  if (err.failure()) return err;
  err = BatchOffsets(ld, batch, n, &label_at);
  if (err.failure()) return err;
  Counter counter(width, n, radix, num_classes);
  for (size_t b = 0; b < digit_at.size(); ++b)
    counter.Count(digits.typed_data() + digit_at[b], labels.typed_data() + label_at[b],
                  table_t, static_cast<int>(limbs_t), table_ty, static_cast<int>(limbs_ty),
                  out_t->typed_data() + b * limbs_t, out_ty->typed_data() + b * limbs_ty);
  return ffi::Error::Success();
}

// A float's position in JAX's sort order as an unsigned integer (-0 as 0, every NaN as the
// largest key): a < b in that order exactly when SortKey(a) < SortKey(b).
uint32_t SortKey(float x) {
  if (x == 0.0f) x = 0.0f;
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if (std::isnan(x)) return ~uint32_t{0};
  return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
}

// Ranks of one row of N values at a time; the buffers are reused from row to row.
class Ranker {
 public:
  explicit Ranker(int64_t n) : n_(n), keys_(n), order_(n), keys_tmp_(n), order_tmp_(n) {}

  void Rank(const float* values, bool dense, int32_t* ranks) {
    for (int64_t i = 0; i < n_; ++i) {
      keys_[i] = SortKey(values[i]);
      order_[i] = static_cast<uint32_t>(i);
    }
    Sort();
    int32_t rank = 0;
    for (int64_t j = 0; j < n_; ++j) {
      if (j > 0 && keys_[j] != keys_[j - 1]) rank = dense ? rank + 1 : static_cast<int32_t>(j);
      ranks[order_[j]] = rank;
    }
  }

 private:
  // Sorts keys_ (carrying order_): least-significant-digit radix sort, three passes of 11
  // bits, each skipped when every key has the same digit; std::sort for short rows.
  void Sort() {
    if (n_ < 256) {
      std::vector<uint64_t> packed(n_);
      for (int64_t i = 0; i < n_; ++i) packed[i] = (uint64_t{keys_[i]} << 32) | order_[i];
      std::sort(packed.begin(), packed.end());
      for (int64_t i = 0; i < n_; ++i) {
        keys_[i] = static_cast<uint32_t>(packed[i] >> 32);
        order_[i] = static_cast<uint32_t>(packed[i]);
      }
      return;
    }
    constexpr int kBits = 11, kBuckets = 1 << kBits;
    uint32_t counts[3][kBuckets] = {};
    for (int64_t i = 0; i < n_; ++i)
      for (int pass = 0; pass < 3; ++pass)
        ++counts[pass][(keys_[i] >> (pass * kBits)) & (kBuckets - 1)];
    for (int pass = 0; pass < 3; ++pass) {
      const int shift = pass * kBits;
      if (counts[pass][(keys_[0] >> shift) & (kBuckets - 1)] == static_cast<uint32_t>(n_))
        continue;  // one digit for every key: this pass would not move anything
      uint32_t start = 0;
      for (int b = 0; b < kBuckets; ++b) {
        const uint32_t count = counts[pass][b];
        counts[pass][b] = start;
        start += count;
      }
      for (int64_t i = 0; i < n_; ++i) {
        const uint32_t slot = counts[pass][(keys_[i] >> shift) & (kBuckets - 1)]++;
        keys_tmp_[slot] = keys_[i];
        order_tmp_[slot] = order_[i];
      }
      keys_.swap(keys_tmp_);
      order_.swap(order_tmp_);
    }
  }

  int64_t n_;
  std::vector<uint32_t> keys_, order_, keys_tmp_, order_tmp_;
};

// Keeps the k smallest of the values offered so far, ties separately, in ascending order.
class Smallest {
 public:
  explicit Smallest(int64_t k) : best_(k) {}
  void Reset() { std::fill(best_.begin(), best_.end(), INFINITY); }
  void Offer(float v) {
    if (!(v < best_.back())) return;
    size_t slot = best_.size() - 1;
    while (slot > 0 && best_[slot - 1] > v) {
      best_[slot] = best_[slot - 1];
      --slot;
    }
    best_[slot] = v;
  }
  float Kth() const { return best_.back(); }

 private:
  std::vector<float> best_;
};

// Max-norm distances from row i to every row of columns [width, n] (row i's own: +inf).
void MaxDistances(const float* columns, int64_t width, int64_t n, int64_t i, float* out) {
  std::fill(out, out + n, 0.0f);
  for (int64_t f = 0; f < width; ++f) {
    const float* feature = columns + f * n;
    const float own = feature[i];
    for (int64_t j = 0; j < n; ++j) out[j] = std::max(out[j], std::fabs(feature[j] - own));
  }
  out[i] = INFINITY;
}

ffi::Error KnnCounts(ffi::Buffer<ffi::F32> t, ffi::Buffer<ffi::S32> y, ffi::Buffer<ffi::F32> x,
                     ffi::Result<ffi::Buffer<ffi::S32>> counts, int64_t k) {
  auto td = t.dimensions();
  auto yd = y.dimensions();
  auto xd = x.dimensions();
  auto cd = counts->dimensions();
  const size_t rank = cd.size() - 2;  // batch dimensions
  if (cd.size() < 2 || td.size() != rank + 2 || yd.size() != rank + 1 || xd.size() != rank + 2)
    return ffi::Error::InvalidArgument(
        "ibjax_knn_counts: t [..., d, N], y [..., N], x [..., D, N], counts [..., 4, N]");
  const int64_t n = cd[rank + 1], width_t = td[rank], width_x = xd[rank];
  if (cd[rank] != 4 || td[rank + 1] != n || yd[rank] != n || xd[rank + 1] != n || n < 1 ||
      k < 1)
    return ffi::Error::InvalidArgument(
        "ibjax_knn_counts: shapes do not match, or N < 1, or k < 1");
  std::vector<int64_t> batch(cd.begin(), cd.begin() + rank);
  std::vector<int64_t> t_at, y_at, x_at;
  for (auto [dims, block, offsets] :
       {std::tuple{td, width_t * n, &t_at}, std::tuple{yd, n, &y_at},
        std::tuple{xd, width_x * n, &x_at}}) {
    ffi::Error err = BatchOffsets(dims, batch, block, offsets);
    if (err.failure()) return err;
  }
  std::vector<float> dt(n), dx(width_x > 0 ? n : 0);
  Smallest same_class(k), joint(k);
  for (size_t b = 0; b < t_at.size(); ++b) {
    const float* tb = t.typed_data() + t_at[b];
    const int32_t* yb = y.typed_data() + y_at[b];
    const float* xb = x.typed_data() + x_at[b];
    int32_t* out = counts->typed_data() + b * 4 * n;
    for (int64_t i = 0; i < n; ++i) {
      MaxDistances(tb, width_t, n, i, dt.data());
      same_class.Reset();
      int32_t class_size = 0;
      for (int64_t j = 0; j < n; ++j)
        if (yb[j] == yb[i]) {
          ++class_size;
          same_class.Offer(dt[j]);
        }
      const float radius = same_class.Kth();
      int32_t within = 0;
      for (int64_t j = 0; j < n; ++j) within += dt[j] <= radius;
      int32_t closer_x = 0, closer_t = 0;
      if (width_x > 0) {
        MaxDistances(xb, width_x, n, i, dx.data());
        joint.Reset();
        for (int64_t j = 0; j < n; ++j) joint.Offer(std::max(dx[j], dt[j]));
        const float eps = joint.Kth();
        for (int64_t j = 0; j < n; ++j) {
          closer_x += dx[j] < eps;
          closer_t += dt[j] < eps;
        }
      }
      out[i] = class_size;
      out[n + i] = within;
      out[2 * n + i] = closer_x;
      out[3 * n + i] = closer_t;
    }
  }
  return ffi::Error::Success();
}

ffi::Error ColumnRanks(ffi::Buffer<ffi::F32> values, ffi::Result<ffi::Buffer<ffi::S32>> ranks,
                       int64_t dense) {
  auto vd = values.dimensions();
  auto rd = ranks->dimensions();
  if (vd.size() < 1 || vd.size() != rd.size())
    return ffi::Error::InvalidArgument("ibjax_column_ranks: values [..., N], ranks [..., N]");
  for (size_t i = 0; i < vd.size(); ++i)
    if (vd[i] != rd[i])
      return ffi::Error::InvalidArgument("ibjax_column_ranks: ranks differ from values' shape");
  const int64_t n = vd[vd.size() - 1];
  if (n < 1 || n > (int64_t{1} << 31) - 1 || (dense != 0 && dense != 1))
    return ffi::Error::InvalidArgument("ibjax_column_ranks: N in [1, 2^31), dense 0 or 1");
  const int64_t rows = static_cast<int64_t>(values.element_count()) / n;
  Ranker ranker(n);
  for (int64_t r = 0; r < rows; ++r)
    ranker.Rank(values.typed_data() + r * n, dense == 1, ranks->typed_data() + r * n);
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(IbjaxKnnCounts, KnnCounts,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("k"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(IbjaxColumnRanks, ColumnRanks,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("dense"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(IbjaxDiscreteMiLimbs, DiscreteMiLimbs,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Ret<ffi::Buffer<ffi::S32>>()
                                  .Attr<int64_t>("radix")
                                  .Attr<int64_t>("num_classes")
                                  .Attr<ffi::Span<const int32_t>>("table_t")
                                  .Attr<ffi::Span<const int32_t>>("table_ty"));
