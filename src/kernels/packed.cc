#include "kernels/packed.h"

#include <cassert>
#include <cstring>

namespace encserve::kernels {

namespace {

// Fills p (n, k, nr set) with panels of convert(w) and the padded bias (PackedF32/PackedHalf).
template <class P, class Convert>
void FillPanels(P& p, const float* w, const float* bias, Convert convert) {
  const int n = p.n, k = p.k, nr = p.nr;
  assert(n > 0 && k > 0 && nr > 0);
  p.panels.resize(static_cast<size_t>(p.num_panels()) * k * nr);
  p.bias.resize(static_cast<size_t>(p.num_panels()) * nr);
  for (int j = 0; j < n; ++j) {
    auto* dst = p.panels.data() + static_cast<size_t>(j / nr) * k * nr + j % nr;
    const float* src = w + static_cast<size_t>(j) * k;
    for (int kk = 0; kk < k; ++kk) dst[static_cast<size_t>(kk) * nr] = convert(src[kk]);
    if (bias != nullptr) p.bias[j] = bias[j];
  }
}

}  // namespace

PackedF32 PackF32(const float* w, const float* bias, int n, int k, int nr) {
  PackedF32 p;
  p.n = n;
  p.k = k;
  p.nr = nr;
  FillPanels(p, w, bias, [](float v) { return v; });
  return p;
}

uint16_t FloatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40);  // NaN
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float Bf16ToFloat(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);   // NaN
  if (x >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow → inf
  if (x < 0x38800000u) {  // subnormal half (or zero): add 0.5 as a float to round
    float a;
    std::memcpy(&a, &x, 4);
    a += 0.5f;
    uint32_t r;
    std::memcpy(&r, &a, 4);
    return static_cast<uint16_t>(sign | (r - 0x3f000000u));
  }
  const uint32_t mant_odd = (x >> 13) & 1u;
  x += 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round to nearest even
  return static_cast<uint16_t>(sign | (x >> 13));
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    float f = static_cast<float>(mant) * (1.0f / 16777216.0f);  // mant · 2^-24
    std::memcpy(&bits, &f, 4);
    bits |= sign;
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

PackedHalf PackHalf(const float* w, const float* bias, int n, int k, int nr, HalfFormat format) {
  PackedHalf p;
  p.n = n;
  p.k = k;
  p.nr = nr;
  p.format = format;
  if (format == HalfFormat::kF16) {
    FillPanels(p, w, bias, FloatToHalf);
  } else {
    FillPanels(p, w, bias, FloatToBf16);
  }
  return p;
}

PackedBf16Pairs PackBf16Pairs(const float* w, const float* bias, int n, int k, int nr,
                              int k_align) {
  assert(n > 0 && k > 0 && nr > 0 && k_align > 0 && k_align % 2 == 0);
  PackedBf16Pairs p;
  p.n = n;
  p.k = k;
  p.kp = (k + k_align - 1) / k_align * k_align / 2;
  p.nr = nr;
  const int kp = p.k_pairs();
  p.panels.resize(static_cast<size_t>(p.num_panels()) * kp * nr * 2);
  p.bias.resize(static_cast<size_t>(p.num_panels()) * nr);
  for (int j = 0; j < n; ++j) {
    uint16_t* dst = p.panels.data() + static_cast<size_t>(j / nr) * kp * nr * 2 + (j % nr) * 2;
    const float* src = w + static_cast<size_t>(j) * k;
    for (int kk = 0; kk < k; ++kk)
      dst[static_cast<size_t>(kk / 2) * nr * 2 + kk % 2] = FloatToBf16(src[kk]);
    if (bias != nullptr) p.bias[j] = bias[j];
  }
  return p;
}

}  // namespace encserve::kernels
