// `encserve serve` as a child process on free loopback ports, for experiments.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace encserve::experiment {

class ServerProcess {
 public:
  // Starts `binary serve <args> --host 127.0.0.1 --grpc-port 0 --http-port 0 --ready-file ...`
  // with stdout/stderr appended to `log_path`, and waits until it is ready (or exits, or
  // `timeout_s` passes: an error that quotes the end of the log).
  static StatusOr<ServerProcess> Start(const std::string& binary,
                                       const std::vector<std::string>& args,
                                       const std::string& work_dir, const std::string& log_path,
                                       int timeout_s = 300);
  ServerProcess(ServerProcess&& other) noexcept;
  ServerProcess& operator=(ServerProcess&&) = delete;
  ~ServerProcess();  // Stop() if still running

  int grpc_port() const { return grpc_port_; }
  int http_port() const { return http_port_; }
  // SIGTERM, then waits (SIGKILL after `timeout_s`); returns the exit code.
  int Stop(int timeout_s = 60);

  // GET /metrics parsed to {"name{labels}": value} (sample lines only).
  StatusOr<std::map<std::string, double>> Metrics() const;

 private:
  ServerProcess() = default;
  pid_t pid_ = -1;
  int grpc_port_ = 0, http_port_ = 0;
  std::string log_path_;
};

// GET http://127.0.0.1:port/path over a plain socket; the response body.
StatusOr<std::string> HttpGet(int port, const std::string& path);

}  // namespace encserve::experiment
