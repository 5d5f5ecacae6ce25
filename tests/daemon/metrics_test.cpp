// The Prometheus endpoint: the text format of a known snapshot line by line (HELP and TYPE per
// family, cumulative histogram buckets with +Inf, _sum and _count); the HTTP service in-process
// (200, HEAD, 404, 405, keep-alive, the allowlist, the connection cap, oversized headers); and the
// real daemon under a known load, whose scraped counters must equal its FINAL log line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/metrics_service.hpp"
#include "daemon/metrics_text.hpp"
#include "tests/daemon/binary_harness.hpp"
#include "tests/daemon/mail_log_lines.hpp"
#include "tests/server/test_support.hpp"

namespace rcptguard::server_test {
namespace {

using daemon::daemon_snapshot;
using daemon::format_metrics;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  const auto lines = lines_of(text);
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

/// Sample lines as name{labels} -> value text.
std::map<std::string, std::string> samples_of(const std::string& text) {
  std::map<std::string, std::string> samples;
  for (const auto& line : lines_of(text)) {
    if (line.empty() || line.front() == '#') continue;
    const auto space = line.rfind(' ');
    samples[line.substr(0, space)] = line.substr(space + 1);
  }
  return samples;
}

daemon_snapshot known_snapshot() {
  daemon_snapshot s;
  s.server.requests = 500;
  s.server.dunno = 430;
  s.server.warn = 40;
  s.server.defer = 25;
  s.server.flag = 5;
  s.server.connections_accepted = 12;
  s.server.connections_open = 3;
  s.server.peak_connections = 9;
  s.server.idle_timeouts = 2;
  s.server.connections_evicted = 1;
  s.server.internal_errors_answered = 0;
  s.server.count_drop(server::drop_reason::request_timeout, 4);
  s.server.count_drop(server::drop_reason::client_not_allowed);
  s.server.count_parse_error(protocol::parse_error::line_too_long);
  s.engine.tracked_recipients = 301;
  s.engine.max_tracked_recipients = 1'000'000;
  s.engine.recipient_evictions = 7;
  s.engine.open_episodes = 2;
  s.store.records_written = 1234;
  s.store.records_dropped = 0;
  s.store.keys_folded = 3;
  s.store.write_failures = 1;
  s.store.queue_depth = 17;
  s.store.last_flush_duration = std::chrono::microseconds{2500};
  s.store.max_flush_duration = std::chrono::microseconds{125'000};
  s.commands.started = 4;
  s.commands.failed = 1;
  s.version = "0.1.0";
  s.started = from_unix_seconds(1'700'000'000);
  s.now = from_unix_seconds(1'700'000'090);
  return s;
}

// ---- The text format -------------------------------------------------------------------------

TEST(MetricsText, AKnownSnapshotGivesExactLines) {
  const std::string text = format_metrics(known_snapshot());
  for (const char* line : {
           "# HELP rcptguard_requests_total Policy requests read in full and answered.",
           "# TYPE rcptguard_requests_total counter",
           "rcptguard_requests_total 500",
           "# TYPE rcptguard_verdicts_total counter",
           R"(rcptguard_verdicts_total{verdict="dunno"} 430)",
           R"(rcptguard_verdicts_total{verdict="warn"} 40)",
           R"(rcptguard_verdicts_total{verdict="defer"} 25)",
           R"(rcptguard_verdicts_total{verdict="flag"} 5)",
           "rcptguard_connections_accepted_total 12",
           "# TYPE rcptguard_connections_open gauge",
           "rcptguard_connections_open 3",
           "rcptguard_connections_peak 9",
           "rcptguard_connections_evicted_total 1",
           "rcptguard_idle_timeouts_total 2",
           R"(rcptguard_connections_dropped_total{reason="request_timeout"} 4)",
           R"(rcptguard_connections_dropped_total{reason="client_not_allowed"} 1)",
           R"(rcptguard_connections_dropped_total{reason="parse_error"} 0)",
           R"(rcptguard_request_parse_errors_total{reason="line_too_long"} 1)",
           R"(rcptguard_request_parse_errors_total{reason="wrong_request_type"} 0)",
           "rcptguard_tracked_recipients 301",
           "rcptguard_tracked_recipients_limit 1000000",
           "rcptguard_recipient_evictions_total 7",
           "rcptguard_open_episodes 2",
           "rcptguard_store_records_written_total 1234",
           "rcptguard_store_records_dropped_total 0",
           "rcptguard_store_keys_folded_total 3",
           "rcptguard_store_write_failures_total 1",
           "rcptguard_store_pending_keys 17",
           "rcptguard_store_last_flush_duration_seconds 0.0025",
           "rcptguard_store_max_flush_duration_seconds 0.125",
           "rcptguard_alert_commands_total 4",
           "rcptguard_alert_command_failures_total 1",
           R"(rcptguard_build_info{version="0.1.0"} 1)",
           "rcptguard_start_time_seconds 1700000000",
           "rcptguard_uptime_seconds 90",
       }) {
    EXPECT_TRUE(has_line(text, line)) << line << "\nin:\n" << text;
  }
  // Every drop reason and parse error has a sample, zero or not, so rate() sees it start.
  EXPECT_EQ(samples_of(text).count(R"(rcptguard_connections_dropped_total{reason="fd_limit"})"),
            1U);
  // No spool scanner, no followed logs: no families for them.
  EXPECT_THAT(text, Not(HasSubstr("rcptguard_spool_")));
  EXPECT_THAT(text, Not(HasSubstr("rcptguard_ingest_")));
}

TEST(MetricsText, EveryFamilyHasHelpAndTypeBeforeItsSamplesAndFollowsTheNamingRules) {
  daemon_snapshot s = known_snapshot();
  s.spool = daemon::spool_scan_status{};
  s.ingest = daemon::mail_log_service_stats{};
  const std::string text = format_metrics(s);
  std::map<std::string, std::string> types;  // family -> type
  std::set<std::string> helped;
  std::string current;  // the family whose samples may follow
  const std::regex sample(R"(^([a-z_]+)(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? (\S+)$)");
  for (const auto& line : lines_of(text)) {
    SCOPED_TRACE(line);
    if (line.starts_with("# HELP ")) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      EXPECT_TRUE(helped.insert(name).second) << "HELP twice";
      EXPECT_GT(line.size(), 7 + name.size() + 1) << "empty HELP";
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      std::istringstream words(line.substr(7));
      std::string name;
      std::string type;
      words >> name >> type;
      EXPECT_TRUE(helped.contains(name)) << "TYPE before HELP";
      EXPECT_TRUE(types.emplace(name, type).second) << "TYPE twice";
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << type;
      EXPECT_TRUE(name.starts_with("rcptguard_")) << name;
      EXPECT_EQ(name.ends_with("_total"), type == "counter") << "_total on counters only";
      current = name;
      continue;
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, sample)) << "not a sample line";
    std::string family = m[1];
    if (types[current] == "histogram") {
      for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        if (family == current + suffix) family = current;
      }
    }
    EXPECT_EQ(family, current) << "a sample outside its family's block";
    EXPECT_NO_THROW(static_cast<void>(std::stod(m[4]))) << m[4];
  }
  EXPECT_EQ(types["rcptguard_reply_latency_seconds"], "histogram");
  EXPECT_EQ(types["rcptguard_spool_scan_lag_seconds"], "gauge");
  EXPECT_EQ(types["rcptguard_ingest_unread_bytes"], "gauge");
  EXPECT_EQ(types["rcptguard_build_info"], "gauge");
}

TEST(MetricsText, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  daemon_snapshot s = known_snapshot();
  using std::chrono::microseconds;
  for (const auto d : {microseconds{10}, microseconds{30}, microseconds{30}, microseconds{50},
                       microseconds{2000}, microseconds{2'000'000}}) {
    s.server.reply_latency.observe(d);
  }
  const auto samples = samples_of(format_metrics(s));
  const std::string bucket = "rcptguard_reply_latency_seconds_bucket";
  EXPECT_EQ(samples.at(bucket + R"({le="2.5e-05"})"), "1");
  EXPECT_EQ(samples.at(bucket + R"({le="5e-05"})"), "4") << "a bound is inclusive (le)";
  EXPECT_EQ(samples.at(bucket + R"({le="0.0001"})"), "4");
  EXPECT_EQ(samples.at(bucket + R"({le="0.001"})"), "4");
  EXPECT_EQ(samples.at(bucket + R"({le="0.0025"})"), "5");
  EXPECT_EQ(samples.at(bucket + R"({le="1"})"), "5");
  EXPECT_EQ(samples.at(bucket + R"({le="+Inf"})"), "6");
  EXPECT_EQ(samples.at("rcptguard_reply_latency_seconds_count"), "6");
  EXPECT_DOUBLE_EQ(std::stod(samples.at("rcptguard_reply_latency_seconds_sum")), 2.00212);
  // Buckets never decrease, in the order written, and +Inf is last.
  std::uint64_t previous = 0;
  std::string last;
  for (const auto& line : lines_of(format_metrics(s))) {
    if (!line.starts_with(bucket)) continue;
    const std::uint64_t v = std::stoull(line.substr(line.rfind(' ') + 1));
    EXPECT_GE(v, previous) << line;
    previous = v;
    last = line;
  }
  EXPECT_EQ(last, bucket + R"({le="+Inf"} 6)");
}

TEST(MetricsText, SpoolAndIngestLagWhenTheyRun) {
  daemon_snapshot s = known_snapshot();
  daemon::spool_scan_status spool;
  spool.scans = 3;
  spool.failures = 1;
  spool.last_scan_end = s.now - std::chrono::seconds{30};
  spool.last_scan_duration = std::chrono::milliseconds{1500};
  s.spool = spool;
  daemon::mail_log_service_stats logs;
  logs.unread_bytes = 4096;
  logs.queued_events = 12;
  logs.lines.lines = 1000;
  logs.events_fed = 80;
  logs.stale_events = 2;
  s.ingest = logs;
  const std::string text = format_metrics(s);
  for (const char* line :
       {"rcptguard_spool_scans_total 3", "rcptguard_spool_scan_failures_total 1",
        "rcptguard_spool_scan_lag_seconds 30", "rcptguard_spool_last_scan_duration_seconds 1.5",
        "rcptguard_ingest_unread_bytes 4096", "rcptguard_ingest_queued_events 12",
        "rcptguard_ingest_lines_total 1000", "rcptguard_ingest_events_fed_total 80",
        "rcptguard_ingest_stale_events_total 2"}) {
    EXPECT_TRUE(has_line(text, line)) << line << "\nin:\n" << text;
  }
  // Before the first scan completes the lag runs from the start.
  s.spool->last_scan_end.reset();
  EXPECT_TRUE(has_line(format_metrics(s), "rcptguard_spool_scan_lag_seconds 90"));
}

TEST(MetricsText, TheSampleDashboardUsesOnlyMetricsThatExist) {
  daemon_snapshot s = known_snapshot();
  s.spool = daemon::spool_scan_status{};
  s.ingest = daemon::mail_log_service_stats{};
  std::set<std::string> names;
  for (const auto& [sample, value] : samples_of(format_metrics(s))) {
    names.insert(sample.substr(0, sample.find('{')));
  }
  const std::string dashboard =
      read_file(std::string(RCPTGUARD_SOURCE_DIR) + "/contrib/grafana/rcptguard-dashboard.json");
  ASSERT_FALSE(dashboard.empty());
  const std::regex metric(R"(rcptguard_[a-z_]+)");
  std::size_t used = 0;
  for (auto it = std::sregex_iterator(dashboard.begin(), dashboard.end(), metric);
       it != std::sregex_iterator(); ++it, ++used) {
    EXPECT_TRUE(names.contains(it->str())) << it->str() << " is not a metric";
  }
  EXPECT_GT(used, 20U);
}

TEST(MetricsText, LabelValuesAreEscaped) {
  EXPECT_EQ(daemon::escape_label_value(R"(a"b\c)"
                                       "\n"),
            R"(a\"b\\c\n)");
  daemon_snapshot s = known_snapshot();
  s.version = "1.0\"x";
  EXPECT_TRUE(has_line(format_metrics(s), R"(rcptguard_build_info{version="1.0\"x"} 1)"));
}

// ---- The HTTP service in-process -------------------------------------------------------------

/// The service on its own io_context thread, rendering a fixed body, on a free loopback port.
class MetricsService : public ::testing::Test {
 protected:
  MetricsService()
      : log_(std::make_shared<spdlog::logger>("metrics-test", sink_)), service_(io_, log_, [this] {
          ++renders_;
          return std::string{"rcptguard_requests_total 1\n"};
        }) {
    service_.set_allowlist(networks({"127.0.0.1"}));
    service_.bind("127.0.0.1", 0);
    port_ = service_.port();
    service_.start();
    thread_ = std::thread([this] { io_.run(); });
  }

  ~MetricsService() override {
    boost::asio::post(io_, [this] { service_.stop(); });
    thread_.join();
  }

  static std::vector<cidr> networks(std::initializer_list<const char*> texts) {
    std::vector<cidr> nets;
    for (const char* t : texts) {
      std::string error;
      nets.push_back(*parse_cidr(t, error));
    }
    return nets;
  }

  /// Runs `f` on the service's thread and waits for its result.
  template <typename F>
  auto on_io(F f) {
    std::packaged_task<decltype(f())()> task(std::move(f));
    auto result = task.get_future();
    boost::asio::post(io_, [&task] { task(); });
    return result.get();
  }

  std::string log_text() {
    return on_io([this] { return log_stream_.str(); });
  }

  /// Sends `request` and reads until the service closes the connection.
  read_result exchange(const std::string& request, const char* source = nullptr) {
    test_client client = test_client::tcp_from(source, port_);
    EXPECT_TRUE(client.connected());
    client.send(request);
    return client.read_until_closed();
  }

  std::ostringstream log_stream_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_ =
      std::make_shared<spdlog::sinks::ostream_sink_mt>(log_stream_);
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::io_context io_;
  int renders_ = 0;
  daemon::metrics_service service_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  watchdog watchdog_{30s, [] { ADD_FAILURE() << "watchdog: the test hung"; }};
};

TEST_F(MetricsService, AnswersGetAndHeadOnMetrics) {
  const read_result get =
      exchange("GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(get.status, read_status::closed) << describe(get);
  EXPECT_THAT(get.bytes, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(get.bytes, HasSubstr("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
  EXPECT_THAT(get.bytes, HasSubstr("Content-Length: 27\r\n"));
  EXPECT_TRUE(get.bytes.ends_with("\r\n\r\nrcptguard_requests_total 1\n")) << get.bytes;

  const read_result head =
      exchange("HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(head.bytes, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(head.bytes, HasSubstr("Content-Length: 27\r\n"));
  EXPECT_TRUE(head.bytes.ends_with("\r\n\r\n")) << "no body for HEAD: " << head.bytes;
  EXPECT_EQ(on_io([this] { return service_.stats().scrapes; }), 2U);
}

TEST_F(MetricsService, OtherPathsAre404AndOtherMethods405) {
  const read_result root = exchange("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(root.bytes, HasSubstr("HTTP/1.1 404 Not Found\r\n"));
  const read_result other =
      exchange("GET /metricsx HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(other.bytes, HasSubstr("HTTP/1.1 404 Not Found\r\n"));
  const read_result post = exchange(
      "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(post.bytes, HasSubstr("HTTP/1.1 405 Method Not Allowed\r\n"));
  EXPECT_THAT(post.bytes, HasSubstr("Allow: GET, HEAD\r\n"));
  EXPECT_EQ(on_io([this] { return renders_; }), 0)
      << "nothing rendered for a request that is not a scrape";
}

TEST_F(MetricsService, KeepsAConnectionAliveBetweenScrapes) {
  const read_result both = exchange(
      "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(both.status, read_status::closed) << describe(both);
  EXPECT_EQ(count_of(both.bytes, "HTTP/1.1 200 OK\r\n"), 2U) << both.bytes;
}

TEST_F(MetricsService, RefusesClientsOutsideTheAllowlistAndOversizedHeaders) {
  const read_result refused =
      exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "127.0.0.2");
  EXPECT_EQ(refused.status, read_status::closed) << describe(refused);
  EXPECT_EQ(refused.bytes, "");
  EXPECT_EQ(on_io([this] { return service_.stats().not_allowed; }), 1U);
  EXPECT_THAT(log_text(), HasSubstr("METRICS CLIENT NOT ALLOWED peer=127.0.0.2:"));

  const std::string big(daemon::metrics_service::max_header_bytes, 'a');
  const read_result oversized =
      exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n");
  EXPECT_EQ(oversized.status, read_status::closed) << describe(oversized);
  EXPECT_EQ(oversized.bytes, "");
  EXPECT_EQ(on_io([this] { return service_.stats().bad_requests; }), 1U);
  // Just under the limit is served.
  const std::string fits(daemon::metrics_service::max_header_bytes - 200, 'a');
  const read_result ok = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + fits +
                                  "\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(ok.bytes, HasSubstr("HTTP/1.1 200 OK\r\n"));
  // A body is not part of a scrape.
  const read_result with_body =
      exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
  EXPECT_EQ(with_body.bytes, "");
}

TEST_F(MetricsService, ServesAtMostMaxConnectionsAtOnce) {
  std::vector<test_client> held;
  for (std::size_t i = 0; i < daemon::metrics_service::max_connections; ++i) {
    held.push_back(test_client::tcp(port_));
    ASSERT_TRUE(held.back().connected());
  }
  // Accepted in order, so the ninth finds the eight in place (they wait for a request, which
  // they may for metrics_service::timeout, longer than this test).
  const read_result extra =
      exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(extra.status, read_status::closed) << describe(extra);
  EXPECT_EQ(extra.bytes, "");
  EXPECT_EQ(on_io([this] { return service_.stats().over_limit; }), 1U);
  EXPECT_THAT(log_text(), HasSubstr("METRICS CONNECTION LIMIT"));
  // One held connection closes; a new scraper gets in.
  held.front().close();
  EXPECT_TRUE(eventually([&] {
    const read_result r = exchange("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    return r.bytes.find("HTTP/1.1 200 OK") != std::string::npos;
  }));
}

// ---- The real daemon -------------------------------------------------------------------------

/// GET /metrics over a plain socket; the body, or "" when the reply is not a 200.
std::string scrape(std::uint16_t port, const char* path = "/metrics") {
  test_client client = test_client::tcp(port);
  client.send(std::string{"GET "} + path +
              " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
  const read_result r = client.read_until_closed();
  const auto body = r.bytes.find("\r\n\r\n");
  if (!r.bytes.starts_with("HTTP/1.1 200 ") || body == std::string::npos) return {};
  return r.bytes.substr(body + 4);
}

/// The key=value fields of the FINAL line.
std::map<std::string, std::string> final_fields(const std::string& log) {
  std::map<std::string, std::string> fields;
  const auto at = log.find("FINAL ");
  if (at == std::string::npos) return fields;
  std::istringstream words(log.substr(at, log.find('\n', at) - at));
  for (std::string word; words >> word;) {
    const auto eq = word.find('=');
    if (eq != std::string::npos) fields[word.substr(0, eq)] = word.substr(eq + 1);
  }
  return fields;
}

TEST_F(RcptguardBinary, ScrapedCountersEqualTheFinalLogLine) {
  const std::uint16_t metrics_port = free_tcp_port();
  auto daemon = start_daemon_with_overrides(
      {"metrics.listen=inet:127.0.0.1:" + std::to_string(metrics_port),
       R"(metrics.allow_clients=["127.0.0.1"])", "detection.mode=enforce",
       "detection.thresholds.minute_warn_floor=5", "detection.thresholds.minute_defer_floor=10",
       "detection.thresholds.ten_minutes_warn_floor=5",
       "detection.thresholds.ten_minutes_defer_floor=10", "log.summary_interval=0s"});
  ASSERT_TRUE(daemon);
  EXPECT_TRUE(daemon->wait_for_err(
      "LISTEN metrics http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"))
      << daemon->err();

  // 500 requests: a flood of 60 messages to one recipient (RCPT and END-OF-MESSAGE each) on one
  // connection, 380 ordinary RCPTs to 190 recipients on two more.
  std::vector<std::string> flood_replies;
  {
    test_client client = test_client::tcp(port_);
    flood_replies = flood(client, "bob@example.test", 0, 60);
  }
  const std::string during = scrape(metrics_port);
  ASSERT_FALSE(during.empty());
  // Its start, for whoever reads the test's output.
  const auto head = lines_of(during);
  std::cout << "---- the first lines of a scrape during the load ----\n";
  for (std::size_t i = 0; i < std::min<std::size_t>(head.size(), 25); ++i) {
    std::cout << head[i] << "\n";
  }
  for (int c = 0; c < 2; ++c) {
    test_client client = test_client::tcp(port_);
    for (int n = 0; n < 190; ++n) {
      ASSERT_EQ(client.ask(numbered_rcpt(c * 190 + n)), dunno_reply);
    }
  }
  const auto warned = std::count_if(flood_replies.begin(), flood_replies.end(),
                                    [](auto& r) { return r.starts_with("action=WARN "); });
  const auto deferred = std::count_if(flood_replies.begin(), flood_replies.end(),
                                      [](auto& r) { return r.starts_with("action=DEFER"); });
  EXPECT_GT(warned, 0) << ::testing::PrintToString(flood_replies);
  EXPECT_GT(deferred, 0) << ::testing::PrintToString(flood_replies);

  // After the load, once the daemon has seen every client leave.
  std::map<std::string, std::string> after;
  ASSERT_TRUE(eventually([&] {
    after = samples_of(scrape(metrics_port));
    return after["rcptguard_connections_open"] == "0";
  })) << ::testing::PrintToString(after);
  EXPECT_EQ(after["rcptguard_requests_total"], "500");
  EXPECT_EQ(after["rcptguard_reply_latency_seconds_count"], "500");
  EXPECT_EQ(after[R"(rcptguard_reply_latency_seconds_bucket{le="+Inf"})"], "500");
  EXPECT_EQ(after[R"(rcptguard_verdicts_total{verdict="warn"})"], std::to_string(warned));
  EXPECT_EQ(after[R"(rcptguard_verdicts_total{verdict="defer"})"], std::to_string(deferred));
  EXPECT_EQ(after[R"(rcptguard_build_info{version="0.1.0"})"], "1");

  // Another path, and a client outside metrics.allow_clients.
  test_client lost = test_client::tcp(metrics_port);
  lost.send("GET /other HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(lost.read_until_closed().bytes, HasSubstr("HTTP/1.1 404 "));
  test_client outsider = test_client::tcp_from("127.0.0.2", metrics_port);
  outsider.send("GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const read_result refused = outsider.read_until_closed();
  EXPECT_EQ(refused.status, read_status::closed) << describe(refused);
  EXPECT_EQ(refused.bytes, "");
  EXPECT_TRUE(daemon->wait_for_err("METRICS CLIENT NOT ALLOWED peer=127.0.0.2:")) << daemon->err();

  daemon->signal(SIGTERM);
  ASSERT_EQ(daemon->wait_exit(10s), 0) << daemon->err();
  const auto final = final_fields(daemon->err());
  ASSERT_FALSE(final.empty()) << daemon->err();
  const std::vector<std::pair<std::string, std::string>> same{
      {"requests", "rcptguard_requests_total"},
      {"dunno", R"(rcptguard_verdicts_total{verdict="dunno"})"},
      {"warn", R"(rcptguard_verdicts_total{verdict="warn"})"},
      {"defer", R"(rcptguard_verdicts_total{verdict="defer"})"},
      {"flag", R"(rcptguard_verdicts_total{verdict="flag"})"},
      {"connections", "rcptguard_connections_accepted_total"},
      {"open", "rcptguard_connections_open"},
      {"peak_open", "rcptguard_connections_peak"},
      {"idle_closed", "rcptguard_idle_timeouts_total"},
      {"evicted", "rcptguard_connections_evicted_total"},
      {"internal_errors", "rcptguard_internal_errors_answered_total"},
      {"evictions", "rcptguard_recipient_evictions_total"},
      {"episodes", "rcptguard_open_episodes"},
      {"would_defer", "rcptguard_monitor_would_defer_total"},
      {"correspondent_passes", "rcptguard_correspondent_passes_total"},
      {"store_dropped", "rcptguard_store_records_dropped_total"},
      {"store_failures", "rcptguard_store_write_failures_total"},
      {"alert_commands", "rcptguard_alert_commands_total"},
      {"alert_command_failures", "rcptguard_alert_command_failures_total"},
  };
  for (const auto& [field, metric] : same) {
    ASSERT_TRUE(final.contains(field)) << field << " missing from the FINAL line";
    EXPECT_EQ(after[metric], final.at(field)) << field << " vs " << metric;
  }
  // recipients=TRACKED/MAX
  EXPECT_EQ(
      after["rcptguard_tracked_recipients"] + "/" + after["rcptguard_tracked_recipients_limit"],
      final.at("recipients"));
  EXPECT_THAT(daemon->err(), HasSubstr(" dropped: none ")) << "no drop reason in the FINAL line";
  for (std::size_t i = 0; i < server::drop_reason_count; ++i) {
    const auto reason = server::to_string(static_cast<server::drop_reason>(i));
    EXPECT_EQ(after["rcptguard_connections_dropped_total{reason=\"" + std::string{reason} + "\"}"],
              "0")
        << reason;
  }
  EXPECT_EQ(final.at("requests"), "500");
}

TEST_F(RcptguardBinary, ScrapesShowTheSpoolScannerAndTheFollowedLogs) {
  const std::uint16_t metrics_port = free_tcp_port();
  const std::string log = dir_.file("mail.log");
  write_file(log, "");
  std::filesystem::create_directories(dir_.file("spool"));
  auto daemon = start_daemon_with_overrides(
      {"metrics.listen=inet:127.0.0.1:" + std::to_string(metrics_port), "spool.enabled=true",
       "spool.roots=[\"" + dir_.file("spool") + "\"]", "spool.interval=1h",
       "ingest.files=[\"" + log + "\"]", "ingest.hosts=[\"mx2\"]", "ingest.poll_interval=100ms"});
  ASSERT_TRUE(daemon);
  ASSERT_TRUE(daemon->wait_for_err("INGEST following")) << daemon->err();
  {
    std::ofstream out(log, std::ios::app);
    out << daemon::postfix_message(1, wall_clock_now(), "logged@example.test", "s@remote.example",
                                   "192.0.2.7", "mx2");
  }
  // The first scan runs at once; the message's five lines are read within a poll or two.
  std::map<std::string, std::string> m;
  EXPECT_TRUE(eventually([&] {
    m = samples_of(scrape(metrics_port));
    return m["rcptguard_spool_scans_total"] == "1" && m["rcptguard_ingest_lines_total"] == "5" &&
           m["rcptguard_ingest_events_fed_total"] == "1";
  })) << ::testing::PrintToString(m);
  EXPECT_EQ(m["rcptguard_spool_scan_failures_total"], "0");
  EXPECT_LT(std::stod(m["rcptguard_spool_scan_lag_seconds"]), 60.0);
  EXPECT_EQ(m["rcptguard_ingest_queued_events"], "0");
  EXPECT_EQ(m["rcptguard_ingest_stale_events_total"], "0");
  EXPECT_TRUE(m.contains("rcptguard_ingest_unread_bytes"));
  daemon->signal(SIGTERM);
  EXPECT_EQ(daemon->wait_exit(10s), 0) << daemon->err();
}

TEST_F(RcptguardBinary, CheckConfigAcceptsTheMetricsKeys) {
  write_file(config_path(),
             "[metrics]\nlisten = \"inet:127.0.0.1:10042\"\nallow_clients = [\"127.0.0.1\", "
             "\"192.0.2.0/24\"]\n");
  const command_result ok = run({"check-config", "-c", config_path()});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  const command_result unix_socket =
      run({"check-config", "-c", config_path(), "-o", "metrics.listen=unix:/run/m.sock"});
  EXPECT_EQ(unix_socket.exit_code, 1);
  EXPECT_THAT(unix_socket.err, HasSubstr("metrics.listen"));
}

}  // namespace
}  // namespace rcptguard::server_test
