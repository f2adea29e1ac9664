#include "experiment/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace encserve::experiment {
namespace {

std::string Tail(const std::string& path, size_t bytes = 2000) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > bytes ? s.substr(s.size() - bytes) : s;
}

}  // namespace

StatusOr<ServerProcess> ServerProcess::Start(const std::string& binary,
                                             const std::vector<std::string>& args,
                                             const std::string& work_dir,
                                             const std::string& log_path, int timeout_s) {
  const std::string ready = work_dir + "/.server-ready.json";
  std::filesystem::remove(ready);
  std::vector<std::string> argv_s = {binary, "serve"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  for (const char* a :
       {"--host", "127.0.0.1", "--grpc-port", "0", "--http-port", "0", "--ready-file"}) {
    argv_s.push_back(a);
  }
  argv_s.push_back(ready);
  std::vector<char*> argv;
  for (std::string& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log_fd < 0) return Internal("cannot open " + log_path);
  const pid_t pid = fork();
  if (pid < 0) return Internal("fork failed");
  if (pid == 0) {
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(log_fd);
  ServerProcess p;
  p.pid_ = pid;
  p.log_path_ = log_path;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (!std::filesystem::exists(ready)) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      p.pid_ = -1;
      return Unavailable("the server exited (status " + std::to_string(status) +
                         ") before ready:\n" + Tail(log_path));
    }
    if (std::chrono::steady_clock::now() > until) {
      return Unavailable("the server was not ready after " + std::to_string(timeout_s) + " s:\n" +
                         Tail(log_path));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::ifstream in(ready);
  nlohmann::json j;
  try {
    in >> j;
    p.grpc_port_ = j.at("grpc_port").get<int>();
    p.http_port_ = j.at("http_port").get<int>();
  } catch (const std::exception& e) {
    return Internal(std::string("bad ready file: ") + e.what());
  }
  if (!j.value("ready", true)) {  // (p stops the server when it goes out of scope)
    return FailedPrecondition("the server started but will not become ready: " +
                              j.value("not_ready", std::string("no reason given")) + "\n" +
                              Tail(log_path));
  }
  return p;
}

ServerProcess::ServerProcess(ServerProcess&& o) noexcept
    : pid_(o.pid_), grpc_port_(o.grpc_port_), http_port_(o.http_port_), log_path_(o.log_path_) {
  o.pid_ = -1;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Stop();
}

int ServerProcess::Stop(int timeout_s) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (waitpid(pid_, &status, WNOHANG) != pid_) {
    if (std::chrono::steady_clock::now() > until) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

StatusOr<std::string> HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Internal("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return Unavailable("cannot connect to 127.0.0.1:" + std::to_string(port));
  }
  const std::string req =
      "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return Internal("write failed");
  }
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  const size_t body = resp.find("\r\n\r\n");
  if (resp.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) {
    return Internal("GET " + path + " failed: " + resp.substr(0, 80));
  }
  return resp.substr(body + 4);
}

StatusOr<std::map<std::string, double>> ServerProcess::Metrics() const {
  ASSIGN_OR_RETURN(std::string text, HttpGet(http_port_, "/metrics"));
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    if (sp == std::string::npos) continue;
    try {
      out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
    } catch (...) {
    }
  }
  return out;
}

}  // namespace encserve::experiment
