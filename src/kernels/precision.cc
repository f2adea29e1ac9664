#include "kernels/precision.h"

namespace encserve::kernels {

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kF32:
      return "fp32";
    case Precision::kBF16:
      return "bf16";
    case Precision::kF16:
      return "fp16";
    case Precision::kInt8:
      return "int8";
    case Precision::kInt4:
      return "int4";
  }
  return "?";
}

bool ParsePrecision(const std::string& name, Precision* out) {
  for (Precision p :
       {Precision::kF32, Precision::kBF16, Precision::kF16, Precision::kInt8, Precision::kInt4}) {
    if (name == PrecisionName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

}  // namespace encserve::kernels
