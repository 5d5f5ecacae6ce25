// daemon/alert_command.hpp, with small shell scripts as the command: one run per opening and
// escalation with the alert on stdin, timeouts that kill the process group, failures logged
// with status and stderr, a bounded queue that never blocks submit(), arguments that no shell
// sees, and the contrib scripts. Waits poll for an outcome with a generous bound; the only
// timing asserted is that a hung command cannot hold a test for its whole sleep.
#include "daemon/alert_command.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <utility>

#include "common/json.hpp"
#include "daemon/alert_file.hpp"
#include "tests/common/temp_dir.hpp"

namespace rcptguard::daemon {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::Not;

bool eventually(const std::function<bool()>& condition) {
  const auto deadline = steady_clock::now() + 10s;
  while (steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

decision::episode_record episode(std::string recipient, std::int64_t started,
                                 decision::verdict_level level) {
  decision::episode_record e;
  e.recipient = std::move(recipient);
  e.started = from_unix_seconds(started);
  e.updated = e.started;
  e.peak_level = level;
  e.peak_score = level == decision::verdict_level::defer ? 2.5 : 1.2;
  e.peak_window = "10m";
  e.peak_observed = 40;
  e.peak_baseline = 3;
  e.summary = "40 msgs/10m, baseline 3";
  return e;
}

class AlertCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    logger_ = std::make_shared<spdlog::logger>(
        "alert_command_test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_));
    logger_->set_level(spdlog::level::debug);
  }

  // An executable /bin/sh script in the test's directory.
  std::string script(const std::string& name, const std::string& body) {
    const fs::path path = dir_ / name;
    {
      std::ofstream out(path);
      out << "#!/bin/sh\n" << body << "\n";
    }
    fs::permissions(path, fs::perms::owner_all);
    return path.string();
  }

  alerts_settings settings(std::vector<std::string> argv, std::chrono::milliseconds timeout = 5s,
                           std::size_t concurrency = 2, std::size_t queue = 100) const {
    alerts_settings s = default_config().alerts;
    s.command = std::move(argv);
    s.command_timeout = timeout;
    s.command_concurrency = concurrency;
    s.command_queue = queue;
    return s;
  }

  // Read only once the command is stopped: its thread writes the stream until then.
  std::string log_text() const { return log_.str(); }

  test_support::temp_dir tmp_;
  fs::path dir_ = tmp_.path();
  std::ostringstream log_;
  std::shared_ptr<spdlog::logger> logger_;
};

TEST_F(AlertCommand, RunsOncePerOpeningAndEscalationWithTheAlertOnStdin) {
  const std::string record = script("record", R"(cat > "$1/stdin.$$")");
  alert_command command(settings({record, dir_.string()}), logger_);
  alert_sink sink("", logger_, &command);

  using decision::verdict_level;
  decision::episode_record bob = episode("bob@example.test", 1'700'000'000, verdict_level::warn);
  decision::episode_record ann = episode("ann@example.test", 1'700'000'060, verdict_level::warn);
  sink.write({bob});  // opens: alert
  decision::episode_record bob_peak = bob;
  bob_peak.peak_score = 1.8;  // a new peak at the same level: no alert
  bob_peak.updated = from_unix_seconds(1'700'000'120);
  sink.write({bob_peak, ann});  // ann opens: alert
  decision::episode_record bob_defer = bob_peak;
  bob_defer.peak_level = verdict_level::defer;
  bob_defer.updated = from_unix_seconds(1'700'000'180);
  sink.write({bob_defer});  // escalates: alert
  decision::episode_record bob_end = bob_defer;
  bob_end.ended = true;
  decision::episode_record ann_end = ann;
  ann_end.ended = true;
  sink.write({bob_end, ann_end});  // ends: nothing

  ASSERT_TRUE(eventually([&] { return command.stats().succeeded == 3; }))
      << command.stats().started;
  command.stop();

  const std::set<std::string> expected{alert_json(bob, false) + "\n", alert_json(ann, false) + "\n",
                                       alert_json(bob_defer, true) + "\n"};
  std::set<std::string> received;
  std::set<std::pair<std::string, bool>> alerts;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().rfind("stdin.", 0) != 0) continue;
    const std::string text = read_file(entry.path());
    received.insert(text);
    const json parsed = json::parse(text);  // throws, failing the test, unless valid JSON
    EXPECT_EQ(parsed.at("type"), "episode");
    EXPECT_EQ(parsed.at("attack").at(0), "T1667");
    alerts.emplace(parsed.at("recipient").get<std::string>(), parsed.at("escalated").get<bool>());
  }
  EXPECT_EQ(received, expected);
  EXPECT_EQ(alerts, (std::set<std::pair<std::string, bool>>{{"bob@example.test", false},
                                                            {"ann@example.test", false},
                                                            {"bob@example.test", true}}));
  const alert_command_stats stats = command.stats();
  EXPECT_EQ(stats.started, 3U);
  EXPECT_EQ(stats.failures(), 0U);
  EXPECT_EQ(sink.lines(), 0U);  // no alert file configured
  // Every child reaped: this process has none left.
  const pid_t reaped = ::waitpid(-1, nullptr, WNOHANG);
  const int error = errno;
  EXPECT_EQ(reaped, -1);
  EXPECT_EQ(error, ECHILD);
  EXPECT_THAT(log_text(), HasSubstr("ALERT COMMAND for bob@example.test"));
}

TEST_F(AlertCommand, ATimeoutKillsTheWholeProcessGroup) {
  // The script waits on a child of its own, which must die with it.
  const std::string hang = script("hang", R"(sleep 30 & echo $! > "$1/sleeper"; wait)");
  const auto begin = steady_clock::now();
  alert_command command(settings({hang, dir_.string()}, 1s), logger_);
  ASSERT_TRUE(command.submit("bob@example.test", "{}"));
  ASSERT_TRUE(eventually([&] { return command.stats().timed_out == 1; }));
  command.stop();
  EXPECT_LT(steady_clock::now() - begin, 8s);

  const std::string sleeper_text = read_file(dir_ / "sleeper");
  ASSERT_FALSE(sleeper_text.empty()) << "the script did not start its child within 1s";
  const pid_t sleeper = std::stoi(sleeper_text);
  // Gone, or a zombie waiting for whichever process reaps orphans here.
  EXPECT_TRUE(eventually([&] {
    const std::string stat = read_file("/proc/" + std::to_string(sleeper) + "/stat");
    return stat.empty() || stat.find(") Z ") != std::string::npos;
  }));
  const alert_command_stats stats = command.stats();
  EXPECT_EQ(stats.succeeded + stats.failed, 0U);
  EXPECT_EQ(stats.failures(), 1U);
  EXPECT_THAT(log_text(), HasSubstr("ALERT COMMAND TIMEOUT for bob@example.test"));
  EXPECT_THAT(log_text(), HasSubstr("killed by signal 15 by SIGTERM"));
}

TEST_F(AlertCommand, SigtermIgnoredIsFollowedBySigkill) {
  const std::string stubborn = script("stubborn", "trap '' TERM\nsleep 30");
  const auto begin = steady_clock::now();
  alert_command command(settings({stubborn}, 100ms), logger_);
  ASSERT_TRUE(command.submit("bob@example.test", "{}"));
  ASSERT_TRUE(eventually([&] { return command.stats().timed_out == 1; }));
  command.stop();
  EXPECT_LT(steady_clock::now() - begin, 9s);
  EXPECT_THAT(log_text(), HasSubstr("killed by signal 9 by SIGTERM, then SIGKILL"));
}

TEST_F(AlertCommand, AFailureIsLoggedWithItsExitStatusAndStderr) {
  const std::string fail = script("fail", "echo 'smtp: connection refused' >&2\nexit 3");
  alert_command command(settings({fail}), logger_);
  ASSERT_TRUE(command.submit("bob@example.test", "{}"));
  ASSERT_TRUE(eventually([&] { return command.stats().failed == 1; }));
  command.stop();
  EXPECT_THAT(log_text(), HasSubstr("ALERT COMMAND FAILED for bob@example.test"));
  EXPECT_THAT(log_text(), HasSubstr("exit 3; stderr: smtp: connection refused"));
  EXPECT_EQ(command.stats().failures(), 1U);
}

TEST_F(AlertCommand, StderrIsCappedAndDrainedSoTheProgramNeverBlocksOnIt) {
  // 200 KiB: more than a pipe holds, so the program only ends if stderr is read to the end.
  const std::string chatty =
      script("chatty", "head -c 204800 /dev/zero | tr '\\000' x >&2\nexit 1");
  alert_command command(settings({chatty}), logger_);
  ASSERT_TRUE(command.submit("bob@example.test", "{}"));
  ASSERT_TRUE(eventually([&] { return command.stats().failed == 1; }));
  command.stop();
  EXPECT_EQ(command.stats().timed_out, 0U);
  std::istringstream lines(log_text());
  std::string line;
  std::string failure;
  while (std::getline(lines, line)) {
    if (line.find("ALERT COMMAND FAILED") != std::string::npos) failure = line;
  }
  EXPECT_THAT(failure, HasSubstr("exit 1; stderr: xxxx"));
  EXPECT_THAT(failure, HasSubstr("x..."));
  EXPECT_LT(failure.size(), limits::alert_command_stderr_bytes + 300);
}

TEST_F(AlertCommand, SubmitNeverBlocksAndDropsBeyondTheQueue) {
  const std::string hang = script("hang", "sleep 30");
  alert_command command(settings({hang}, 1s, 1, 2), logger_);
  std::size_t queued = 0;
  const auto begin = steady_clock::now();
  for (int i = 0; i < 50; ++i) {
    if (command.submit("bob@example.test", "{}")) ++queued;
  }
  EXPECT_LT(steady_clock::now() - begin, 2s);  // microseconds in fact; a block would be 1s+
  // One running (if the worker took it yet) and two waiting.
  EXPECT_GE(queued, 2U);
  EXPECT_LE(queued, 3U);
  EXPECT_EQ(command.stats().dropped, 50 - queued);

  const auto stopping = steady_clock::now();
  command.stop();  // the running one gets its 1s, the waiting ones are dropped
  EXPECT_LT(steady_clock::now() - stopping, 8s);
  const alert_command_stats stats = command.stats();
  EXPECT_LE(stats.started, 1U);
  EXPECT_EQ(stats.started + stats.dropped, 50U);
  EXPECT_EQ(stats.timed_out, stats.started);
  EXPECT_FALSE(command.submit("bob@example.test", "{}"));  // stopped
  EXPECT_THAT(log_text(), HasSubstr("ALERT COMMAND DROPPED for bob@example.test"));
}

TEST_F(AlertCommand, ArgumentsReachTheProgramLiterallyWithoutAShell) {
  const std::string print = script("print", R"(out=$1; shift; printf '%s\n' "$@" > "$out")");
  const fs::path pwned = dir_ / "pwned";
  const std::vector<std::string> words{
      "a;b",        "$(touch " + pwned.string() + ")", "`id`",       "*",
      "two  words", "'quoted' \"and\" \\back",         "> redirect", "$HOME"};
  std::vector<std::string> argv{print, (dir_ / "args").string()};
  argv.insert(argv.end(), words.begin(), words.end());
  alert_command command(settings(argv), logger_);
  ASSERT_TRUE(command.submit("bob@example.test", "{}"));
  ASSERT_TRUE(eventually([&] { return command.stats().succeeded == 1; }));
  command.stop();

  std::string expected;
  for (const std::string& w : words) expected += w + "\n";
  EXPECT_EQ(read_file(dir_ / "args"), expected);
  EXPECT_FALSE(fs::exists(pwned));
}

TEST_F(AlertCommand, AProgramThatCannotStartIsASpawnError) {
  alert_command command(settings({(dir_ / "missing").string()}), logger_);
  ASSERT_TRUE(command.submit("bob@example.test", "{}"));
  ASSERT_TRUE(eventually([&] { return command.stats().spawn_errors == 1; }));
  command.stop();
  EXPECT_EQ(command.stats().started, 0U);
  EXPECT_EQ(command.stats().failures(), 1U);
  EXPECT_THAT(log_text(), HasSubstr("ALERT COMMAND SPAWN FAILED for bob@example.test"));
}

TEST_F(AlertCommand, AProgramThatIgnoresItsStdinStillSucceeds) {
  // Exits without reading: writing the alert meets a closed pipe, never a SIGPIPE for us.
  const std::string ignore = script("ignore", "exit 0");
  alert_command command(settings({ignore}), logger_);
  const std::string big(200'000, 'x');
  ASSERT_TRUE(command.submit("bob@example.test", "\"" + big + "\""));
  ASSERT_TRUE(eventually([&] { return command.stats().succeeded == 1; }));
  command.stop();
  EXPECT_EQ(command.stats().failures(), 0U);
}

TEST(ContribAlertScripts, ParseAsShellScripts) {
  for (const char* name : {"alert-mail.sh", "alert-webhook.sh"}) {
    const std::string check =
        std::string{"bash -n '"} + RCPTGUARD_SOURCE_DIR + "/contrib/" + name + "'";
    EXPECT_EQ(std::system(check.c_str()), 0) << name;
  }
}

// contrib/alert-mail.sh run as the command, with a stand-in for sendmail that keeps the mail.
TEST_F(AlertCommand, ContribMailScriptSendsTheAlert) {
  const std::string contrib = std::string{RCPTGUARD_SOURCE_DIR} + "/contrib/";
  const std::string sendmail = script("sendmail",
                                      "printf '%s\\n' \"$*\" > \"$(dirname \"$0\")/mail\"\ncat >> "
                                      "\"$(dirname \"$0\")/mail\"");
  ASSERT_EQ(::setenv("RCPTGUARD_SENDMAIL", sendmail.c_str(), 1), 0);
  alert_command command(settings({contrib + "alert-mail.sh", "security@example.test"}), logger_);
  decision::episode_record e = episode("bob@example.test\r\nBcc: x@example.test", 1'700'000'000,
                                       decision::verdict_level::defer);
  ASSERT_TRUE(command.submit(e.recipient, alert_json(e, true)));
  ASSERT_TRUE(eventually([&] { return command.stats().succeeded + command.stats().failed == 1; }));
  command.stop();
  ::unsetenv("RCPTGUARD_SENDMAIL");
  ASSERT_EQ(command.stats().succeeded, 1U) << log_text();

  const std::string mail = read_file(dir_ / "mail");
  EXPECT_THAT(mail, HasSubstr("-t -i\nTo: security@example.test\n"));
  const std::string headers = mail.substr(0, mail.find("\n\n"));
  EXPECT_THAT(headers, HasSubstr("Subject: [rcptguard] mail flood to bob@example.test"));
  EXPECT_THAT(headers, HasSubstr("escalated to defer"));
  EXPECT_THAT(headers, Not(HasSubstr("\nBcc:")));  // the CR LF in the address was removed
}

}  // namespace
}  // namespace rcptguard::daemon
