#include "server/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace encserve::server {

int RaiseDescriptorLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur > (1u << 30) ? (1 << 30) : static_cast<int>(lim.rlim_cur);
}

namespace {
int SoftLimit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 1024;
  return lim.rlim_cur > (1u << 30) ? (1 << 30) : static_cast<int>(lim.rlim_cur);
}
}  // namespace

FdBudget::FdBudget(std::string what, int reserve) : what_(std::move(what)), reserve_(reserve) {}

void FdBudget::Log(const std::string& line) {
  std::fprintf(stderr, "[serve] %s: %s\n", what_.c_str(), line.c_str());
  std::fflush(stderr);
}

bool FdBudget::Admit(int fd) {
  const int limit = SoftLimit();
  if (fd < limit - reserve_) {
    if (at_limit_.exchange(false)) {
      Log("descriptors available again: accepting connections (" + std::to_string(refused_.load()) +
          " refused so far)");
    }
    return true;
  }
  refused_.fetch_add(1);
  if (!at_limit_.exchange(true)) {
    Log("file descriptors nearly exhausted (limit " + std::to_string(limit) + ", keeping " +
        std::to_string(reserve_) +
        " in reserve): new connections are closed until some close; raise `ulimit -n`");
  }
  return false;
}

void FdBudget::OnAcceptError(int err) {
  refused_.fetch_add(1);
  if (!at_limit_.exchange(true)) {
    Log(std::string("accept failed: ") + std::strerror(err) + " (limit " +
        std::to_string(SoftLimit()) +
        "): new connections are closed until descriptors are free; raise `ulimit -n`");
  }
}

Listener::Listener(const ListenerOptions& options)
    : options_(options), budget_(options.name, options.fd_reserve) {}

Listener::~Listener() {
  Stop();
  for (int fd : {fd_, wake_[0], wake_[1], spare_}) {
    if (fd >= 0) ::close(fd);
  }
}

StatusOr<std::unique_ptr<Listener>> Listener::Bind(const ListenerOptions& options) {
  std::unique_ptr<Listener> l(new Listener(options));
  const std::string where = options.host + ":" + std::to_string(options.port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(options.port);
  if (getaddrinfo(options.host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
    return Unavailable("cannot resolve " + options.name + " host '" + options.host + "'");
  }
  l->fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  const bool ok = l->fd_ >= 0 &&
                  ::setsockopt(l->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
                  ::bind(l->fd_, res->ai_addr, res->ai_addrlen) == 0 && ::listen(l->fd_, 4096) == 0;
  const int err = errno;
  freeaddrinfo(res);
  if (!ok) {
    return Unavailable("cannot listen on " + options.name + " " + where + ": " +
                       std::strerror(err) +
                       (err == EADDRINUSE ? " (another process holds the port)" : ""));
  }
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(l->fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  l->port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (::pipe2(l->wake_, O_CLOEXEC) != 0) return Unavailable("pipe2 failed");
  l->spare_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  return l;
}

void Listener::Start(std::function<void(int fd)> on_accept) {
  on_accept_ = std::move(on_accept);
  thread_ = std::thread([this] { Loop(); });
}

void Listener::Stop() {
  if (stopping_.exchange(true)) return;
  if (wake_[1] >= 0) {
    const char c = 0;
    [[maybe_unused]] ssize_t n = ::write(wake_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

void Listener::Loop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    const int n = ::poll(fds, 2, 1000);
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) break;
    if (n > 0 && (fds[0].revents & POLLIN)) AcceptOne();
  }
}

void Listener::AcceptOne() {
  for (int burst = 0; burst < 64; ++burst) {
    const int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      if (!budget_.Admit(fd)) {
        ::close(fd);
        continue;
      }
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      on_accept_(fd);
      continue;
    }
    const int err = errno;
    if (err == EINTR || err == ECONNABORTED) continue;
    if (err == EMFILE || err == ENFILE) {
      budget_.OnAcceptError(err);
      // Release the spare descriptor to take the pending connection off the queue and close
      // it: the client is refused at once and poll() does not report the same one again.
      if (spare_ >= 0) {
        ::close(spare_);
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) ::close(c);
        spare_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      } else {
        ::usleep(50 * 1000);  // no spare: back off instead of spinning
        spare_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      }
      return;
    }
    return;  // EAGAIN: drained
  }
}

}  // namespace encserve::server
