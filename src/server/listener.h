// Listener: a TCP listening socket with its own accept thread, for front ends that take
// accepted connections as file descriptors (the gRPC front end hands them to gRPC's
// transport). It exists so that running out of descriptors is survivable: gRPC's own accept
// loop stops for good after one failed accept4 (EMFILE).
//
// Descriptor policy, shared with the HTTP front end (FdBudget):
//   - at start the soft RLIMIT_NOFILE is raised to the hard limit (RaiseDescriptorLimit);
//   - a new connection whose descriptor would leave fewer than `reserve` free is closed at once
//     (the client sees its connection refused/closed, never a hang);
//   - if accept fails with EMFILE/ENFILE anyway, one spare descriptor is released to accept and
//     close the pending connection, so the listener neither spins nor stops; one log line per
//     episode (not per connection) says so, and another when connections are accepted again.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/status.h"

namespace encserve::server {

// Raises the soft descriptor limit to the hard one; returns the resulting soft limit.
int RaiseDescriptorLimit();

// Whether a connection that got descriptor `fd` may be kept: fd numbers are allocated lowest
// first, so fd >= limit - reserve means at most `reserve` descriptors are left.
class FdBudget {
 public:
  explicit FdBudget(std::string what, int reserve = 64);
  bool Admit(int fd);           // false: close the connection (logs once per episode)
  void OnAcceptError(int err);  // EMFILE/ENFILE: logs once per episode
  int64_t refused() const { return refused_.load(); }

 private:
  void Log(const std::string& line);
  const std::string what_;
  const int reserve_;
  std::atomic<int64_t> refused_{0};
  std::atomic<bool> at_limit_{false};
};

struct ListenerOptions {
  std::string host = "0.0.0.0";
  int port = 0;               // 0: a free port (see Listener::port())
  std::string name = "gRPC";  // for errors and log lines
  int fd_reserve = 64;
};

class Listener {
 public:
  // Binds without SO_REUSEPORT (a second server on the same port fails here with Unavailable
  // instead of sharing the port) and listens.
  static StatusOr<std::unique_ptr<Listener>> Bind(const ListenerOptions& options);
  ~Listener();  // Stop()
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int port() const { return port_; }
  // Starts the accept thread. `on_accept` owns each accepted descriptor (non-blocking,
  // close-on-exec, TCP_NODELAY set).
  void Start(std::function<void(int fd)> on_accept);
  // Closes the listening socket (new connections are refused) and joins the thread.
  void Stop();
  int64_t refused() const { return budget_.refused(); }

 private:
  explicit Listener(const ListenerOptions& options);
  void Loop();
  void AcceptOne();

  ListenerOptions options_;
  FdBudget budget_;
  int fd_ = -1;
  int wake_[2] = {-1, -1};  // pipe: Stop() wakes the poll
  int spare_ = -1;          // released to refuse a connection at EMFILE
  int port_ = 0;
  std::function<void(int)> on_accept_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
};

}  // namespace encserve::server
