// The safetensors reader rejects every kind of damaged file with an error naming the problem.
#include "model/safetensors.h"

#include <cstring>

#include "test_util.h"

namespace encserve {
namespace {

using testing::TempDir;
using testing::WriteFile;

std::string Build(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

std::string Floats(std::initializer_list<float> v) {
  std::string s(v.size() * 4, '\0');
  std::memcpy(s.data(), std::data(v), s.size());
  return s;
}

const char* kGoodHeader =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"F16","shape":[2],"data_offsets":[16,20]},)"
    R"("c":{"dtype":"BF16","shape":[1],"data_offsets":[20,22]}})";

std::string GoodData() {
  std::string d = Floats({1, 2, 3, 4});
  d += std::string("\x00\x3c\x00\xc0", 4);  // F16 1.0, -2.0
  d += std::string("\x40\x40", 2);          // BF16 3.0
  return d;
}

TEST(SafeTensors, ReadsAndConvertsDtypes) {
  TempDir dir;
  WriteFile(dir / "m.safetensors", Build(kGoodHeader, GoodData()));
  auto f = SafeTensorsFile::Open(dir / "m.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->Names().size(), 3u);
  auto a = (*f)->ReadF32("a", {2, 2});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<float>{1, 2, 3, 4}));
  auto b = (*f)->ReadF32("b", {2});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, (std::vector<float>{1.0f, -2.0f}));
  auto c = (*f)->ReadF32("c", {1});
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0], 3.0f);
}

TEST(SafeTensors, WrongShapeAndMissingTensorNameTheTensor) {
  TempDir dir;
  WriteFile(dir / "m.safetensors", Build(kGoodHeader, GoodData()));
  auto f = SafeTensorsFile::Open(dir / "m.safetensors");
  ASSERT_TRUE(f.ok());
  auto a = (*f)->ReadF32("a", {4});
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("\"a\""), std::string::npos) << a.status().message();
  EXPECT_NE(a.status().message().find("[2, 2]"), std::string::npos);
  auto z = (*f)->ReadF32("zzz", {1});
  EXPECT_EQ(z.status().code(), StatusCode::kNotFound);
  EXPECT_NE(z.status().message().find("zzz"), std::string::npos);
}

struct BadCase {
  const char* name;
  std::string bytes;
  const char* expect;  // substring of the error
};

TEST(SafeTensors, RejectsDamagedFiles) {
  const std::string good = Build(kGoodHeader, GoodData());
  std::vector<BadCase> cases = {
      {"empty", "", "too short"},
      {"truncated data", good.substr(0, good.size() - 3), "truncated or corrupt"},
      {"truncated header", good.substr(0, 40), "header length"},
      {"header length absurd", std::string("\xff\xff\xff\xff\x00\x00\x00\x00", 8) + "{}",
       "header length"},
      {"not json", Build("{not json", ""), "not a valid JSON"},
      {"unknown dtype", Build(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", "x"),
       "unknown dtype"},
      {"size mismatch",
       Build(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", Floats({1, 2})),
       "needs 12"},
      {"offset past end",
       Build(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", Floats({1, 2})),
       "outside the file"},
      {"overlap",
       Build(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           Floats({1, 2})),
       "overlap"},
      {"trailing garbage",
       Build(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", Floats({1, 2})),
       "end at 4"},
      {"malformed entry",
       Build(R"({"a":{"dtype":"F32","shape":"x","data_offsets":[0,4]}})", Floats({1})),
       "malformed"},
      {"negative dim",
       Build(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", Floats({1})),
       "bad shape"},
  };
  TempDir dir;
  for (const auto& c : cases) {
    WriteFile(dir / "bad.safetensors", c.bytes);
    auto f = SafeTensorsFile::Open(dir / "bad.safetensors");
    ASSERT_FALSE(f.ok()) << c.name;
    EXPECT_EQ(f.status().code(), StatusCode::kDataLoss) << c.name;
    EXPECT_NE(f.status().message().find(c.expect), std::string::npos)
        << c.name << ": " << f.status().message();
  }
}

TEST(SafeTensors, MissingFileIsNotFound) {
  auto f = SafeTensorsFile::Open("/nonexistent/model.safetensors");
  EXPECT_EQ(f.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace encserve
