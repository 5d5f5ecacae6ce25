// The harness of the tests that run the real `rcptguard` binary (tests/daemon/daemon_test.cpp,
// tests/daemon/fault_test.cpp): a child process killed by its PID only, fixtures that start
// `rcptguard serve` on a free port and a unix socket under a watchdog, policy traffic helpers, and
// reads of the daemon's database.
#pragma once

#include <grp.h>

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/server/test_support.hpp"

extern char** environ;

namespace rcptguard::server_test {

inline constexpr const char* binary = RCPTGUARD_BINARY;

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

inline std::size_t count_of(std::string_view haystack, std::string_view needle) {
  std::size_t count = 0;
  for (auto at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + needle.size())) {
    ++count;
  }
  return count;
}

/// A child process running the binary, its stdout and stderr in files. Killed (by its PID
/// only) if still running when destroyed.
class child_process {
 public:
  child_process(const std::vector<std::string>& args, const std::string& out_path,
                const std::string& err_path)
      : out_path_(out_path), err_path_(err_path) {
    std::vector<std::string> argv_text{binary};
    argv_text.insert(argv_text.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_text) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    pid_t pid = -1;
    const int error = ::posix_spawn(&pid, binary, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
      ADD_FAILURE() << "posix_spawn " << binary << ": " << std::strerror(error);
      return;
    }
    pid_ = pid;
  }
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  ~child_process() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  pid_t pid() const { return pid_; }

  bool running() {
    if (pid_ <= 0 || status_) return false;
    int status = 0;
    const pid_t done = ::waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      status_ = status;
      return false;
    }
    return done == 0;
  }

  /// The exit code (128 + signal if killed), or nullopt if still running after `timeout`.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    if (!eventually([this] { return !running(); }, timeout) || !status_) return std::nullopt;
    if (WIFEXITED(*status_)) return WEXITSTATUS(*status_);
    return 128 + WTERMSIG(*status_);
  }

  void signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }

  std::string out() const { return read_file(out_path_); }
  std::string err() const { return read_file(err_path_); }
  bool wait_for_err(std::string_view needle, std::chrono::milliseconds timeout = io_timeout) const {
    return eventually([&] { return err().find(needle) != std::string::npos; }, timeout);
  }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_path_;
  std::string err_path_;
};

struct command_result {
  std::optional<int> exit_code;  ///< nullopt: did not finish in time
  std::string out;
  std::string err;
};

class RcptguardBinary : public ::testing::Test {
 protected:
  explicit RcptguardBinary(std::chrono::seconds limit = 30s)
      : watchdog_(limit, [this, limit] {
          ADD_FAILURE() << "watchdog: test did not finish within " << limit.count()
                        << " s; killing the daemon";
          if (const pid_t pid = daemon_pid_.load(); pid > 0) ::kill(pid, SIGKILL);
        }) {}

  command_result run(const std::vector<std::string>& args) {
    const std::string n = std::to_string(++commands_);
    child_process child(args, dir_.file("cmd" + n + ".out"), dir_.file("cmd" + n + ".err"));
    command_result result;
    result.exit_code = child.wait_exit(10s);
    result.out = child.out();
    result.err = child.err();
    return result;
  }

  std::string unix_path() const { return dir_.file("s.sock"); }
  /// The operator control socket: in the test's directory, so daemons of tests running at once
  /// never meet on the default (rcptguard.control in the working directory).
  std::string control_path() const { return dir_.file("control.sock"); }
  /// The unix socket's group defaults to "postfix"; where Postfix is not installed the tests
  /// keep the daemon's own group instead of failing to start.
  static bool have_postfix_group() { return ::getgrnam("postfix") != nullptr; }
  std::string listen_value(std::uint16_t port) const {
    return "[\"inet:127.0.0.1:" + std::to_string(port) + "\",\"unix:" + unix_path() + "\"]";
  }

  /// Starts `rcptguard serve` with the arguments `args_for(port)` and waits until it accepts
  /// on both sockets. The port was free a moment before; if another process took it meanwhile
  /// the daemon fails to bind and we try again with a new one.
  std::unique_ptr<child_process> start_daemon(
      const std::function<std::vector<std::string>(std::uint16_t)>& args_for) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      port_ = free_tcp_port();
      std::vector<std::string> args{"serve"};
      const auto extra = args_for(port_);
      args.insert(args.end(), extra.begin(), extra.end());
      auto daemon =
          std::make_unique<child_process>(args, dir_.file("daemon.out"), dir_.file("daemon.log"));
      daemon_pid_ = daemon->pid();
      const bool ready = eventually(
          [&] {
            return !daemon->running() || (test_client::tcp(port_).connected() &&
                                          test_client::unix_socket(unix_path()).connected());
          },
          10s);
      if (ready && daemon->running()) return daemon;
      const std::string log = daemon->err();
      if (log.find("cannot listen on 127.0.0.1") == std::string::npos) {
        ADD_FAILURE() << "the daemon did not come up; its log:\n" << log;
        return nullptr;
      }
    }
    ADD_FAILURE() << "no free port after 3 attempts";
    return nullptr;
  }

  /// The daemon configured by -o options only, as in `rcptguard serve -o ...`. The empty
  /// settings file keeps a /etc/rcptguard/rcptguard.toml on the test machine out of it.
  std::unique_ptr<child_process> start_daemon_with_overrides(
      const std::vector<std::string>& more_overrides = {}) {
    write_file(dir_.file("empty.toml"), "");
    return start_daemon([this, more_overrides](std::uint16_t port) {
      std::vector<std::string> args{
          "-c", dir_.file("empty.toml"),           "-o", "server.listen=" + listen_value(port),
          "-o", "store.path=" + dir_.file("db"),   "-o", "log.level=debug",
          "-o", "control.socket=" + control_path()};
      if (!have_postfix_group()) {
        args.push_back("-o");
        args.push_back("server.unix_socket_group=\"\"");
      }
      for (const auto& o : more_overrides) {
        args.push_back("-o");
        args.push_back(o);
      }
      return args;
    });
  }

  std::string config_text(std::uint16_t port, std::string_view log_level,
                          std::string_view extra_server_lines = "") const {
    std::ostringstream text;
    text << "[server]\nlisten = " << listen_value(port) << "\n"
         << (have_postfix_group() ? "" : "unix_socket_group = \"\"\n") << extra_server_lines << "\n[store]\npath = \"" << dir_.file("db") << "\"\n"
         << "[log]\nlevel = \"" << log_level << "\"\n"
         << "[control]\nsocket = \"" << control_path() << "\"\n";
    return text.str();
  }

  /// The daemon configured by a file it re-reads on SIGHUP.
  std::unique_ptr<child_process> start_daemon_with_file(std::string_view log_level,
                                                        std::string_view extra_server_lines = "") {
    return start_daemon([this, log_level, extra_server_lines](std::uint16_t port) {
      write_file(config_path(), config_text(port, log_level, extra_server_lines));
      return std::vector<std::string>{"-c", config_path()};
    });
  }

  std::string config_path() const { return dir_.file("rcptguard.toml"); }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::atomic<pid_t> daemon_pid_{-1};
  int commands_ = 0;
  watchdog watchdog_;
};

/// One message to `recipient` from a sender and client of its own: RCPT, then END-OF-MESSAGE.
inline std::string flood_message(std::string_view recipient, int n) {
  const std::string attrs = "protocol_state={}\nrecipient=" + std::string(recipient) +
                            "\nsender=s" + std::to_string(n) + "@bulk" + std::to_string(n) +
                            ".example\nclient_address=192.0.2." + std::to_string(n % 250) +
                            "\ninstance=flood." + std::to_string(n) + "\n";
  const auto at = [&](std::string_view state, std::string_view extra) {
    std::string a = attrs;
    a.replace(a.find("{}"), 2, state);
    return minimal_request(a + std::string(extra));
  };
  return at("RCPT", "") + at("END-OF-MESSAGE", "recipient_count=1\nsize=900\n");
}

/// Sends `count` messages to `recipient` and returns the RCPT replies.
inline std::vector<std::string> flood(test_client& client, std::string_view recipient, int first,
                                      int count) {
  std::vector<std::string> replies;
  for (int n = first; n < first + count; ++n) {
    const std::string both = flood_message(recipient, n);
    const std::size_t split = both.find("\n\n") + 2;
    replies.push_back(client.ask(both.substr(0, split)));
    client.ask(both.substr(split));
  }
  return replies;
}

inline std::size_t count_rows(const std::string& db_path, const std::string& sql) {
  // A busy timeout: the daemon may be recovering the WAL of one it replaced (kill -9).
  SQLite::Database db(db_path, SQLite::OPEN_READONLY, 5000);
  return static_cast<std::size_t>(db.execAndGet(sql).getInt64());
}

/// One message, then waits until the writer has stored it: a lock taken after this finds the
/// schema created and the writer between transactions.
inline bool warm_up_store(test_client& client, const std::string& db_path) {
  flood(client, "warmup@example.test", 0, 1);
  return eventually(
      [&] { return count_rows(db_path, "SELECT count(*) FROM recipient_minute") >= 1; });
}

// The load and fault tests: bounded, but longer than the others.
class RcptguardBinaryLoad : public RcptguardBinary {
 protected:
  RcptguardBinaryLoad() : RcptguardBinary(100s) {}
};

inline std::string numbered_rcpt(int n) {
  return minimal_request("protocol_state=RCPT\nrecipient=r" + std::to_string(n % 2000) +
                         "@example.test\nsender=s" + std::to_string(n) +
                         "@remote.example\nclient_address=192.0.2." + std::to_string(n % 250) +
                         "\ninstance=load." + std::to_string(n) + "\n");
}

/// Lines of `log` in which a tag follows itself ("STORE STORE WRITE FAILED"): one component
/// prefixing its tag to text that already carries it.
inline std::vector<std::string> doubled_tags(const std::string& log) {
  static const std::regex doubled(R"(\b([A-Z][A-Z_-]+) \1\b)");
  std::vector<std::string> found;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line, doubled)) found.push_back(line);
  }
  return found;
}

}  // namespace rcptguard::server_test
