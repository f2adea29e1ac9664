#include "experiment/provenance.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <thread>

namespace encserve::experiment {
namespace {

std::string Run(const std::string& cmd, int* rc = nullptr) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 256> buf;
  while (fgets(buf.data(), buf.size(), p) != nullptr) out += buf.data();
  const int status = pclose(p);
  if (rc) *rc = status;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string CpuInfoField(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "";
}

std::string Format(const char* fmt) {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, fmt, &tm);
  return buf;
}

}  // namespace

std::string UtcStamp() {
  return Format("%Y%m%dT%H%M%SZ");
}
std::string UtcIso() {
  return Format("%Y-%m-%dT%H:%M:%SZ");
}

nlohmann::ordered_json Provenance(const std::string& source_dir) {
  nlohmann::ordered_json j;
  int rc = 0;
  std::string commit = Run("git -C '" + source_dir + "' rev-parse --short HEAD 2>/dev/null", &rc);
  j["git_commit"] = rc == 0 && !commit.empty() ? commit : "unknown";
  j["git_dirty"] =
      !Run("git -C '" + source_dir + "' status --porcelain --untracked-files=no 2>/dev/null")
           .empty();
  j["encserve_version"] = ENCSERVE_VERSION;
  j["date_utc"] = UtcIso();
  j["cpu_model"] = CpuInfoField("model name");
  // The flags that matter for the kernels, in a fixed order.
  std::string flags = " ";
  flags.append(CpuInfoField("flags")).append(" ");
  std::string keep;
  for (const char* f : {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                        "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"}) {
    std::string needle = " ";
    needle.append(f).append(" ");
    if (flags.find(needle) == std::string::npos) continue;
    if (!keep.empty()) keep.push_back(' ');
    keep.append(f);
  }
  j["cpu_flags"] = keep;
  j["cores"] = std::thread::hardware_concurrency();
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  j["memory_bytes"] = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page : 0;
  utsname u{};
  uname(&u);
  std::string os = u.sysname;
  os.append(" ").append(u.release).append(" ").append(u.machine);
  j["os"] = os;
  j["hostname"] = u.nodename;
  return j;
}

}  // namespace encserve::experiment
