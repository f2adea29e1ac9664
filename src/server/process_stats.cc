#include "server/process_stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "server/metrics_registry.h"

namespace encserve::server {

namespace {

// Fields of /proc/self/statm: size resident shared text lib data dt (pages).
bool ReadStatm(double* size_pages, double* resident_pages) {
  std::ifstream in("/proc/self/statm");
  return static_cast<bool>(in >> *size_pages >> *resident_pages);
}

double PageSize() {
  const long p = sysconf(_SC_PAGESIZE);
  return p > 0 ? double(p) : 4096.0;
}

double ComputeStartTime() {
  // /proc/self/stat: "pid (comm) state ..."; comm may hold spaces and parentheses, so fields
  // are counted after the last ')'. starttime is field 22 (clock ticks since boot).
  std::ifstream stat("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream fields(text.substr(close + 1));
  std::string field;
  double start_ticks = -1;
  for (int i = 3; i <= 22 && fields >> field; ++i) {
    if (i == 22) start_ticks = std::stod(field);
  }
  if (start_ticks < 0) return 0;
  std::ifstream proc_stat("/proc/stat");
  std::string line;
  double btime = -1;
  while (std::getline(proc_stat, line)) {
    if (line.rfind("btime ", 0) == 0) btime = std::stod(line.substr(6));
  }
  const long ticks = sysconf(_SC_CLK_TCK);
  if (btime < 0 || ticks <= 0) return 0;
  return btime + start_ticks / double(ticks);
}

}  // namespace

double ProcessResidentBytes() {
  double size = 0, resident = 0;
  return ReadStatm(&size, &resident) ? resident * PageSize() : 0;
}

double ProcessVirtualBytes() {
  double size = 0, resident = 0;
  return ReadStatm(&size, &resident) ? size * PageSize() : 0;
}

double ProcessCpuSeconds() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  auto sec = [](const timeval& t) { return double(t.tv_sec) + double(t.tv_usec) * 1e-6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

double ProcessStartTimeSeconds() {
  static const double start = [] {
    try {
      return ComputeStartTime();
    } catch (...) {  // std::stod on a malformed field
      return 0.0;
    }
  }();
  return start;
}

double ProcessOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  const std::string own = std::to_string(dirfd(dir));
  double n = 0;
  while (const dirent* e = readdir(dir)) {
    if (e->d_name[0] == '.' || own == e->d_name) continue;
    ++n;
  }
  closedir(dir);
  return n;
}

double ProcessMaxFds() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 0;
  return double(r.rlim_cur);
}

void RegisterProcessMetrics(MetricsRegistry& registry) {
  registry.AddCallbackGauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                            ProcessResidentBytes);
  registry.AddCallbackGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
                            ProcessVirtualBytes);
  registry.AddCallbackCounter("process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds.", {},
                              ProcessCpuSeconds);
  registry.AddCallbackGauge("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.", {},
                            ProcessStartTimeSeconds);
  registry.AddCallbackGauge("process_open_fds", "Number of open file descriptors.", {},
                            ProcessOpenFds);
  registry.AddCallbackGauge("process_max_fds", "Maximum number of open file descriptors.", {},
                            ProcessMaxFds);
}

}  // namespace encserve::server
