// A .safetensors file read into memory with a fully validated header: 8-byte little-endian header
// length, a JSON header {name: {dtype, shape, data_offsets: [begin, end]}}, then the data.
// Every tensor must lie inside the file with size = product(shape) × dtype size.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace encserve {

enum class DType { kF32, kF16, kBF16, kF64, kI64, kI32, kI16, kI8, kU8, kBool };

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  int64_t num_elements() const;
};

class SafeTensorsFile {
 public:
  static StatusOr<std::unique_ptr<SafeTensorsFile>> Open(const std::string& path);
  // The same validation on a whole file's bytes held in memory (kept by the object); `name`
  // stands for the path in messages. For tests and the fuzzer (fuzz/safetensors_fuzz.cc).
  static StatusOr<std::unique_ptr<SafeTensorsFile>> FromBytes(const std::string& name,
                                                              std::string bytes);
  ~SafeTensorsFile() = default;
  SafeTensorsFile(const SafeTensorsFile&) = delete;
  SafeTensorsFile& operator=(const SafeTensorsFile&) = delete;

  const TensorView* Find(const std::string& name) const;
  std::vector<std::string> Names() const;
  const std::string& path() const { return path_; }

  // Copies a floating-point tensor (F32, F16 or BF16) to float32, checking its shape.
  StatusOr<std::vector<float>> ReadF32(const std::string& name,
                                       const std::vector<int64_t>& expected_shape) const;

 private:
  SafeTensorsFile() = default;
  // Validates the header of the file's bytes [base, base + size) and fills tensors_.
  Status Parse(const uint8_t* base, size_t size);

  std::string path_;
  std::string bytes_;  // the file's bytes
  std::map<std::string, TensorView> tensors_;
};

const char* DTypeName(DType dtype);
std::string ShapeString(const std::vector<int64_t>& shape);

}  // namespace encserve
