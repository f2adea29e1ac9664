// libFuzzer target: the safetensors parser (model/safetensors.h) on arbitrary bytes as a whole
// .safetensors file (SafeTensorsFile::FromBytes: the validation Open does after mapping a file).
//
// Invariants of a file that opens: every tensor lies inside the file, nbytes = elements × dtype
// size, Find() finds every name, ReadF32 with the tensor's own shape converts F32/F16/BF16 (and
// refuses the other dtypes with UNIMPLEMENTED), with another shape it is INVALID_ARGUMENT.
// Errors are DATA_LOSS.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "model/safetensors.h"

namespace encserve::fuzz {
namespace {

size_t DTypeSize(DType d) {
  switch (d) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    default:
      return 1;
  }
}

void CheckTensor(const SafeTensorsFile& file, const std::string& name, const uint8_t* begin,
                 const uint8_t* end) {
  const TensorView* t = file.Find(name);
  FUZZ_CHECK(t != nullptr && t->name == name, "Find(" + name + ")");
  FUZZ_CHECK(t->data >= begin && t->data <= end && t->nbytes <= size_t(end - t->data),
             name + " outside the file");
  const int64_t n = t->num_elements();
  FUZZ_CHECK(n >= 0 && uint64_t(n) * DTypeSize(t->dtype) == t->nbytes,
             name + ": nbytes " + std::to_string(t->nbytes) + " for " + ShapeString(t->shape));
  auto f = file.ReadF32(name, t->shape);
  const bool floating =
      t->dtype == DType::kF32 || t->dtype == DType::kF16 || t->dtype == DType::kBF16;
  if (floating) {
    FUZZ_CHECK(f.ok() && f->size() == size_t(n), name + ": " + f.status().ToString());
  } else {
    FUZZ_CHECK(!f.ok() && f.status().code() == StatusCode::kUnimplemented,
               name + ": " + f.status().ToString());
  }
  std::vector<int64_t> other = t->shape;
  other.push_back(1);
  auto wrong = file.ReadF32(name, other);
  FUZZ_CHECK(!wrong.ok() && wrong.status().code() == StatusCode::kInvalidArgument,
             name + ": wrong shape accepted");
}

}  // namespace
}  // namespace encserve::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve;
  auto file = SafeTensorsFile::FromBytes("fuzz.safetensors",
                                         std::string(reinterpret_cast<const char*>(data), size));
  if (!file.ok()) {
    FUZZ_CHECK(file.status().code() == StatusCode::kDataLoss, file.status().ToString());
    return 0;
  }
  FUZZ_CHECK((*file)->Find("__metadata__") == nullptr, "__metadata__ is not a tensor");
  // The tensors point into the file's own copy: find its bounds from the lowest tensor.
  const std::vector<std::string> names = (*file)->Names();
  const uint8_t* lo = nullptr;
  for (const std::string& name : names) {
    const uint8_t* p = (*file)->Find(name)->data;
    if (lo == nullptr || p < lo) lo = p;
  }
  for (const std::string& name : names) {
    // The data region starts at or before the lowest tensor and is size - 8 bytes at most.
    fuzz::CheckTensor(**file, name, lo, lo + size);
  }
  return 0;
}
