// The real `rcptguard` binary as an operator and Postfix meet it: exit codes of the CLI, serving
// over TCP and a unix socket, SIGHUP with a bad and a good settings file, and SIGTERM/SIGINT
// draining. Every child is started here, killed by PID in teardown, and watched by a watchdog.
#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/daemon/mail_log_lines.hpp"
#include "tests/server/test_support.hpp"

extern char** environ;

namespace rcptguard::server_test {
namespace {

constexpr const char* binary = RCPTGUARD_BINARY;

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, std::string_view text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

std::size_t count_of(std::string_view haystack, std::string_view needle) {
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
          "-c", dir_.file("empty.toml"),         "-o", "server.listen=" + listen_value(port),
          "-o", "store.path=" + dir_.file("db"), "-o", "log.level=debug"};
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
         << extra_server_lines << "\n[store]\npath = \"" << dir_.file("db") << "\"\n"
         << "[log]\nlevel = \"" << log_level << "\"\n";
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

// ---- CLI -----------------------------------------------------------------------------------

TEST_F(RcptguardBinary, CheckConfigAcceptsTheSampleFile) {
  const std::string sample = std::string(RCPTGUARD_SOURCE_DIR) + "/etc/rcptguard.toml";
  const command_result r = run({"check-config", "-c", sample});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("is valid"), std::string::npos) << r.out;
}

TEST_F(RcptguardBinary, CheckConfigRejectsABrokenFileNamingTheKey) {
  struct broken {
    const char* text;
    const char* key;
  };
  for (const broken& b :
       {broken{"[server]\nlisen = [\"inet:127.0.0.1:10041\"]\n", "server.lisen"},
        broken{"[server]\nmax_connections = 0\n", "server.max_connections"},
        broken{"[log]\nlevel = \"loud\"\n", "log.level"}, broken{"[server\n", "rcptguard.toml"}}) {
    SCOPED_TRACE(b.text);
    write_file(config_path(), b.text);
    const command_result r = run({"check-config", "-c", config_path()});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find(b.key), std::string::npos) << r.err;
  }
}

TEST_F(RcptguardBinary, CheckConfigRejectsABrokenOverride) {
  write_file(config_path(), "");
  const command_result r =
      run({"check-config", "-c", config_path(), "-o", "server.idle_timeout=forever"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("server.idle_timeout"), std::string::npos) << r.err;
}

TEST_F(RcptguardBinary, UsageErrorsExitTwo) {
  const command_result unknown = run({"frobnicate"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("unknown command 'frobnicate'"), std::string::npos) << unknown.err;
  EXPECT_EQ(run({}).exit_code, 2);
  EXPECT_EQ(run({"serve", "--no-such-option"}).exit_code, 2);
}

// ---- serving -------------------------------------------------------------------------------

TEST_F(RcptguardBinary, AnswersOverTcpAndUnixSocket) {
  auto daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  test_client tcp = test_client::tcp(port_);
  test_client local = test_client::unix_socket(unix_path());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tcp.ask(rcpt_request()), dunno_reply);
    EXPECT_EQ(local.ask(rcpt_request()), dunno_reply);
  }
  // log.level=debug from -o took effect: one REQUEST line per request.
  EXPECT_TRUE(eventually([&] { return count_of(daemon->err(), "REQUEST conn=") == 6; }))
      << daemon->err();
  EXPECT_NE(daemon->err().find("LISTEN inet:127.0.0.1:" + std::to_string(port_)),
            std::string::npos);
  struct stat st {};
  ASSERT_EQ(::lstat(unix_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660U) << "server.unix_socket_mode defaults to 0660";
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_FALSE(std::filesystem::exists(unix_path())) << "the daemon removes its socket";
}

TEST_F(RcptguardBinary, RefusesToStartOnAUnixSocketAnotherDaemonServes) {
  auto first = start_daemon_with_overrides();
  ASSERT_TRUE(first);
  child_process second(
      {"serve", "-c", dir_.file("empty.toml"), "-o", "server.listen=[\"unix:" + unix_path() + "\"]",
       "-o", "store.path=" + dir_.file("second.db")},
      dir_.file("second.out"), dir_.file("second.err"));
  EXPECT_EQ(second.wait_exit(5s), 1);
  EXPECT_NE(second.err().find("another process is listening"), std::string::npos) << second.err();
  test_client client = test_client::unix_socket(unix_path());
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply) << "the first daemon keeps its socket";
}

TEST_F(RcptguardBinary, SighupWithABrokenFileKeepsServingTheOldSettings) {
  auto daemon = start_daemon_with_file("info");
  ASSERT_TRUE(daemon);
  test_client before = test_client::tcp(port_);
  ASSERT_EQ(before.ask(rcpt_request()), dunno_reply);

  write_file(config_path(), config_text(port_, "debug", "bogus_key = 1\n"));
  daemon->signal(SIGHUP);
  ASSERT_TRUE(daemon->wait_for_err("RELOAD REJECTED: keeping the running configuration"))
      << daemon->err();
  EXPECT_NE(daemon->err().find("server.bogus_key"), std::string::npos) << daemon->err();
  EXPECT_EQ(daemon->err().find("RELOADED"), std::string::npos);

  EXPECT_EQ(before.ask(rcpt_request()), dunno_reply) << "an open connection keeps working";
  test_client after = test_client::unix_socket(unix_path());
  EXPECT_EQ(after.ask(rcpt_request()), dunno_reply) << "new connections are still accepted";
  // The rejected file asked for debug logging; the running settings stay at info.
  EXPECT_EQ(daemon->err().find("REQUEST conn="), std::string::npos);
  EXPECT_TRUE(daemon->running());
}

TEST_F(RcptguardBinary, SighupWithAValidChangedFileAppliesIt) {
  auto daemon = start_daemon_with_file("info");
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  ASSERT_EQ(client.ask(rcpt_request()), dunno_reply);
  EXPECT_EQ(daemon->err().find("REQUEST conn="), std::string::npos) << "info does not log requests";

  std::string text = config_text(port_, "debug");
  // A startup-only setting changes too: reported, not applied.
  text.replace(text.find(dir_.file("db")), dir_.file("db").size(), dir_.file("other.db"));
  write_file(config_path(), text);
  daemon->signal(SIGHUP);
  ASSERT_TRUE(daemon->wait_for_err("RELOADED")) << daemon->err();
  EXPECT_NE(daemon->err().find("RELOAD store.path changed: takes effect after a restart"),
            std::string::npos)
      << daemon->err();

  EXPECT_EQ(client.ask(rcpt_request("bob@example.test")), dunno_reply);
  EXPECT_TRUE(daemon->wait_for_err("recipient=<bob@example.test>"))
      << "log.level=debug should apply to the running daemon:\n"
      << daemon->err();
}

TEST_F(RcptguardBinary, AllowClientsRefusesOtherTcpPeersAndIsReloadable) {
  auto daemon = start_daemon_with_file("info", "allow_clients = [\"10.0.0.0/8\"]\n");
  ASSERT_TRUE(daemon);
  test_client refused = test_client::tcp(port_);
  refused.send(rcpt_request());
  const read_result result = refused.read_until_closed();
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "");
  EXPECT_TRUE(daemon->wait_for_err("CLIENT NOT ALLOWED peer=127.0.0.1:")) << daemon->err();
  test_client local = test_client::unix_socket(unix_path());
  EXPECT_EQ(local.ask(rcpt_request()), dunno_reply) << "the allowlist is for TCP only";

  write_file(config_path(), config_text(port_, "info", "allow_clients = [\"127.0.0.1\"]\n"));
  daemon->signal(SIGHUP);
  ASSERT_TRUE(daemon->wait_for_err("RELOADED")) << daemon->err();
  test_client allowed = test_client::tcp(port_);
  EXPECT_EQ(allowed.ask(rcpt_request()), dunno_reply);
}

TEST_F(RcptguardBinary, MaxConnectionsRefusesTheNextConnectionAndLogsIt) {
  auto daemon = start_daemon_with_overrides({"server.max_connections=1"});
  ASSERT_TRUE(daemon);
  // The readiness probes were sessions too; wait until the daemon has closed them.
  test_client first;
  ASSERT_TRUE(eventually([&] {
    first = test_client::tcp(port_);
    return first.ask(rcpt_request()) == dunno_reply;
  }));
  test_client second = test_client::unix_socket(unix_path());
  second.send(rcpt_request());
  const read_result result = second.read_until_closed();
  EXPECT_EQ(result.status, read_status::closed) << describe(result);
  EXPECT_EQ(result.bytes, "");
  EXPECT_TRUE(daemon->wait_for_err("CONNECTION LIMIT open=1 max_connections=1")) << daemon->err();
  EXPECT_EQ(first.ask(rcpt_request()), dunno_reply);
}

TEST_F(RcptguardBinary, DropsPrivilegesAfterBinding) {
  const passwd* pw = ::getpwnam("nobody");
  if (::geteuid() != 0 || pw == nullptr) GTEST_SKIP() << "needs root and a 'nobody' account";
  const uid_t nobody = pw->pw_uid;
  // The store is opened after the drop, so it needs a directory nobody can reach and write.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec,
                               std::filesystem::perm_options::add);
  const std::string store_dir = dir_.file("nobody");
  std::filesystem::create_directory(store_dir);
  ASSERT_EQ(::chown(store_dir.c_str(), nobody, pw->pw_gid), 0) << std::strerror(errno);
  // A later -o wins, as with Postfix's -o.
  auto daemon =
      start_daemon_with_overrides({"server.user=nobody", "store.path=" + store_dir + "/db"});
  ASSERT_TRUE(daemon);
  // Sockets accept from bind on, but requests are served only after the drop.
  test_client client = test_client::tcp(port_);
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply);
  const std::string status = read_file("/proc/" + std::to_string(daemon->pid()) + "/status");
  const std::string uid = std::to_string(nobody);
  EXPECT_NE(status.find("Uid:\t" + uid + "\t" + uid + "\t" + uid + "\t" + uid), std::string::npos)
      << status;
  EXPECT_EQ(daemon->err().find("running as root"), std::string::npos) << daemon->err();
}

class SignalTest : public RcptguardBinary, public ::testing::WithParamInterface<int> {};

std::string signal_name(const ::testing::TestParamInfo<int>& param) {
  return param.param == SIGTERM ? "Sigterm" : "Sigint";
}

INSTANTIATE_TEST_SUITE_P(StopSignals, SignalTest, ::testing::Values(SIGTERM, SIGINT), signal_name);

TEST_P(SignalTest, ClosesIdleConnectionsAndExitsZero) {
  auto daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  test_client used = test_client::tcp(port_);
  ASSERT_EQ(used.ask(rcpt_request()), dunno_reply);
  test_client idle = test_client::unix_socket(unix_path());
  ASSERT_TRUE(idle.connected());

  const auto start = steady::now();
  daemon->signal(GetParam());
  for (test_client* client : {&used, &idle}) {
    const read_result result = client->read_until_closed();
    EXPECT_EQ(result.status, read_status::closed) << describe(result);
    EXPECT_EQ(result.bytes, "");
  }
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_LT(steady::now() - start, 5s);
  EXPECT_NE(daemon->err().find("STOPPED"), std::string::npos) << daemon->err();
}

TEST_P(SignalTest, AnswersTheRequestInFlightBeforeExiting) {
  auto daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  ASSERT_EQ(client.ask(rcpt_request()), dunno_reply);
  const std::string request = rcpt_request("late@example.test");
  const std::string first_half = request.substr(0, request.size() / 2);
  ASSERT_TRUE(client.send(first_half));
  // Nothing shows that the daemon has read the half; on loopback it does so within microseconds.
  std::this_thread::sleep_for(50ms);

  daemon->signal(GetParam());
  ASSERT_TRUE(daemon->wait_for_err("SHUTDOWN on signal")) << daemon->err();
  EXPECT_TRUE(eventually([&] { return !test_client::tcp(port_).connected(); }, 2s))
      << "still accepting new connections after the signal";
  EXPECT_TRUE(daemon->running()) << "exited with a request in flight";

  ASSERT_TRUE(client.send(request.substr(first_half.size())));
  EXPECT_EQ(describe(client.read_reply()), dunno_reply);
  const read_result after = client.read_until_closed();
  EXPECT_EQ(after.status, read_status::closed) << describe(after);
  EXPECT_EQ(after.bytes, "");
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_NE(daemon->err().find("recipient=<late@example.test>"), std::string::npos);
}

// ---- Detection and persistence through the daemon ------------------------------------------

/// One message to `recipient` from a sender and client of its own: RCPT, then END-OF-MESSAGE.
std::string flood_message(std::string_view recipient, int n) {
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
std::vector<std::string> flood(test_client& client, std::string_view recipient, int first,
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

std::size_t count_rows(const std::string& db_path, const std::string& sql) {
  // A busy timeout: the daemon may be recovering the WAL of one it replaced (kill -9).
  SQLite::Database db(db_path, SQLite::OPEN_READONLY, 5000);
  return static_cast<std::size_t>(db.execAndGet(sql).getInt64());
}

TEST_F(RcptguardBinary, AFloodIsStillFlaggedAfterARestart) {
  auto daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  {
    test_client client = test_client::tcp(port_);
    const auto replies = flood(client, "bob@example.test", 0, 30);
    EXPECT_EQ(replies.front(), dunno_reply);
    EXPECT_EQ(replies.back().rfind("action=WARN rcptguard: bob@example.test ", 0), 0U)
        << replies.back();
  }
  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_GE(count_rows(dir_.file("db"), "SELECT count(*) FROM flagged"), 1U);

  // Same database, new process: the windows and the open episode come back from SQLite, so the
  // very next message of the flood is flagged again instead of starting from zero.
  daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  EXPECT_TRUE(daemon->wait_for_err("1 open episodes")) << daemon->err();
  test_client client = test_client::tcp(port_);
  const auto replies = flood(client, "bob@example.test", 30, 1);
  EXPECT_EQ(replies.front().rfind("action=WARN rcptguard: bob@example.test ", 0), 0U)
      << replies.front();
  EXPECT_EQ(client.ask(rcpt_request("carol@example.test")), dunno_reply);
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
}

/// One message, then waits until the writer has stored it: a lock taken after this finds the
/// schema created and the writer between transactions.
bool warm_up_store(test_client& client, const std::string& db_path) {
  flood(client, "warmup@example.test", 0, 1);
  return eventually(
      [&] { return count_rows(db_path, "SELECT count(*) FROM recipient_minute") >= 1; });
}

TEST_F(RcptguardBinary, KeepsAnsweringWhileTheDatabaseIsLockedAndLosesNothing) {
  auto daemon = start_daemon_with_overrides({"store.flush_interval=50ms"});
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  ASSERT_TRUE(warm_up_store(client, dir_.file("db")));

  auto locker = std::make_unique<SQLite::Database>(dir_.file("db"), SQLite::OPEN_READWRITE, 5000);
  locker->exec("BEGIN EXCLUSIVE");
  const auto started = std::chrono::steady_clock::now();
  const auto replies = flood(client, "bob@example.test", 0, 30);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(replies.back().rfind("action=WARN ", 0), 0U) << replies.back();
  EXPECT_LT(took, 2s) << "replies waited on the locked database";
  EXPECT_TRUE(daemon->wait_for_err("STORE ")) << daemon->err();
  locker->exec("COMMIT");
  locker.reset();

  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(10s), 0) << daemon->err();
  EXPECT_EQ(count_rows(dir_.file("db"),
                       "SELECT coalesce(sum(accepted), 0) FROM recipient_hourly "
                       "WHERE recipient = 'bob@example.test'"),
            30U)
      << daemon->err();
  EXPECT_GE(count_rows(dir_.file("db"),
                       "SELECT count(*) FROM v_verdicts "
                       "WHERE recipient = 'bob@example.test'"),
            1U);
}

// A followed mail log and the policy hook with END-OF-MESSAGE detection on "auto": a logged
// delivery is its own kind of event, so it neither makes the engine wait for END-OF-MESSAGE
// requests Postfix never sends nor is counted twice; each message counts exactly once.
TEST_F(RcptguardBinary, FollowedLogsAndAutoEndOfMessageDetectionCountEachMessageOnce) {
  const std::string log = dir_.file("mail.log");
  write_file(log, "");
  auto daemon = start_daemon_with_overrides(
      {"ingest.files=[\"" + log + "\"]", "ingest.hosts=[\"mx2\"]", "ingest.poll_interval=100ms",
       "detection.end_of_message_hook=\"auto\"", "store.flush_interval=50ms"});
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(daemon->wait_for_err("INGEST following")) << daemon->err();

  constexpr unsigned logged = 5;
  {
    std::ofstream out(log, std::ios::app);
    for (unsigned n = 0; n < logged; ++n) {
      out << daemon::postfix_message(n, wall_clock_now(), "logged@example.test",
                                     "s" + std::to_string(n) + "@remote.example", "192.0.2.7",
                                     "mx2");
    }
    // Another host's message: not selected by ingest.hosts, so never counted.
    out << daemon::postfix_message(99, wall_clock_now(), "logged@example.test", "x@remote.example",
                                   "192.0.2.8", "mx1");
  }
  const std::string logged_accepted =
      "SELECT coalesce(sum(accepted), 0) FROM recipient_hourly "
      "WHERE recipient = 'logged@example.test'";
  ASSERT_TRUE(eventually([&] { return count_rows(dir_.file("db"), logged_accepted) >= logged; }))
      << daemon->err();

  // Postfix with only the RCPT hook: one RCPT per message, no END-OF-MESSAGE ever. Had the log's
  // deliveries looked like END-OF-MESSAGE requests, "auto" would now hold these RCPTs back.
  constexpr int by_policy = 4;
  test_client client = test_client::tcp(port_);
  for (int n = 0; n < by_policy; ++n) {
    std::string request = rcpt_request("policy@example.test");
    const std::string instance = "instance=2f5f.6b08d7af.aa4ee.0";
    request.replace(request.find(instance), instance.size(),
                    "instance=2f5f.6b08d7af.aa4ee." + std::to_string(n + 1));
    EXPECT_EQ(client.ask(request), dunno_reply);
  }

  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(10s), 0) << daemon->err();
  EXPECT_EQ(count_rows(dir_.file("db"), logged_accepted), logged);
  EXPECT_EQ(count_rows(dir_.file("db"),
                       "SELECT coalesce(sum(accepted), 0) FROM recipient_hourly "
                       "WHERE recipient = 'policy@example.test'"),
            static_cast<std::size_t>(by_policy))
      << daemon->err();
  EXPECT_EQ(count_rows(dir_.file("db"),
                       "SELECT coalesce(sum(attempted), 0) FROM recipient_hourly "
                       "WHERE recipient = 'policy@example.test'"),
            static_cast<std::size_t>(by_policy));
}

// The load and fault tests: bounded, but longer than the others.
class RcptguardBinaryLoad : public RcptguardBinary {
 protected:
  RcptguardBinaryLoad() : RcptguardBinary(100s) {}
};

std::string numbered_rcpt(int n) {
  return minimal_request("protocol_state=RCPT\nrecipient=r" + std::to_string(n % 2000) +
                         "@example.test\nsender=s" + std::to_string(n) +
                         "@remote.example\nclient_address=192.0.2." + std::to_string(n % 250) +
                         "\ninstance=load." + std::to_string(n) + "\n");
}

// The writer cannot write for ten seconds while 200,000 requests arrive: every one is answered,
// every count reaches the database afterwards, and nothing is dropped; what arrived meanwhile
// was merged, not queued.
TEST_F(RcptguardBinaryLoad, ALockedDatabaseLosesNoCountUnderLoad) {
  auto daemon = start_daemon_with_overrides({"store.flush_interval=50ms"});
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  ASSERT_EQ(client.ask(rcpt_request("warmup@example.test")), dunno_reply);
  const std::string attempted = "SELECT coalesce(sum(attempted), 0) FROM recipient_minute";
  ASSERT_TRUE(eventually([&] { return count_rows(dir_.file("db"), attempted) == 1; }));

  auto locker = std::make_unique<SQLite::Database>(dir_.file("db"), SQLite::OPEN_READWRITE, 5000);
  locker->exec("BEGIN EXCLUSIVE");
  const auto locked_at = std::chrono::steady_clock::now();
  constexpr int requests = 200'000;
  constexpr int pipelined = 500;  // requests written before their replies are read
  int answered = 0;
  for (int first = 0; first < requests; first += pipelined) {
    std::string burst;
    for (int n = first; n < first + pipelined; ++n) burst += numbered_rcpt(n);
    ASSERT_TRUE(client.send(burst));
    for (int n = 0; n < pipelined; ++n) {
      const read_result r = client.read_reply();
      ASSERT_EQ(r.status, read_status::reply) << describe(r);
      ++answered;
    }
  }
  EXPECT_EQ(answered, requests);
  std::this_thread::sleep_until(locked_at + 10s);
  locker->exec("ROLLBACK");
  locker.reset();
  // The writer catches up on its own (under a sanitizer this big transaction takes a while).
  EXPECT_TRUE(eventually(
      [&] {
        return count_rows(dir_.file("db"), attempted) == static_cast<std::size_t>(requests) + 1;
      },
      60s))
      << daemon->err();

  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(60s), 0) << daemon->err();
  EXPECT_EQ(count_rows(dir_.file("db"), attempted), static_cast<std::size_t>(requests) + 1);
  const std::string log = daemon->err();
  // The FINAL line, not an earlier SUMMARY: the shutdown flush is the one that could drop.
  const std::size_t final_line = log.find("FINAL ");
  ASSERT_NE(final_line, std::string::npos) << log;
  EXPECT_NE(log.find("store_dropped=0 ", final_line), std::string::npos) << log;
  EXPECT_NE(log.find("STORE WRITE FAILED"), std::string::npos);  // it was really locked
}

// kill -9 while followed logs are being counted, then a restart: the positions commit with the
// records they cover, so each logged message is counted exactly once.
TEST_F(RcptguardBinaryLoad, AKilledDaemonNeitherSkipsNorRecountsFollowedLogLines) {
  const std::string log = dir_.file("mail.log");
  write_file(log, "");
  const std::vector<std::string> overrides{"ingest.files=[\"" + log + "\"]",
                                           "ingest.hosts=[\"mx2\"]", "ingest.poll_interval=50ms",
                                           "store.flush_interval=20ms"};
  const auto append = [&](unsigned first, unsigned count) {
    std::ofstream out(log, std::ios::app);
    for (unsigned n = first; n < first + count; ++n) {
      out << daemon::postfix_message(
          n, wall_clock_now(), "r" + std::to_string(n % 7) + "@example.test",
          "s" + std::to_string(n) + "@remote.example", "192.0.2.9", "mx2");
      if (n % 50 == 0) out.flush();  // the daemon reads while we write
    }
  };
  const std::string counted =
      "SELECT coalesce(sum(accepted), 0) FROM recipient_minute WHERE recipient LIKE 'r%'";

  auto daemon = start_daemon_with_overrides(overrides);
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(daemon->wait_for_err("INGEST following")) << daemon->err();
  // The log grows while the daemon counts it; it is killed half-way, between two of its
  // transactions or in one.
  std::thread writer([&] {
    for (unsigned first = 0; first < 3000; first += 100) {
      append(first, 100);
      std::this_thread::sleep_for(20ms);
    }
  });
  const bool started = eventually([&] { return count_rows(dir_.file("db"), counted) >= 500; }, 20s);
  daemon->signal(SIGKILL);
  writer.join();
  ASSERT_TRUE(started) << daemon->err();
  daemon->wait_exit(10s);
  const std::size_t at_kill = count_rows(dir_.file("db"), counted);

  daemon = start_daemon_with_overrides(overrides);
  ASSERT_TRUE(daemon);
  append(3000, 500);
  EXPECT_TRUE(eventually([&] { return count_rows(dir_.file("db"), counted) >= 3500; }, 60s))
      << "counted " << count_rows(dir_.file("db"), counted) << ", " << at_kill << " at the kill\n"
      << daemon->err();
  daemon->signal(SIGTERM);
  // The writer runs below the network thread: on a machine saturated by other tests (sanitizer
  // builds, ctest -j) its last flush takes a while.
  ASSERT_EQ(daemon->wait_exit(60s), 0) << daemon->err();
  EXPECT_EQ(count_rows(dir_.file("db"), counted), 3500U) << at_kill << " at the kill";
}

// ---- Values Postfix sends, shutdown losses, log tags ---------------------------------------

/// Lines of `log` in which a tag follows itself ("STORE STORE WRITE FAILED"): one component
/// prefixing its tag to text that already carries it.
std::vector<std::string> doubled_tags(const std::string& log) {
  static const std::regex doubled(R"(\b([A-Z][A-Z_-]+) \1\b)");
  std::vector<std::string> found;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    if (std::regex_search(line, doubled)) found.push_back(line);
  }
  return found;
}

// Behind postscreen or XCLIENT Postfix does not know the ports and sends "unknown"; XCLIENT lets
// a port of 99999 through; size and keysize can be "unknown" or empty. The engine, not only the
// parser, takes each as an unknown number: a normal reply, and the connection stays open for the
// next request, as Postfix expects.
TEST_F(RcptguardBinary, AnswersRequestsWithNumbersPostfixDoesNotKnow) {
  auto daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  const std::vector<std::pair<std::string, std::string>> unknown_values{
      {"client_port=58280", "client_port=unknown"},
      {"server_port=25", "server_port=unknown"},
      {"client_port=58280", "client_port=99999"},
      {"size=0", "size=unknown"},
      {"size=0", "size="},
      {"encryption_keysize=0", "encryption_keysize=unknown"},
      {"recipient_count=0", "recipient_count="},
  };
  for (const auto& [postfix_value, replacement] : unknown_values) {
    SCOPED_TRACE(replacement);
    std::string request = rcpt_request();
    request.replace(request.find(postfix_value), postfix_value.size(), replacement);
    EXPECT_EQ(client.ask(request), dunno_reply);
  }
  // All of them at once, at END-OF-MESSAGE too.
  std::string all = rcpt_request("eom@example.test");
  for (const auto& [postfix_value, replacement] : unknown_values) {
    if (all.find(postfix_value) != std::string::npos) {
      all.replace(all.find(postfix_value), postfix_value.size(), replacement);
    }
  }
  EXPECT_EQ(client.ask(all), dunno_reply);
  all.replace(all.find("protocol_state=RCPT"), 19, "protocol_state=END-OF-MESSAGE");
  EXPECT_EQ(client.ask(all), dunno_reply);
  EXPECT_FALSE(client.readable_within(50ms)) << "the daemon closed the connection";
  EXPECT_EQ(client.ask(rcpt_request()), dunno_reply);
  EXPECT_TRUE(eventually([&] {
    return count_of(daemon->err(), "REQUEST conn=") >= unknown_values.size() + 3;
  })) << daemon->err();
  EXPECT_EQ(daemon->err().find("REQUEST REJECTED"), std::string::npos) << daemon->err();
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_EQ(doubled_tags(daemon->err()), std::vector<std::string>{});
}

// The database stays locked through the whole stop_timeout (10 s, the writer's default): what
// the writer still holds is lost. The daemon says so in one line and in its exit status, so a
// supervisor does not take this shutdown for a clean one.
TEST_F(RcptguardBinaryLoad, RecordsLostAtShutdownAreLoggedOnceAndExitThree) {
  auto daemon = start_daemon_with_overrides({"store.flush_interval=50ms"});
  ASSERT_TRUE(daemon);
  test_client client = test_client::tcp(port_);
  ASSERT_TRUE(warm_up_store(client, dir_.file("db")));

  SQLite::Database locker(dir_.file("db"), SQLite::OPEN_READWRITE, 5000);
  locker.exec("BEGIN EXCLUSIVE");
  const auto replies = flood(client, "bob@example.test", 1, 10);
  EXPECT_EQ(replies.front(), dunno_reply);
  ASSERT_TRUE(daemon->wait_for_err("STORE WRITE FAILED")) << daemon->err();

  daemon->signal(SIGTERM);
  // stop_timeout, plus one busy_timeout (2 s) for the attempt in progress, plus slack.
  const std::optional<int> code = daemon->wait_exit(40s);
  locker.exec("ROLLBACK");
  ASSERT_TRUE(code.has_value()) << "still running";
  EXPECT_EQ(*code, 3) << daemon->err();

  const std::string log = daemon->err();
  EXPECT_EQ(count_of(log, "STORE LOST "), 1U) << log;
  std::smatch lost;
  ASSERT_TRUE(std::regex_search(
      log, lost,
      std::regex(R"(error: STORE LOST (\d+) records at shutdown: the database stayed unwritable )"
                 R"(for stop_timeout \(10000 ms\); last failure: database is locked)")))
      << log;
  EXPECT_GT(std::stoul(lost[1].str()), 0U);
  // The FINAL counters agree, and the last line names the exit status.
  EXPECT_NE(log.find("store_dropped=" + lost[1].str() + " "), std::string::npos) << log;
  EXPECT_NE(log.find("STOPPED after serving"), std::string::npos) << log;
  EXPECT_NE(log.find("exit status 3: data lost at shutdown"), std::string::npos) << log;
  EXPECT_EQ(doubled_tags(log), std::vector<std::string>{});
  EXPECT_EQ(count_of(log, "STORE STORE"), 0U);
}

}  // namespace
}  // namespace rcptguard::server_test
