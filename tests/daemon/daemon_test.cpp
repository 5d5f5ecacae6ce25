// The real `rcptguard` binary as an operator and Postfix meet it: exit codes of the CLI, serving
// over TCP and a unix socket, SIGHUP with a bad and a good settings file, and SIGTERM/SIGINT
// draining. Every child is started here, killed by PID in teardown, and watched by a watchdog
// (the harness: tests/daemon/binary_harness.hpp).
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/daemon/binary_harness.hpp"
#include "tests/daemon/mail_log_lines.hpp"
#include "tests/server/test_support.hpp"

namespace rcptguard::server_test {
namespace {

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
  if (have_postfix_group()) {
    EXPECT_EQ(st.st_gid, ::getgrnam("postfix")->gr_gid) << "only Postfix's group may connect";
  }
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(5s), 0) << daemon->err();
  EXPECT_FALSE(std::filesystem::exists(unix_path())) << "the daemon removes its socket";
}

TEST_F(RcptguardBinary, RefusesToStartOnAUnixSocketAnotherDaemonServes) {
  auto first = start_daemon_with_overrides();
  ASSERT_TRUE(first);
  child_process second(
      {"serve", "-c", dir_.file("empty.toml"), "-o", "server.listen=[\"unix:" + unix_path() + "\"]",
       "-o", "store.path=" + dir_.file("second.db"), "-o", "control.socket="},
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

TEST_F(RcptguardBinary, AtMaxConnectionsTheIdleConnectionGivesWay) {
  auto daemon = start_daemon_with_overrides({"server.max_connections=1"});
  ASSERT_TRUE(daemon);
  // The readiness probes were sessions too; wait until the daemon has closed them.
  test_client first;
  ASSERT_TRUE(eventually([&] {
    first = test_client::tcp(port_);
    return first.ask(rcpt_request()) == dunno_reply;
  }));
  test_client second = test_client::unix_socket(unix_path());
  EXPECT_EQ(second.ask(rcpt_request()), dunno_reply) << "the idle connection made room";
  const read_result evicted = first.read_until_closed();
  EXPECT_EQ(evicted.status, read_status::closed) << describe(evicted);
  EXPECT_TRUE(daemon->wait_for_err("CONNECTION LIMIT open=1 max_connections=1: evicted 1 idle"))
      << daemon->err();
  // That a connection in the middle of a request is kept and the newcomer refused is shown in
  // tests/server/listener_test.cpp, where the test can see when the request has been read.
}

std::size_t open_descriptors(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

TEST_F(RcptguardBinary, OutOfFileDescriptorsItRefusesAtOnceAndRecovers) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check tests whether memory is readable by writing it to a pipe: in a process
  // with no descriptor left that fails, every shared_ptr release is reported as a call through
  // an invalid vptr, and -fno-sanitize-recover aborts the daemon. The sanitizer, not the
  // daemon, cannot run out of descriptors; the normal build runs this test.
  GTEST_SKIP() << "a sanitizer build: UBSan needs a free descriptor for its vptr check";
#endif
  auto daemon = start_daemon_with_overrides();
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(eventually([&] { return test_client::tcp(port_).ask(rcpt_request()) == dunno_reply; }));
  // Leave the running daemon room for a few connections only, as a too-low LimitNOFILE would.
  const std::size_t in_use = open_descriptors(daemon->pid());
  const rlimit tight{in_use + 8, in_use + 8};
  ASSERT_EQ(::prlimit(daemon->pid(), RLIMIT_NOFILE, &tight, nullptr), 0) << std::strerror(errno);

  std::vector<test_client> held;
  for (int i = 0; i < 40; ++i) held.push_back(test_client::tcp(port_));
  // Every connection either is a session that answers or was closed without a word; none is
  // left waiting in the backlog.
  std::size_t served = 0;
  std::size_t refused = 0;
  for (auto& client : held) {
    client.send(rcpt_request());  // fails on a connection already refused; the read tells
    const read_result r = client.read_reply(5s);
    if (r.bytes == dunno_reply) {
      ++served;
    } else {
      EXPECT_EQ(r.status, read_status::closed) << describe(r);
      ++refused;
    }
  }
  EXPECT_GT(served, 0U);
  EXPECT_GT(refused, 0U);
  EXPECT_EQ(served + refused, held.size());
  EXPECT_TRUE(daemon->wait_for_err("ACCEPT FAILED: Too many open files; refused")) << daemon->err();

  held.clear();
  // Each closed session frees its descriptor once the daemon has read the close; on a loaded
  // machine under a sanitizer that takes more than the usual few seconds (a bound, not a goal).
  test_client after = test_client::tcp(port_);
  ASSERT_TRUE(eventually(
      [&] {
        after = test_client::tcp(port_);
        return after.ask(rcpt_request()) == dunno_reply;
      },
      30s))
      << "served again once descriptors are free\n"
      << daemon->err();
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(10s), 0) << daemon->err();
  EXPECT_TRUE(std::regex_search(daemon->err(), std::regex("FINAL .*dropped: fd_limit=[1-9]")))
      << daemon->err();
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
