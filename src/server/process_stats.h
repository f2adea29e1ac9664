// Best-effort statistics of this process (Linux /proc and getrusage); 0 where unavailable.
#pragma once

namespace encserve::server {

class MetricsRegistry;

// Resident set size in bytes (/proc/self/statm, second field × page size).
double ProcessResidentBytes();
// Virtual memory size in bytes (/proc/self/statm, first field × page size).
double ProcessVirtualBytes();
// User + system CPU time consumed by all threads, in seconds (getrusage(RUSAGE_SELF)).
double ProcessCpuSeconds();
// Start time of the process in seconds since the Unix epoch (/proc/self/stat field 22 plus
// btime from /proc/stat); computed once.
double ProcessStartTimeSeconds();
// Number of open file descriptors (entries of /proc/self/fd, not counting the one used to read
// it).
double ProcessOpenFds();
// Soft limit on open file descriptors (RLIMIT_NOFILE); 0 if unlimited or unavailable.
double ProcessMaxFds();

// Adds callback metrics with the standard Prometheus client names: process_resident_memory_bytes,
// process_virtual_memory_bytes, process_cpu_seconds_total (counter), process_start_time_seconds,
// process_open_fds, process_max_fds.
void RegisterProcessMetrics(MetricsRegistry& registry);

}  // namespace encserve::server
