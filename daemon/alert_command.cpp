// The alert command's worker (see alert_command.hpp).
#include "daemon/alert_command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/text.hpp"
#include "config/duration.hpp"
#include "daemon/sigpipe.hpp"

extern char** environ;  // POSIX defines it but declares it in no header

namespace rcptguard::daemon {

namespace {

using scanner::unique_fd;
using std::chrono::steady_clock;

// Without pidfds (a kernel before 5.3, or a seccomp filter) an exit wakes nobody, so poll()
// also returns this often while such a child runs.
constexpr std::chrono::milliseconds reap_poll_interval{100};

// Reads of stderr per wake-up: a grandchild that keeps writing cannot hold the worker in one
// child's pipe while the others' timeouts pass.
constexpr int max_error_reads = 16;

// Readable once `pid` has exited, or -1. Through syscall(): glibc 2.36's <sys/pidfd.h> lacks
// extern "C", so C++ cannot link its pidfd_open().
int open_pidfd(pid_t pid) {
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

// If the daemon was started with fd 0, 1 or 2 closed, a pipe may land there, and the child's
// dup2() sequence would overwrite one of its own pipe ends.
unique_fd above_stdio(unique_fd fd) {
  if (!fd || fd.get() > STDERR_FILENO) return fd;
  return unique_fd{::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1)};
}

struct pipe_ends {
  unique_fd read;
  unique_fd write;
};

// Close-on-exec: the child gets its ends through dup2() only, and a run started meanwhile by
// another thread inherits neither.
std::optional<pipe_ends> make_pipe() {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC) != 0) return std::nullopt;
  pipe_ends ends{above_stdio(unique_fd{fds[0]}), above_stdio(unique_fd{fds[1]})};
  if (!ends.read || !ends.write) return std::nullopt;
  return ends;
}

// Only our ends: O_NONBLOCK on the child's ends would make its reads of stdin fail.
bool set_nonblocking(int fd) {
  const int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "wait status " + std::to_string(status);
}

// posix_spawn's attributes and file actions, destroyed on every path out.
class spawn_setup {
 public:
  spawn_setup() {
    ::posix_spawnattr_init(&attributes_);
    ::posix_spawn_file_actions_init(&actions_);
  }
  spawn_setup(const spawn_setup&) = delete;
  spawn_setup& operator=(const spawn_setup&) = delete;
  ~spawn_setup() {
    ::posix_spawn_file_actions_destroy(&actions_);
    ::posix_spawnattr_destroy(&attributes_);
  }

  /// 0, or the error number of the step that failed.
  int prepare(int stdin_fd, int stderr_fd) {
    // Its own process group, so the timeout also reaches what a script started. Default signal
    // dispositions and an empty mask, so the program inherits neither an ignored signal nor
    // this thread's blocked SIGPIPE.
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    int error = ::posix_spawnattr_setflags(
        &attributes_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (error == 0) error = ::posix_spawnattr_setpgroup(&attributes_, 0);
    if (error == 0) error = ::posix_spawnattr_setsigmask(&attributes_, &none);
    if (error == 0) error = ::posix_spawnattr_setsigdefault(&attributes_, &all);
    if (error == 0) error = ::posix_spawn_file_actions_adddup2(&actions_, stdin_fd, STDIN_FILENO);
    if (error == 0) {
      error =
          ::posix_spawn_file_actions_addopen(&actions_, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    if (error == 0) error = ::posix_spawn_file_actions_adddup2(&actions_, stderr_fd, STDERR_FILENO);
    // Asio's sockets are not close-on-exec: without this the program would inherit the policy
    // connections, the listening sockets and the database.
    if (error == 0) {
      error = ::posix_spawn_file_actions_addclosefrom_np(&actions_, STDERR_FILENO + 1);
    }
    return error;
  }

  const posix_spawnattr_t* attributes() const { return &attributes_; }
  const posix_spawn_file_actions_t* actions() const { return &actions_; }

 private:
  posix_spawnattr_t attributes_{};
  posix_spawn_file_actions_t actions_{};
};

}  // namespace

struct alert_command::child {
  enum class stage : std::uint8_t { running, terminated, killed };

  pid_t pid = -1;
  std::string recipient;
  /// Readable once the child has exited; empty where pidfds are unavailable.
  unique_fd exited;
  unique_fd input;  ///< our end of its stdin, closed once everything is written
  std::string input_text;
  std::size_t input_written = 0;
  unique_fd errors;  ///< our end of its stderr, closed at end of file
  std::string errors_text;
  bool errors_cut = false;
  steady_clock::time_point started;
  /// The timeout, then the end of the SIGTERM grace; none once SIGKILL was sent.
  std::optional<steady_clock::time_point> deadline;
  stage state = stage::running;
  /// Set once reaped; -1 when another waiter took the status.
  std::optional<int> status;
};

alert_command::alert_command(const alerts_settings& settings, std::shared_ptr<spdlog::logger> log)
    : argv_(settings.command),
      timeout_(settings.command_timeout),
      concurrency_(std::max<std::size_t>(settings.command_concurrency, 1)),
      queue_limit_(settings.command_queue),
      log_(std::move(log)) {
  std::array<int, 2> fds{};
  if (::pipe2(fds.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::system_error(errno, std::generic_category(), "alert command wake-up pipe");
  }
  wake_read_ = unique_fd{fds[0]};
  wake_write_ = unique_fd{fds[1]};
  thread_ = std::thread([this] { run(); });
}

alert_command::~alert_command() {
  stop();
}

bool alert_command::submit(std::string recipient, std::string json) {
  bool stopping = false;
  std::size_t waiting = 0;
  {
    const std::lock_guard lock(mutex_);
    stopping = stopping_;
    waiting = waiting_.size();
    if (!stopping && waiting < queue_limit_) {
      json += '\n';
      waiting_.push_back({std::move(recipient), std::move(json)});
    }
  }
  if (!stopping && waiting < queue_limit_) {
    wake();
    return true;
  }
  ++dropped_;
  if (stopping) {
    log_->warn("ALERT COMMAND DROPPED for {}: stopping; the alert is in the database",
               printable(recipient));
  } else {
    log_->warn(
        "ALERT COMMAND DROPPED for {}: {} alert(s) waiting, alerts.command_queue = {}; the alert "
        "is in the database",
        printable(recipient), waiting, queue_limit_);
  }
  return false;
}

void alert_command::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
}

alert_command_stats alert_command::stats() const {
  return {started_.load(),   succeeded_.load(), failed_.load(),
          timed_out_.load(), dropped_.load(),   spawn_errors_.load()};
}

void alert_command::wake() {
  const char byte = 0;
  // A full pipe already holds a wake-up the worker has not read: nothing is lost.
  static_cast<void>(::write(wake_write_.get(), &byte, 1));
}

bool alert_command::start_waiting(std::vector<child>& running) {
  std::vector<job> starting;
  std::size_t abandoned = 0;
  bool stopping = false;
  {
    const std::lock_guard lock(mutex_);
    stopping = stopping_;
    if (stopping) {
      abandoned = waiting_.size();
      waiting_.clear();
    }
    while (running.size() + starting.size() < concurrency_ && !waiting_.empty()) {
      starting.push_back(std::move(waiting_.front()));
      waiting_.pop_front();
    }
  }
  if (abandoned != 0) {
    dropped_ += abandoned;
    log_->warn("ALERT COMMAND STOP: {} waiting alert(s) not run; they are in the database",
               abandoned);
  }
  // Outside the lock: submit() on the network thread never waits for a spawn.
  for (job& j : starting) start(std::move(j), running);
  return !stopping || !running.empty();
}

void alert_command::start(job&& j, std::vector<child>& running) {
  const auto spawn_failed = [&](int error) {
    log_->error("ALERT COMMAND SPAWN FAILED for {}: {}: {}", printable(j.recipient),
                printable(argv_.front()), errno_text(error));
    ++spawn_errors_;
  };
  auto stdin_pipe = make_pipe();
  auto stderr_pipe = stdin_pipe ? make_pipe() : std::nullopt;
  if (!stderr_pipe) return spawn_failed(errno);
  spawn_setup setup;
  if (const int error = setup.prepare(stdin_pipe->read.get(), stderr_pipe->write.get())) {
    return spawn_failed(error);
  }
  std::vector<char*> argv;
  argv.reserve(argv_.size() + 1);
  // posix_spawn's signature predates const; it does not write to the strings.
  for (const std::string& word : argv_) argv.push_back(const_cast<char*>(word.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  // No shell and no PATH search: argv_[0] is an absolute path (checked at load), and every word
  // reaches the program exactly as configured, nothing expanded or split.
  if (const int error = ::posix_spawn(&pid, argv.front(), setup.actions(), setup.attributes(),
                                      argv.data(), environ)) {
    return spawn_failed(error);
  }
  child c;
  c.pid = pid;
  c.recipient = std::move(j.recipient);
  c.exited = unique_fd{open_pidfd(pid)};
  c.input = std::move(stdin_pipe->write);
  c.input_text = std::move(j.input);
  c.errors = std::move(stderr_pipe->read);
  c.started = steady_clock::now();
  c.deadline = c.started + timeout_;
  if (!set_nonblocking(c.input.get()) || !set_nonblocking(c.errors.get())) {
    // Blocking ends could stall the worker; the child still runs out its time and is reaped.
    c.input = unique_fd{};
    c.errors = unique_fd{};
  }
  log_->debug("ALERT COMMAND started pid={} for {}", pid, printable(c.recipient));
  ++started_;
  running.push_back(std::move(c));
  // stdin_pipe->read and stderr_pipe->write close here: with the child's copies the only ones
  // left, end of file on stderr and EPIPE on stdin come from the child.
}

void alert_command::read_errors(child& c) {
  std::array<char, 4096> buffer{};
  for (int reads = 0; c.errors && reads < max_error_reads; ++reads) {
    const ssize_t n = ::read(c.errors.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      c.errors = unique_fd{};
      return;
    }
    const std::size_t room = limits::alert_command_stderr_bytes - c.errors_text.size();
    const std::size_t kept = std::min(room, static_cast<std::size_t>(n));
    c.errors_text.append(buffer.data(), kept);
    c.errors_cut = c.errors_cut || kept < static_cast<std::size_t>(n);
  }
}

void alert_command::tend(child& c, steady_clock::time_point now) {
  while (c.input && c.input_written < c.input_text.size()) {
    const ssize_t n = ::write(c.input.get(), c.input_text.data() + c.input_written,
                              c.input_text.size() - c.input_written);
    if (n > 0) {
      c.input_written += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0 && errno == EPIPE) discard_pending_sigpipe();
    c.input = unique_fd{};  // the child closed its stdin: it wants no more
  }
  // End of file tells the program the object is complete.
  if (c.input && c.input_written == c.input_text.size()) c.input = unique_fd{};
  read_errors(c);
  int status = 0;
  const pid_t reaped = ::waitpid(c.pid, &status, WNOHANG);
  if (reaped == c.pid) {
    c.status = status;
  } else if (reaped < 0 && errno == ECHILD) {
    c.status = -1;
  }
  if (c.status || !c.deadline || now < *c.deadline) return;
  // The group, not just the child: a script's own children are what usually hangs.
  if (c.state == child::stage::running) {
    ::killpg(c.pid, SIGTERM);
    c.state = child::stage::terminated;
    c.deadline = now + limits::alert_command_kill_grace;
  } else {
    ::killpg(c.pid, SIGKILL);
    c.state = child::stage::killed;
    c.deadline.reset();
  }
}

void alert_command::finish(child& c) {
  read_errors(c);
  const auto took =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady_clock::now() - c.started);
  const std::string outcome = *c.status < 0 ? "exit status lost" : describe_status(*c.status);
  std::string_view captured = c.errors_text;
  // The usual final newline would show as '?'.
  while (!captured.empty() && (captured.back() == '\n' || captured.back() == '\r')) {
    captured.remove_suffix(1);
  }
  std::string errors;
  if (!captured.empty()) {
    errors = "; stderr: " + sanitize_for_log(captured, limits::alert_command_stderr_bytes) +
             (c.errors_cut ? "..." : "");
  }
  const std::string recipient = printable(c.recipient);
  if (c.state != child::stage::running) {
    log_->warn(
        "ALERT COMMAND TIMEOUT for {} pid={} after {} ms (alerts.command_timeout {}): "
        "{} by {}{}",
        recipient, c.pid, took.count(), format_duration(timeout_), outcome,
        c.state == child::stage::killed ? "SIGTERM, then SIGKILL" : "SIGTERM", errors);
    ++timed_out_;
  } else if (*c.status == 0) {
    log_->info("ALERT COMMAND for {} pid={} done in {} ms{}", recipient, c.pid, took.count(),
               errors);
    ++succeeded_;
  } else {
    log_->warn("ALERT COMMAND FAILED for {} pid={} after {} ms: {}{}", recipient, c.pid,
               took.count(), outcome, errors);
    ++failed_;
  }
}

void alert_command::run() {
  // A child that closed its stdin turns our write into EPIPE (see tend()).
  block_sigpipe_on_this_thread();

  std::vector<child> running;
  std::vector<pollfd> watched;
  while (start_waiting(running)) {
    watched.assign(1, pollfd{wake_read_.get(), POLLIN, 0});
    std::optional<steady_clock::time_point> wake_at;
    for (const child& c : running) {
      if (c.exited) watched.push_back({c.exited.get(), POLLIN, 0});
      if (c.input) watched.push_back({c.input.get(), POLLOUT, 0});
      if (c.errors) watched.push_back({c.errors.get(), POLLIN, 0});
      auto due = c.deadline;
      if (!c.exited) {
        const auto tick = steady_clock::now() + reap_poll_interval;
        if (!due || tick < *due) due = tick;
      }
      if (due && (!wake_at || *due < *wake_at)) wake_at = due;
    }
    int timeout_ms = -1;
    if (wake_at) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*wake_at - steady_clock::now());
      timeout_ms = static_cast<int>(std::max<std::chrono::milliseconds::rep>(left.count(), 0));
    }
    // EINTR (a signal for the daemon landing on this thread) only means: look again.
    static_cast<void>(::poll(watched.data(), watched.size(), timeout_ms));
    std::array<char, 64> drained{};
    while (::read(wake_read_.get(), drained.data(), drained.size()) > 0) {
    }
    // Every descriptor is non-blocking, so tending each child is simpler than mapping revents
    // back to it, and costs a few system calls for at most alerts.command_concurrency children.
    const auto now = steady_clock::now();
    for (child& c : running) {
      tend(c, now);
      if (c.status) finish(c);
    }
    std::erase_if(running, [](const child& c) { return c.status.has_value(); });
  }
}

}  // namespace rcptguard::daemon
