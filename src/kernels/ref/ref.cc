#include "kernels/ref.h"

#include <cmath>
#include <vector>

namespace encserve::kernels::ref {

float Gelu(float x) {
  return static_cast<float>(0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))));
}

void Hadamard64(const float* x, const float* col_scale, float* out, int m, int k) {
  std::vector<double> row(k);
  for (long i = 0; i < m; ++i) {
    for (int c = 0; c < k; ++c) row[c] = double(x[i * k + c]) * (col_scale ? col_scale[c] : 1.0);
    for (int b = 0; b < k; b += 64) {
      for (int j = 0; j < 64; ++j) {
        double acc = 0;
        for (int t = 0; t < 64; ++t)
          acc += (__builtin_popcount(t & j) % 2 ? -1.0 : 1.0) * row[b + t];
        out[i * k + b + j] = static_cast<float>(acc);
      }
    }
  }
}

void Linear(const float* x, const float* w, const float* bias, float* y, int m, int n, int k,
            bool gelu) {
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (int kk = 0; kk < k; ++kk) acc += static_cast<double>(x[i * k + kk]) * w[j * k + kk];
      float v = static_cast<float>(acc);
      y[i * n + j] = gelu ? Gelu(v) : v;
    }
  }
}

void LayerNorm(const float* x, const float* residual, const float* gamma, const float* beta,
               float eps, float* out, int m, int n) {
  std::vector<double> row(n);
  for (int i = 0; i < m; ++i) {
    double mean = 0;
    for (int j = 0; j < n; ++j) {
      row[j] = x[i * n + j] + (residual ? residual[i * n + j] : 0.0f);
      mean += row[j];
    }
    mean /= n;
    double var = 0;
    for (int j = 0; j < n; ++j) var += (row[j] - mean) * (row[j] - mean);
    var /= n;
    const double inv = 1.0 / std::sqrt(var + eps);
    for (int j = 0; j < n; ++j)
      out[i * n + j] = static_cast<float>((row[j] - mean) * inv * gamma[j] + beta[j]);
  }
}

void AttentionHead(const float* q, const float* k, const float* v, int ld, int seq_len,
                   int head_dim, float scale, float* out, int ld_out) {
  std::vector<double> p(seq_len);
  for (int i = 0; i < seq_len; ++i) {
    double mx = -1e300;
    for (int j = 0; j < seq_len; ++j) {
      double s = 0;
      for (int c = 0; c < head_dim; ++c) s += static_cast<double>(q[i * ld + c]) * k[j * ld + c];
      p[j] = s * scale;
      if (p[j] > mx) mx = p[j];
    }
    double sum = 0;
    for (int j = 0; j < seq_len; ++j) {
      p[j] = std::exp(p[j] - mx);
      sum += p[j];
    }
    for (int c = 0; c < head_dim; ++c) {
      double acc = 0;
      for (int j = 0; j < seq_len; ++j) acc += p[j] * v[j * ld + c];
      out[i * ld_out + c] = static_cast<float>(acc / sum);
    }
  }
}

}  // namespace encserve::kernels::ref
