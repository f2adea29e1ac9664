#include "model/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "kernels/packed.h"

namespace encserve {
namespace {

using json = nlohmann::json;

struct DTypeInfo {
  const char* name;
  DType dtype;
  size_t size;
};
constexpr DTypeInfo kDTypes[] = {{"F32", DType::kF32, 4},   {"F16", DType::kF16, 2},
                                 {"BF16", DType::kBF16, 2}, {"F64", DType::kF64, 8},
                                 {"I64", DType::kI64, 8},   {"I32", DType::kI32, 4},
                                 {"I16", DType::kI16, 2},   {"I8", DType::kI8, 1},
                                 {"U8", DType::kU8, 1},     {"BOOL", DType::kBool, 1}};

// One header entry {dtype, shape, data_offsets}: fills v's dtype and shape and the entry's
// byte range [*begin, *end) in a data region of data_size bytes, after checking them.
Status ParseEntry(const std::string& where, const json& t, size_t data_size, TensorView* v,
                  uint64_t* begin, uint64_t* end) {
  if (!t.is_object() || !t.contains("dtype") || !t["dtype"].is_string() || !t.contains("shape") ||
      !t["shape"].is_array() || !t.contains("data_offsets") || !t["data_offsets"].is_array() ||
      t["data_offsets"].size() != 2) {
    return DataLoss(where + " has a malformed header entry");
  }
  const std::string dt = t["dtype"].get<std::string>();
  size_t esize = 0;
  for (const auto& info : kDTypes) {
    if (dt == info.name) {
      v->dtype = info.dtype;
      esize = info.size;
    }
  }
  if (esize == 0) return DataLoss(where + " has unknown dtype \"" + dt + "\"");
  // Elements, at most 2^40: checked before each product so that it cannot wrap around (a
  // shape such as [2^20, 2^20, 2^24] used to wrap to 0 and pass, then num_elements()
  // overflowed: fuzz/regressions/safetensors/). After a zero dimension the product stays 0.
  constexpr uint64_t kMaxElements = 1ull << 40;
  uint64_t count = 1;
  for (const json& d : t["shape"]) {
    if (!d.is_number_integer() || d.get<long long>() < 0)
      return DataLoss(where + " has a bad shape");
    const uint64_t dim = d.get<uint64_t>();
    if (count != 0 && dim > kMaxElements / count) {  // i.e. count * dim > kMaxElements
      return DataLoss(where + " has an absurd shape");
    }
    v->shape.push_back(static_cast<int64_t>(dim));
    count *= dim;
  }
  const json& off = t["data_offsets"];
  if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
    return DataLoss(where + " has bad data_offsets");
  }
  const uint64_t b = off[0].get<uint64_t>(), e = off[1].get<uint64_t>();
  if (b > e || e > data_size) {
    return DataLoss(where + " lies outside the file (offsets [" + std::to_string(b) + ", " +
                    std::to_string(e) + "), data region " + std::to_string(data_size) +
                    " bytes); the file is truncated or corrupt");
  }
  if (e - b != count * esize) {
    return DataLoss(where + " has " + std::to_string(e - b) + " bytes but shape " +
                    ShapeString(v->shape) + " × " + dt + " needs " + std::to_string(count * esize));
  }
  *begin = b;
  *end = e;
  return Status::Ok();
}

}  // namespace

int64_t TensorView::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const char* DTypeName(DType dtype) {
  for (const auto& info : kDTypes)
    if (info.dtype == dtype) return info.name;
  return "?";
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Read into memory, not mapped: the weights are copied out at load anyway, and a mapping of a
// file that is truncated while it is read raises SIGBUS; a read sees a short file instead and
// fails with an error naming it.
StatusOr<std::unique_ptr<SafeTensorsFile>> SafeTensorsFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NotFound("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    return DataLoss("cannot stat " + path);
  }
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::pread(fd, bytes.data() + got, bytes.size() - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  const int err = errno;
  ::close(fd);
  if (got != bytes.size()) {
    return DataLoss(path + ": read " + std::to_string(got) + " of " + std::to_string(bytes.size()) +
                    " bytes (" + std::strerror(err) + "); the file changed or is unreadable");
  }
  return FromBytes(path, std::move(bytes));
}

StatusOr<std::unique_ptr<SafeTensorsFile>> SafeTensorsFile::FromBytes(const std::string& name,
                                                                      std::string bytes) {
  const size_t size = bytes.size();
  if (size < 8) {
    return DataLoss(name + ": file is " + std::to_string(size) + " bytes, too short for a header");
  }
  std::unique_ptr<SafeTensorsFile> file(new SafeTensorsFile());
  file->path_ = name;
  file->bytes_ = std::move(bytes);
  RETURN_IF_ERROR(file->Parse(reinterpret_cast<const uint8_t*>(file->bytes_.data()), size));
  return file;
}

Status SafeTensorsFile::Parse(const uint8_t* base, size_t size) {
  const std::string& path = path_;
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | base[i];
  if (header_len == 0 || header_len > size - 8 || header_len > (100u << 20)) {
    return DataLoss(path + ": header length " + std::to_string(header_len) +
                    " does not fit the file (" + std::to_string(size) + " bytes); truncated?");
  }
  const char* hdr = reinterpret_cast<const char*>(base + 8);
  json header = json::parse(hdr, hdr + header_len, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return DataLoss(path + ": header is not a valid JSON object");
  }
  const uint8_t* data = base + 8 + header_len;
  const size_t data_size = size - 8 - header_len;
  std::vector<std::pair<size_t, size_t>> ranges;
  size_t max_end = 0;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const std::string where = path + ": tensor \"" + name + "\"";
    TensorView v;
    v.name = name;
    uint64_t begin = 0, end = 0;
    RETURN_IF_ERROR(ParseEntry(where, it.value(), data_size, &v, &begin, &end));
    v.data = data + begin;
    v.nbytes = end - begin;
    ranges.emplace_back(begin, end);
    max_end = std::max<size_t>(max_end, end);
    tensors_.emplace(name, std::move(v));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return DataLoss(path + ": tensors overlap");
  }
  if (max_end != data_size) {
    return DataLoss(path + ": data region is " + std::to_string(data_size) +
                    " bytes but the tensors end at " + std::to_string(max_end));
  }
  return Status::Ok();
}

const TensorView* SafeTensorsFile::Find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

std::vector<std::string> SafeTensorsFile::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, _] : tensors_) names.push_back(name);
  return names;
}

StatusOr<std::vector<float>> SafeTensorsFile::ReadF32(
    const std::string& name, const std::vector<int64_t>& expected_shape) const {
  const TensorView* t = Find(name);
  if (t == nullptr) return NotFound(path_ + ": missing tensor \"" + name + "\"");
  if (t->shape != expected_shape) {
    return InvalidArgument(path_ + ": tensor \"" + name + "\" has shape " + ShapeString(t->shape) +
                           ", expected " + ShapeString(expected_shape));
  }
  const size_t n = static_cast<size_t>(t->num_elements());
  std::vector<float> out(n);
  switch (t->dtype) {
    case DType::kF32:
      if (n > 0) std::memcpy(out.data(), t->data, n * 4);  // (out.data() is null when n = 0)
      break;
    case DType::kF16:
    case DType::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t->data + 2 * i, 2);
        out[i] = t->dtype == DType::kF16 ? kernels::HalfToFloat(h) : kernels::Bf16ToFloat(h);
      }
      break;
    default:
      return Unimplemented(path_ + ": tensor \"" + name + "\" has dtype " + DTypeName(t->dtype) +
                           "; expected F32, F16 or BF16");
  }
  return out;
}

}  // namespace encserve
