// A private redis-server for one test: Debian's binary on a unix socket (and optionally a
// loopback port) in the test's own directory, no persistence, killed by its PID when the test
// ends. Tests that need it skip, saying why, where redis-server is not installed
// (contrib/install-deps.sh --test installs it).
#pragma once

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rcptguard::test_support {

inline std::string redis_server_binary() {
  for (const char* candidate : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"}) {
    if (::access(candidate, X_OK) == 0) return candidate;
  }
  return {};
}

class redis_server {
 public:
  /// Starts redis-server with its socket at `dir`/redis.sock; `password` sets requirepass.
  explicit redis_server(std::string dir, std::string password = {})
      : dir_(std::move(dir)), password_(std::move(password)) {
    start();
  }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;
  ~redis_server() { stop(); }

  std::string socket() const { return dir_ + "/redis.sock"; }

  /// SIGKILL, as a crash or an OOM kill would: nothing flushed (nothing is persisted anyway).
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    std::filesystem::remove(socket());
  }

  /// A fresh, empty server on the same socket (Redis restarted without persistence).
  void start() {
    if (pid_ > 0) return;
    const std::string binary = redis_server_binary();
    if (binary.empty()) throw std::runtime_error("redis-server is not installed");
    std::vector<std::string> args{binary,
                                  "--port",
                                  "0",
                                  "--unixsocket",
                                  socket(),
                                  "--unixsocketperm",
                                  "700",
                                  "--dir",
                                  dir_,
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--daemonize",
                                  "no",
                                  "--logfile",
                                  dir_ + "/redis.log"};
    if (!password_.empty()) {
      args.push_back("--requirepass");
      args.push_back(password_);
    }
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    struct stat st {};
    while (::stat(socket().c_str(), &st) != 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis-server exited at start; see " + dir_ + "/redis.log");
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop();
        throw std::runtime_error("redis-server did not create its socket within 20 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  pid_t pid() const { return pid_; }

 private:
  std::string dir_;
  std::string password_;
  pid_t pid_ = -1;
};

}  // namespace rcptguard::test_support
