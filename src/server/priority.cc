#include "server/priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace encserve::server {

int LowerOtherThreadsPriority(int nice) {
  if (nice <= 0) return 0;
  const long self = syscall(SYS_gettid);
  int changed = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    const std::string name = entry.path().filename().string();
    char* end = nullptr;
    const long tid = std::strtol(name.c_str(), &end, 10);
    if (end == name.c_str() || tid == self) continue;
    if (setpriority(PRIO_PROCESS, static_cast<id_t>(tid), nice) == 0) ++changed;
  }
  return changed;
}

}  // namespace encserve::server
