// The quantised weight packers and row preparation (portable code, run once at load).
#include "kernels/quant.h"

#include <cmath>
#include <cstring>
#include <string>

namespace encserve::kernels {
namespace {

// Symmetric scale for a block whose largest magnitude is `mx`, mapped to ±qmax. An all-zero
// block (or one so tiny that qmax/mx overflows) gets scale 1 and quantises to zeros.
void BlockScale(float mx, float qmax, float* scale, float* inv) {
  const float i = qmax / mx;
  if (!(mx > 0.0f) || !std::isfinite(i)) {
    *scale = 1.0f;
    *inv = 0.0f;
  } else {
    *scale = mx / qmax;
    *inv = i;
  }
}

int Quantize(float w, float inv, int qmax) {
  const float r = std::nearbyint(w * inv);
  return r > qmax ? qmax : (r < -qmax ? -qmax : static_cast<int>(r));
}

AffineS4 AffineGroupS4(const float* p, int n) {
  float lo = p[0], hi = p[0];
  for (int i = 1; i < n; ++i) {
    lo = std::fmin(lo, p[i]);
    hi = std::fmax(hi, p[i]);
  }
  return AffineS4::FromRange(lo, hi);
}

float MaxAbs(const float* p, int n) {
  float mx = 0.0f;
  for (int i = 0; i < n; ++i) mx = std::fmax(mx, std::fabs(p[i]));
  return mx;
}

// The int32 accumulators hold up to 255 · 127 · k (u8 · s8 sums) plus the 128 · Σ q term.
constexpr int kMaxK = 1 << 16;

Status CheckShape(int n, int k, int nr) {
  if (n <= 0 || k <= 0 || k > kMaxK) {
    return InvalidArgument("quantised pack: bad shape n=" + std::to_string(n) +
                           " k=" + std::to_string(k));
  }
  if (nr <= 0 || nr % 2 != 0) return InvalidArgument("quantised pack: bad panel width");
  return Status::Ok();
}

}  // namespace

AffineS4 AffineS4::FromRange(float lo, float hi) {
  const float scale = (hi - lo) / 15.0f, inv = 15.0f / (hi - lo);
  if (!(scale > 0.0f) || !std::isfinite(inv)) return {lo, 0.0f, 0.0f, lo};  // constant group
  return {lo, scale, inv, lo + 8.0f * scale};
}

int AffineS4::Quantize(float w) const {
  const float r = std::nearbyint((w - lo) * inv);
  return (r < 0.0f ? 0 : (r > 15.0f ? 15 : static_cast<int>(r))) - 8;
}

void PrepareQuantizedRows(const QuantKernelTable& t, int m, int k, QuantizedRows* out) {
  const int kp = (k + t.k_align - 1) / t.k_align * t.k_align;
  const int m_pad = (m + t.row_align - 1) / t.row_align * t.row_align;
  out->m = m;
  out->k = k;
  out->kp = kp;
  out->data.reserve_at_least(static_cast<size_t>(m_pad) * kp);
  out->scales.reserve_at_least(m);
  out->shifts.reserve_at_least(m);
  if (m_pad > m) {
    std::memset(out->data.data() + static_cast<size_t>(m) * kp, 128,
                static_cast<size_t>(m_pad - m) * kp);
  }
}

void QuantizeRows(const QuantKernelTable& t, const float* x, int m, int k, const float* col_scale,
                  QuantizedRows* out) {
  PrepareQuantizedRows(t, m, k, out);
  t.quantize_row_range(x, k, col_scale, 0, m, out);
}

StatusOr<PackedS8> PackS8(const float* w, const float* bias, int n, int k,
                          const QuantKernelTable& t) {
  RETURN_IF_ERROR(CheckShape(n, k, t.nr));
  PackedS8 p;
  p.n = n;
  p.k = k;
  p.kp = (k + t.k_align - 1) / t.k_align * t.k_align;
  p.nr = t.nr;
  const int np = p.num_panels(), nr = p.nr;
  p.panels.resize(static_cast<size_t>(np) * p.kp * nr);
  p.scales.resize(static_cast<size_t>(np) * nr);
  p.bias.resize(static_cast<size_t>(np) * nr);
  p.wsum128.resize(static_cast<size_t>(np) * nr);
  p.colsum.resize(static_cast<size_t>(np) * nr);
  for (int j = 0; j < n; ++j) {
    const float* row = w + static_cast<size_t>(j) * k;
    float scale, inv;
    BlockScale(MaxAbs(row, k), 127.0f, &scale, &inv);
    const int pi = j / nr, c = j % nr;
    int8_t* dst = p.panels.data() + static_cast<size_t>(pi) * p.kp * nr;
    int sum = 0;
    for (int kk = 0; kk < k; ++kk) {
      const int q = Quantize(row[kk], inv, 127);
      dst[(static_cast<size_t>(kk / 4) * nr + c) * 4 + kk % 4] = static_cast<int8_t>(q);
      sum += q;
    }
    p.scales[j] = scale;
    p.bias[j] = bias != nullptr ? bias[j] : 0.0f;
    p.wsum128[j] = 128 * sum;
    p.colsum[j] = static_cast<float>(static_cast<double>(scale) * sum);
  }
  return p;
}

StatusOr<PackedS4> PackS4(const float* w, const float* bias, int n, int k, int group_size,
                          const QuantKernelTable& t, const float* grid) {
  RETURN_IF_ERROR(CheckShape(n, k, t.nr));
  if (group_size != 32 && group_size != 64 && group_size != 128) {
    return InvalidArgument("int4 pack: group size must be 32, 64 or 128, got " +
                           std::to_string(group_size));
  }
  if (k % group_size != 0) {
    return InvalidArgument("int4 pack: k=" + std::to_string(k) + " is not a multiple of the group" +
                           " size " + std::to_string(group_size));
  }
  PackedS4 p;
  p.n = n;
  p.k = k;
  p.group_size = group_size;
  p.nr = t.nr;
  const int np = p.num_panels(), ng = p.num_groups(), nr = p.nr, half = nr / 2;
  p.panels.resize(static_cast<size_t>(np) * k * nr / 2);
  p.scales.resize(static_cast<size_t>(np) * ng * nr);
  p.wsum128.resize(static_cast<size_t>(np) * ng * nr);
  p.bias.resize(static_cast<size_t>(np) * nr);
  p.colsum.resize(static_cast<size_t>(np) * nr);
  p.offsets.resize(static_cast<size_t>(np) * ng * nr);
  for (int j = 0; j < n; ++j) {
    const float* row = w + static_cast<size_t>(j) * k;
    const int pi = j / nr, c = j % nr;
    double colsum = 0;
    uint8_t* dst = p.panels.data() + static_cast<size_t>(pi) * k * nr / 2;
    const int shift = c < half ? 0 : 4, cc = c % half;
    for (int g = 0; g < ng; ++g) {
      const float* range = grid ? grid + (static_cast<size_t>(j) * ng + g) * 2 : nullptr;
      const AffineS4 a = range ? AffineS4::FromRange(range[0], range[1])
                               : AffineGroupS4(row + g * group_size, group_size);
      int sum = 0;
      for (int kk = g * group_size; kk < (g + 1) * group_size; ++kk) {
        const int q = a.Quantize(row[kk]);
        uint8_t& b = dst[(static_cast<size_t>(kk / 4) * half + cc) * 4 + kk % 4];
        b = static_cast<uint8_t>(b | ((q & 0xF) << shift));
        sum += q;
      }
      const size_t at = (static_cast<size_t>(pi) * ng + g) * nr + c;
      p.scales[at] = a.scale;
      p.offsets[at] = a.offset;
      p.wsum128[at] = 128 * sum;
      colsum += static_cast<double>(a.scale) * sum + static_cast<double>(a.offset) * group_size;
    }
    p.bias[j] = bias != nullptr ? bias[j] : 0.0f;
    p.colsum[j] = static_cast<float>(colsum);
  }
  return p;
}

}  // namespace encserve::kernels
