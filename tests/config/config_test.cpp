// Loading settings: defaults, every kind of error with its position, bounds at and past each
// limit (driven by the table itself), cross-field checks, overrides and reload diffs.
#include "config/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "config/duration.hpp"
#include "config/settings.hpp"
#include "ingest/joiner.hpp"
#include "ingest/reader.hpp"

namespace rcptguard {
namespace {

using namespace std::chrono_literals;
using settings::value_type;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

load_result load(std::string_view text, const std::vector<std::string>& overrides = {}) {
  return load_config_string(text, overrides, "t.toml");
}

// The single error a load produced, or "" after a test failure saying what came instead.
std::string only_error(const load_result& r) {
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors.size(), 1U) << ::testing::PrintToString(r.errors);
  return r.errors.empty() ? std::string{} : r.errors.front();
}

// One setting as a document; the value lands on line 2.
std::string document(const settings::setting& s, std::string_view value) {
  return "[" + std::string{s.section()} + "]\n" + std::string{s.name()} + " = " +
         std::string{value} + "\n";
}

std::string document(std::string_view key, std::string_view value) {
  return document(*settings::find(key), value);
}

// A value for every key that differs from its default; the coverage test below keeps it whole.
const std::map<std::string_view, std::string_view> non_default_values{
    {"server.listen", R"(["unix:/run/rcptguard.sock"])"},
    {"server.allow_clients", R"(["10.0.0.0/8"])"},
    {"server.unix_socket_mode", R"("0600")"},
    {"server.unix_socket_group", R"("mail")"},
    {"server.user", R"("rcptguard")"},
    {"server.max_connections", "10"},
    {"server.max_connections_per_client", "4"},
    {"server.idle_timeout", R"("5m")"},
    {"server.request_timeout", R"("2s")"},
    {"server.on_internal_error", R"("disconnect")"},
    {"limits.max_line", "4096"},
    {"limits.max_attributes", "64"},
    {"limits.max_request", "131072"},
    {"log.target", R"("syslog")"},
    {"log.file", R"("/var/log/rcptguard.log")"},
    {"log.level", R"("debug")"},
    {"log.summary_interval", R"("0s")"},
    {"store.path", R"("/var/lib/rcptguard/rcptguard.db")"},
    {"store.flush_interval", R"("2s")"},
    {"store.max_pending_keys", "5000"},
    {"store.writer_nice", "10"},
    {"store.retention", R"("30d")"},
    {"store.history_weeks", "12"},
    {"store.prune_interval", R"("10m")"},
    {"ingest.files", R"(["/var/log/mail.log"])"},
    {"ingest.instances", R"(["postfix-in"])"},
    {"ingest.hosts", R"(["mx2.example.test"])"},
    {"ingest.delivery_agents", R"(["lmtp", "smtp"])"},
    {"ingest.utc_offset", R"("+01:00")"},
    {"ingest.poll_interval", R"("2s")"},
    {"ingest.message_expiry", R"("4h")"},
    {"ingest.max_open_messages", "5000"},
    {"ingest.max_line", "8192"},
    {"alerts.file", R"("/var/log/rcptguard/alerts.jsonl")"},
    {"alerts.command", R"(["/usr/local/bin/alert-mail.sh", "security@example.test"])"},
    {"alerts.command_timeout", R"("30s")"},
    {"alerts.command_concurrency", "4"},
    {"alerts.command_queue", "500"},
    {"metrics.listen", R"("inet:127.0.0.1:10042")"},
    {"metrics.allow_clients", R"(["192.0.2.10", "2001:db8::/32"])"},
    {"cluster.redis", R"("unix:/run/redis/redis-server.sock")"},
    {"cluster.user", R"("rcptguard")"},
    {"cluster.password", R"("s3cret")"},
    {"cluster.node", R"("mx2.example.test")"},
    {"cluster.interval", R"("500ms")"},
    {"cluster.timeout", R"("100ms")"},
    {"cluster.max_age", R"("3s")"},
    {"cluster.key_prefix", R"("mx:")"},
    {"cluster.max_keys", "50000"},
    {"cluster.max_pull", "100"},
    {"cluster.max_correspondents", "500"},
    {"cluster.min_count", "3"},
    {"cluster.max_recipients", "2000"},
    {"control.socket", R"("/run/rcptguard/control.sock")"},
    {"control.socket_mode", R"("0600")"},
    {"control.group", R"("root")"},
    {"spool.enabled", "true"},
    {"spool.interval", R"("1m")"},
    {"spool.roots", R"(["/var/vmail"])"},
    {"spool.virtual_roots", R"(["/var/vmail/example.test"])"},
    {"spool.virtual_owner", R"(["root", "5000"])"},
    {"spool.domains", R"(["example.test"])"},
    {"spool.map", R"(["bob=robert@example.test", "/home/ann/Maildir=ann@example.test"])"},
    {"spool.min_repeats", "5"},
    {"spool.window", R"("30m")"},
    {"spool.retention", R"("48h")"},
    {"spool.check_owner", "false"},
    {"spool.max_message_bytes", "10485760"},
    {"spool.max_header_bytes", "65536"},
    {"spool.max_mime_depth", "16"},
    {"spool.max_mime_parts", "500"},
    {"spool.max_time_per_file", R"("2s")"},
    {"detection.mode", R"("enforce")"},
    {"detection.defer_action", R"("DEFER 4.7.1")"},
    {"detection.end_of_message_hook", R"("present")"},
    {"detection.recipient_delimiters", R"("+-")"},
    {"detection.ipv6_prefix", "56"},
    {"detection.max_tracked_recipients", "50000"},
    {"detection.pair_slots", "4096"},
    {"detection.correspondent_slots", "4096"},
    {"detection.client_session_slots", "4096"},
    {"detection.client_connection_slots", "4096"},
    {"detection.max_open_transactions", "1024"},
    {"detection.max_recipients_per_transaction", "500"},
    {"detection.transaction_timeout", R"("1h")"},
    {"detection.detached_transaction_grace", R"("5s")"},
    {"detection.correspondent_min_age", R"("2h")"},
    {"detection.episode_peak_step", "1.5"},
    {"detection.idle_expiry", R"("2d")"},
    {"detection.allow_recipients", R"(["postmaster@example.test"])"},
    {"detection.allow_senders", R"(["*@lists.example.test"])"},
    {"detection.allow_clients", R"(["192.0.2.0/24"])"},
    // Warn and defer values each one step up, so they also hold together (warn <= defer).
    {"detection.thresholds.minute_warn_floor", "13"},
    {"detection.thresholds.minute_warn_factor", "31.0"},
    {"detection.thresholds.minute_defer_floor", "31"},
    {"detection.thresholds.minute_defer_factor", "61.0"},
    {"detection.thresholds.ten_minutes_warn_floor", "21"},
    {"detection.thresholds.ten_minutes_warn_factor", "9.0"},
    {"detection.thresholds.ten_minutes_defer_floor", "41"},
    {"detection.thresholds.ten_minutes_defer_factor", "16.0"},
    {"detection.thresholds.hour_warn_floor", "61"},
    {"detection.thresholds.hour_warn_factor", "6.0"},
    {"detection.thresholds.hour_defer_floor", "121"},
    {"detection.thresholds.hour_defer_factor", "11.0"},
    {"detection.thresholds.day_warn_floor", "401"},
    {"detection.thresholds.day_warn_factor", "5.0"},
    {"detection.thresholds.day_defer_floor", "1001"},
    {"detection.thresholds.day_defer_factor", "9.0"},
    {"detection.thresholds.warn_score", "1.5"},
    {"detection.thresholds.defer_score", "2.5"},
    {"detection.thresholds.warn_exit_score", "0.75"},
    {"detection.thresholds.defer_exit_score", "1.5"},
    {"detection.thresholds.cool_down", R"("30m")"},
    {"detection.thresholds.amplifier_gate", "0.75"},
    {"detection.thresholds.sender_diversity_floor", "40"},
    {"detection.thresholds.sender_diversity_factor", "5.0"},
    {"detection.thresholds.sender_diversity_weight", "0.25"},
    {"detection.thresholds.client_diversity_floor", "30"},
    {"detection.thresholds.client_diversity_weight", "0.5"},
    {"detection.thresholds.single_client_share", "0.9"},
    {"detection.thresholds.single_client_min_messages", "30"},
    {"detection.thresholds.single_client_weight", "0.25"},
    {"detection.thresholds.connection_rate_min_connections", "25"},
    {"detection.thresholds.connection_rate_share", "0.5"},
    {"detection.thresholds.connection_rate_weight", "0.75"},
    {"detection.thresholds.concentration_share", "0.5"},
    {"detection.thresholds.concentration_min_total", "500"},
    {"detection.thresholds.concentration_weight", "0.25"},
    {"detection.thresholds.evidence_min_repeats", "3"},
    {"detection.thresholds.evidence_max_age", R"("12h")"},
    {"detection.thresholds.evidence_weight", "1.0"},
    {"detection.thresholds.baseline_ceiling_per_hour", "500.0"},
    {"detection.thresholds.baseline_spread_weight", "2.0"},
    {"detection.thresholds.burst_warn_factor", "4.0"},
    {"detection.thresholds.burst_defer_factor", "7.0"},
    {"detection.enforce_action", R"("flag")"},
    {"detection.flag_header", R"("X-Flood")"},
    {"detection.hard_defer_score", "3.5"},
    {"detection.baseline.min_history_hours", "336"},
    {"detection.baseline.cold_start_hours", "48"},
    {"detection.baseline.weeks", "6"},
    {"detection.baseline.recent_days", "14"},
    {"detection.baseline.max_rise_per_day", "0.2"},
    {"detection.baseline.lookahead_hours", "3"},
    {"detection.baseline.prior_quantile", "0.75"},
    {"detection.baseline.prior_floor_hourly", "0.5"},
    {"detection.baseline.prior_min_recipients", "50"},
};

// Keys whose non-default value is only valid together with others (a relation check); the
// tests that set one key at a time set these as well and compare against them.
const std::map<std::string_view, std::vector<std::string>> companions{
    {"ingest.files",
     {R"(ingest.instances=["postfix-in"])", R"(detection.end_of_message_hook="absent")"}},
};

std::vector<std::string> companions_of(std::string_view key) {
  const auto it = companions.find(key);
  return it == companions.end() ? std::vector<std::string>{} : it->second;
}

// default_config() with the companions of `key`: what setting `key` alone is compared to.
config defaults_for(std::string_view key) {
  const load_result r = load_config_string("", companions_of(key), "t.toml");
  EXPECT_TRUE(r.ok()) << key << ": " << ::testing::PrintToString(r.errors);
  return r.ok() ? *r.settings : default_config();
}

// Settings whose bounds tests need partners moved out of the way, at a bound or beyond it:
// max_line <= max_request, warn points <= defer points, exit scores < entry scores, baseline
// samples within the loaded history.
std::map<std::string, std::vector<std::string>> make_partners() {
  const std::string t = "detection.thresholds.";
  std::map<std::string, std::vector<std::string>> partners{
      {"limits.max_line", {"limits.max_request=16777216"}},
      {"limits.max_request", {"limits.max_line=256"}},
      {t + "warn_score", {t + "defer_score=20", t + "warn_exit_score=0"}},
      {t + "defer_score",
       {t + "warn_score=0.1", t + "warn_exit_score=0", t + "defer_exit_score=0"}},
      {t + "warn_exit_score", {t + "warn_score=20", t + "defer_score=20"}},
      {t + "defer_exit_score", {t + "defer_score=20"}},
      {"detection.baseline.weeks", {"store.history_weeks=104"}},
      {"detection.baseline.recent_days", {"store.history_weeks=104"}},
      {"store.history_weeks", {"detection.baseline.weeks=1", "detection.baseline.recent_days=7"}},
      {"spool.window", {"spool.retention=30d"}},
      {"spool.retention", {"spool.window=1m"}},
  };
  for (const std::string window : {"minute", "ten_minutes", "hour", "day"}) {
    const std::string w = t + window;
    partners[w + "_warn_floor"] = {w + "_defer_floor=1000000"};
    partners[w + "_defer_floor"] = {w + "_warn_floor=1"};
    partners[w + "_warn_factor"] = {w + "_defer_factor=1000"};
    partners[w + "_defer_factor"] = {w + "_warn_factor=0.1"};
  }
  return partners;
}

const std::map<std::string, std::vector<std::string>> partner_override = make_partners();

std::vector<std::string> partner_of(std::string_view key) {
  const auto it = partner_override.find(std::string{key});
  if (it == partner_override.end()) return {};
  return it->second;
}

bool is_ranged(const settings::setting& s) {
  return s.type == value_type::integer || s.type == value_type::duration ||
         s.type == value_type::file_mode;
}

// `v` written the way the sample file writes values of this setting's type.
std::string spelled(const settings::setting& s, std::int64_t v) {
  if (s.type == value_type::duration) {
    return "\"" + format_duration(std::chrono::milliseconds{v}) + "\"";
  }
  if (s.type == value_type::file_mode) {
    std::string digits(4, '0');
    for (auto it = digits.rbegin(); it != digits.rend(); ++it, v >>= 3) {
      *it = static_cast<char>('0' + (v & 7));
    }
    return "\"" + digits + "\"";
  }
  return std::to_string(v);
}

TEST(Defaults, LoadFromAnEmptyFile) {
  const load_result r = load("");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  const config& c = *r.settings;
  EXPECT_EQ(c.server.listen, std::vector<std::string>{"inet:127.0.0.1:10041"});
  EXPECT_EQ(c.server.allow_clients, (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
  EXPECT_EQ(c.server.unix_socket_mode, 0660U);
  EXPECT_EQ(c.server.unix_socket_group, "postfix");
  EXPECT_EQ(c.server.user, "");
  EXPECT_EQ(c.server.max_connections, 1024U);
  EXPECT_EQ(c.server.max_connections_per_client, 512U);
  EXPECT_EQ(c.server.idle_timeout, 600s);
  EXPECT_EQ(c.server.request_timeout, 10s);
  EXPECT_EQ(c.server.on_internal_error, internal_error_policy::fail_open);
  EXPECT_EQ(c.log.target, log_target::stderr_stream);
  EXPECT_EQ(c.log.file, "");
  EXPECT_EQ(c.log.level, log_level::info);
  EXPECT_EQ(c.log.summary_interval, 60s);
  EXPECT_EQ(c.store.path, "rcptguard.db");
  EXPECT_EQ(c.store.flush_interval, 1s);
  EXPECT_EQ(c.store.writer_nice, 0);
  EXPECT_EQ(c.store.max_pending_keys, 2'000'000U);
  EXPECT_EQ(c.store.retention, 60 * 24h);
  EXPECT_EQ(c.store.history_weeks, 8U);
  EXPECT_EQ(c.store.prune_interval, 1h);
  EXPECT_FALSE(c.spool.enabled);
  EXPECT_EQ(c.spool.interval, 5min);
  EXPECT_EQ(c.spool.roots, (std::vector<std::string>{"/var/mail", "/var/spool/mail"}));
  EXPECT_TRUE(c.spool.domains.empty());
  EXPECT_TRUE(c.spool.map.empty());
  EXPECT_EQ(c.spool.min_repeats, 3U);
  EXPECT_EQ(c.spool.window, 1h);
  EXPECT_EQ(c.spool.retention, 24h);
  EXPECT_TRUE(c.spool.check_owner);
  EXPECT_EQ(c.spool.max_message_bytes, 64U << 20U);
  EXPECT_EQ(c.spool.max_header_bytes, 102'400U);
  EXPECT_EQ(c.spool.max_mime_depth, 64U);
  EXPECT_EQ(c.spool.max_mime_parts, 1000U);
  EXPECT_EQ(c.spool.max_time_per_file, 10s);
  EXPECT_EQ(c.detection.mode, detection_mode::monitor);
  EXPECT_EQ(c.detection.defer_action.verb, protocol::action_verb::defer_if_permit);
  EXPECT_EQ(c.detection.defer_action.text, "4.2.1");
  EXPECT_EQ(c.metrics.listen, "") << "no metrics endpoint unless asked for";
  EXPECT_EQ(c.metrics.allow_clients, (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
  EXPECT_EQ(c.cluster.redis, "") << "no cluster unless asked for";
  EXPECT_EQ(c.cluster.interval, std::chrono::milliseconds(250));
  EXPECT_EQ(c.cluster.timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(c.detection.cluster_max_age, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.cluster.key_prefix, "rcptguard:");
  EXPECT_EQ(c.control.socket, "rcptguard.control");
  EXPECT_EQ(c.control.socket_mode, 0660U);
  EXPECT_EQ(c.control.group, "") << "the daemon's group";
}

TEST(Defaults, LimitsAgreeWithTheProtocolLibrary) {
  const protocol::limits table = default_config().limits;
  const protocol::limits compiled{};
  EXPECT_EQ(table.max_line, compiled.max_line);
  EXPECT_EQ(table.max_attributes, compiled.max_attributes);
  EXPECT_EQ(table.max_request, compiled.max_request);
}

TEST(Defaults, DefaultConfigIsTheEmptyFile) {
  EXPECT_TRUE(changed_settings(default_config(), *load("").settings).empty());
}

TEST(Table, KeysAreUniqueAndInAKnownSection) {
  std::set<std::string_view> keys;
  std::set<std::string_view> sections;
  for (const auto& section : settings::sections()) sections.insert(section.name);
  for (const auto& s : settings::all()) {
    EXPECT_TRUE(keys.insert(s.key).second) << s.key;
    EXPECT_TRUE(sections.contains(s.section())) << s.key;
    EXPECT_FALSE(s.doc.empty()) << s.key;
    if (is_ranged(s)) {
      EXPECT_LE(s.min, s.max) << s.key;
    }
    EXPECT_EQ(settings::find(s.key), &s);
  }
  EXPECT_EQ(settings::find("server.nope"), nullptr);
}

TEST(Table, NonDefaultValuesCoverEveryKey) {
  for (const auto& s : settings::all()) EXPECT_TRUE(non_default_values.contains(s.key)) << s.key;
  EXPECT_EQ(non_default_values.size(), settings::all().size());
}

TEST(Table, EveryKeyFillsItsOwnField) {
  for (const auto& [key, value] : non_default_values) {
    const config defaults = defaults_for(key);
    const load_result r = load(document(key, value), companions_of(key));
    ASSERT_TRUE(r.ok()) << key << ": " << ::testing::PrintToString(r.errors);
    const auto changes = changed_settings(defaults, *r.settings);
    ASSERT_EQ(changes.size(), 1U) << key;
    EXPECT_EQ(changes.front().key, key);
  }
}

TEST(Values, AreStoredTyped) {
  std::string doc;
  std::string_view section;
  for (const auto& s : settings::all()) {
    if (s.section() != section) doc += "[" + std::string{section = s.section()} + "]\n";
    doc += std::string{s.name()} + " = " + std::string{non_default_values.at(s.key)} + "\n";
  }
  const load_result r = load(doc);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  const config& c = *r.settings;
  EXPECT_EQ(c.server.unix_socket_mode, 0600U);
  EXPECT_EQ(c.server.max_connections_per_client, 4U);
  EXPECT_EQ(c.server.idle_timeout, 5min);
  EXPECT_EQ(c.server.on_internal_error, internal_error_policy::disconnect);
  EXPECT_EQ(c.limits.max_line, 4096U);
  EXPECT_EQ(c.log.target, log_target::syslog);
  EXPECT_EQ(c.log.level, log_level::debug);
  EXPECT_EQ(c.log.summary_interval, 0s);
  EXPECT_EQ(c.store.retention, 30 * 24h);
  EXPECT_EQ(c.store.writer_nice, 10);
  EXPECT_TRUE(c.spool.enabled);
  EXPECT_FALSE(c.spool.check_owner);
  EXPECT_EQ(c.spool.window, 30min);
  EXPECT_EQ(c.spool.max_message_bytes, 10U << 20U);
  EXPECT_EQ(c.spool.max_time_per_file, 2s);
  EXPECT_EQ(c.ingest.files, std::vector<std::string>{"/var/log/mail.log"});
  EXPECT_EQ(c.ingest.message_expiry, 4h);
  EXPECT_EQ(c.ingest.max_open_messages, 5000U);
  EXPECT_EQ(c.alerts.file, "/var/log/rcptguard/alerts.jsonl");
  EXPECT_EQ(c.alerts.command,
            (std::vector<std::string>{"/usr/local/bin/alert-mail.sh", "security@example.test"}));
  EXPECT_EQ(c.alerts.command_timeout, 30s);
  EXPECT_EQ(c.alerts.command_concurrency, 4U);
  EXPECT_EQ(c.alerts.command_queue, 500U);
  EXPECT_EQ(c.metrics.listen, "inet:127.0.0.1:10042");
  EXPECT_EQ(c.metrics.allow_clients, (std::vector<std::string>{"192.0.2.10", "2001:db8::/32"}));
  EXPECT_EQ(c.cluster.redis, "unix:/run/redis/redis-server.sock");
  EXPECT_EQ(c.cluster.user, "rcptguard");
  EXPECT_EQ(c.cluster.password, "s3cret");
  EXPECT_EQ(c.cluster.node, "mx2.example.test");
  EXPECT_EQ(c.cluster.interval, std::chrono::milliseconds(500));
  EXPECT_EQ(c.cluster.timeout, std::chrono::milliseconds(100));
  EXPECT_EQ(c.detection.cluster_max_age, std::chrono::milliseconds(3000));
  EXPECT_EQ(c.cluster.key_prefix, "mx:");
  EXPECT_EQ(c.cluster.max_keys, 50000);
  EXPECT_EQ(c.cluster.max_pull, 100);
  EXPECT_EQ(c.cluster.max_correspondents, 500);
  EXPECT_EQ(c.cluster.min_count, 3);
  EXPECT_EQ(c.detection.max_cluster_recipients, 2000U);
  EXPECT_EQ(c.control.socket, "/run/rcptguard/control.sock");
  EXPECT_EQ(c.control.socket_mode, 0600U);
  EXPECT_EQ(c.control.group, "root");
  EXPECT_EQ(c.detection.mode, detection_mode::enforce);
  EXPECT_EQ(c.detection.end_of_message_hook, decision::eom_hook::present);
  EXPECT_EQ(c.detection.defer_action.verb, protocol::action_verb::defer);
  EXPECT_EQ(c.detection.transaction_timeout, 1h);
  EXPECT_EQ(c.detection.defaults.ten_minutes.warn_floor, 21U);
  EXPECT_DOUBLE_EQ(c.detection.defaults.ten_minutes.defer_factor, 16.0);
  EXPECT_EQ(c.detection.defaults.cool_down, 30min);
  EXPECT_DOUBLE_EQ(c.detection.baseline.max_rise_per_day, 0.2);
  EXPECT_DOUBLE_EQ(c.detection.defaults.burst_warn_factor, 4.0);
  EXPECT_EQ(c.detection.baseline.cold_start_hours, 48U);
  EXPECT_DOUBLE_EQ(c.detection.defaults.burst_defer_factor, 7.0);
  EXPECT_EQ(c.detection.enforce_action, decision::flood_action::flag);
  EXPECT_EQ(c.detection.flag_header, "X-Flood");
  EXPECT_DOUBLE_EQ(c.detection.hard_defer_score, 3.5);
  EXPECT_EQ(c.detection.baseline.prior_min_recipients, 50U);
  EXPECT_EQ(changed_settings(default_config(), c).size(), settings::all().size());
}

TEST(Values, DurationAcceptsIntegerSeconds) {
  const load_result r = load(document("server.idle_timeout", "300"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.settings->server.idle_timeout, 300s);
  EXPECT_THAT(only_error(load(document("server.request_timeout", "1000"))),
              HasSubstr("server.request_timeout = 1000 (seconds): out of range 100ms..5m"));
}

TEST(Bounds, ExactlyAtMinAndMaxAreAccepted) {
  for (const auto& s : settings::all()) {
    if (!is_ranged(s)) continue;
    for (const std::int64_t v : {s.min, s.max}) {
      const load_result r = load(document(s, spelled(s, v)), partner_of(s.key));
      EXPECT_TRUE(r.ok()) << s.key << " = " << spelled(s, v) << ": "
                          << ::testing::PrintToString(r.errors);
    }
  }
}

TEST(Bounds, OneBelowMinAndOneAboveMaxAreRefused) {
  for (const auto& s : settings::all()) {
    if (!is_ranged(s)) continue;
    std::vector<std::string> outside{spelled(s, s.max + 1)};
    // Below zero has no duration or mode spelling; integer seconds give durations one.
    if (s.min > 0) outside.push_back(spelled(s, s.min - 1));
    if (s.min == 0 && s.type == value_type::duration) outside.emplace_back("-1");
    for (const std::string& value : outside) {
      const std::string error = only_error(load(document(s, value), partner_of(s.key)));
      EXPECT_THAT(error,
                  AllOf(StartsWith("t.toml:2:"), HasSubstr(std::string{s.key} + " = " + value),
                        HasSubstr(": out of range ")))
          << s.key;
    }
  }
}

TEST(Bounds, RealsAtMinAndMaxAreAcceptedAndJustOutsideRefused) {
  for (const auto& s : settings::all()) {
    if (s.type != value_type::real) continue;
    for (const double v : {s.real_min, s.real_max}) {
      const std::string shown = settings::format_real(v);
      const load_result r = load(document(s, shown), partner_of(s.key));
      EXPECT_TRUE(r.ok()) << s.key << " = " << shown << ": " << ::testing::PrintToString(r.errors);
    }
    const double below = std::nextafter(s.real_min, -1e300);
    const double above = std::nextafter(s.real_max, 1e300);
    for (const double v : {below, above}) {
      const std::string shown = settings::format_real(v);
      EXPECT_THAT(only_error(load(document(s, shown), partner_of(s.key))),
                  AllOf(StartsWith("t.toml:2:"), HasSubstr(std::string{s.key} + " = "),
                        HasSubstr(": out of range " + settings::format_real(s.real_min) + "..")))
          << s.key << " = " << shown;
    }
  }
}

TEST(Bounds, RangeIsSpelledInTheSettingsUnit) {
  EXPECT_THAT(only_error(load(document("server.idle_timeout", R"("999ms")"))),
              HasSubstr("out of range 1s..1d"));
  EXPECT_THAT(only_error(load(document("server.unix_socket_mode", R"("1000")"))),
              HasSubstr("out of range 0000..0777"));
}

TEST(Errors, UnknownKeyNamesKeyAndPosition) {
  EXPECT_EQ(only_error(load("[server]\nmax_connections = 5\nlisen = []\n")),
            "t.toml:3:1: unknown key 'server.lisen'");
}

TEST(Errors, UnknownSectionNamesSectionAndPosition) {
  EXPECT_THAT(only_error(load("\n[sever]\nlisten = []\n")),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("unknown section [sever]")));
}

TEST(Errors, FlagHeaderMustBeAHeaderName) {
  EXPECT_THAT(only_error(load("[detection]\nflag_header = \"X-Flood: bad\"\n")),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("detection.flag_header"),
                    HasSubstr("without ':' or spaces")));
  EXPECT_THAT(only_error(load("[detection]\nflag_header = \"\"\n")),
              HasSubstr("1 to 64 characters"));
  EXPECT_THAT(only_error(load("[detection]\nenforce_action = \"junk\"\n")),
              HasSubstr("detection.enforce_action"));
}

TEST(Errors, KeyOutsideAnySection) {
  EXPECT_THAT(only_error(load("listen = []\n")),
              AllOf(StartsWith("t.toml:1:1:"), HasSubstr("unknown key 'listen'")));
}

TEST(Errors, SectionThatIsNotATable) {
  EXPECT_THAT(only_error(load("server = 1\n")),
              AllOf(StartsWith("t.toml:1:1:"), HasSubstr("'server' must be a table")));
}

TEST(Errors, WrongTypeNamesKeyExpectedTypeAndLine) {
  EXPECT_EQ(only_error(load(document("server.max_connections", R"("many")"))),
            "t.toml:2:19: server.max_connections: expected an integer, got a string");
  EXPECT_THAT(only_error(load(document("server.listen", R"("inet:127.0.0.1:1")"))),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr("server.listen: expected an array of strings, got a string")));
  EXPECT_THAT(only_error(load(document("log.level", "3"))),
              HasSubstr("log.level: expected a string, got an integer"));
  EXPECT_THAT(only_error(load(document("server.idle_timeout", "1.5"))),
              HasSubstr("server.idle_timeout: expected a duration"));
  EXPECT_THAT(only_error(load(document("server.unix_socket_mode", "660"))),
              HasSubstr("server.unix_socket_mode: expected an octal mode string"));
}

TEST(Errors, ListElementOfWrongTypeNamesIndexAndPosition) {
  EXPECT_THAT(only_error(load(document("server.allow_clients", R"(["10.0.0.0/8", 5])"))),
              AllOf(StartsWith("t.toml:2:32:"),
                    HasSubstr("server.allow_clients[1]: expected a string, got an integer")));
}

TEST(Errors, BadDuration) {
  for (const char* bad : {R"("10x")", R"("1.5s")", R"("-1s")", R"("")", R"("10 s")"}) {
    EXPECT_THAT(only_error(load(document("store.flush_interval", bad))),
                AllOf(StartsWith("t.toml:2:"),
                      HasSubstr(std::string{"store.flush_interval = "} + bad + ": not a duration")))
        << bad;
  }
}

TEST(Errors, BadEnum) {
  EXPECT_EQ(only_error(load(document("log.level", R"("verbose")"))),
            R"(t.toml:2:9: log.level = "verbose": must be one of trace, debug, info, warn, error)");
  EXPECT_THAT(only_error(load(document("server.on_internal_error", R"("Fail-Open")"))),
              HasSubstr("must be one of fail-open, disconnect"));
}

TEST(Errors, BadEndpointNamesIndexAndReason) {
  EXPECT_THAT(only_error(load(document("server.listen", R"(["unix:/a.sock", "tcp:1.2.3.4:25"])"))),
              AllOf(StartsWith("t.toml:2:27:"),
                    HasSubstr(R"(server.listen[1] = "tcp:1.2.3.4:25": expected inet:HOST:PORT)")));
}

TEST(Errors, ControlGroupMustExistAndTheSocketPathFitASocket) {
  EXPECT_THAT(only_error(load(document("control.group", R"("no-such-group-rcptguard")"))),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("control.group"),
                    HasSubstr("no group named 'no-such-group-rcptguard'")));
  EXPECT_THAT(
      only_error(load(document("control.socket", "\"/run/" + std::string(120, 'x') + ".sock\""))),
      HasSubstr("at most 107 bytes"));
  EXPECT_TRUE(load(document("control.socket", R"("")")).ok()) << "empty: controls off";
  EXPECT_TRUE(load(document("control.socket", R"("run/control.sock")")).ok()) << "relative";
}

TEST(Errors, MetricsListenIsOneTcpEndpoint) {
  EXPECT_THAT(only_error(load(document("metrics.listen", R"("unix:/run/rcptguard-metrics.sock")"))),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("metrics.listen"),
                    HasSubstr("expected inet:HOST:PORT: the endpoint is HTTP over TCP")));
  EXPECT_THAT(only_error(load(document("metrics.listen", R"("127.0.0.1:10042")"))),
              HasSubstr("expected inet:HOST:PORT"));
  EXPECT_THAT(only_error(load(document("metrics.allow_clients", R"(["127.0.0.1/8"])"))),
              HasSubstr(R"(metrics.allow_clients[0] = "127.0.0.1/8": host bits are set)"));
  EXPECT_TRUE(load(document("metrics.listen", R"("inet:[::1]:10042")")).ok());
  EXPECT_TRUE(load(document("metrics.listen", R"("")")).ok());
}

TEST(Errors, BadCidr) {
  EXPECT_THAT(only_error(load(document("server.allow_clients", R"(["10.0.0.1/8"])"))),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr(R"(server.allow_clients[0] = "10.0.0.1/8": host bits are set)")));
}

TEST(Errors, BadDeferAction) {
  for (const char* bad : {R"("REJECT")", R"("550 5.7.1")", R"("DEFER_IF_PERMIT go away")"}) {
    EXPECT_THAT(only_error(load(document("detection.defer_action", bad))),
                AllOf(StartsWith("t.toml:2:"),
                      HasSubstr(std::string{"detection.defer_action = "} + bad + ": expected")))
        << bad;
  }
  EXPECT_TRUE(load(document("detection.defer_action", R"("450 4.2.1")")).ok());
}

TEST(Errors, BadFileMode) {
  EXPECT_THAT(only_error(load(document("server.unix_socket_mode", R"("0x1ff")"))),
              HasSubstr(R"(server.unix_socket_mode = "0x1ff": not an octal mode)"));
  EXPECT_THAT(only_error(load(document("server.unix_socket_mode", R"("rw-rw----")"))),
              HasSubstr("not an octal mode"));
}

TEST(Errors, TomlSyntaxErrorHasAPosition) {
  EXPECT_THAT(only_error(load("[server]\nmax_connections = \n")), StartsWith("t.toml:2:"));
}

TEST(Errors, AreAllCollected) {
  const load_result r = load(
      "[server]\nmax_connections = 0\nidle_timeout = \"soon\"\nbogus = 1\n[log]\nlevel = "
      "\"loud\"\n");
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.settings.has_value());
  ASSERT_EQ(r.errors.size(), 4U) << ::testing::PrintToString(r.errors);
  EXPECT_THAT(r.errors[0], StartsWith("t.toml:2:"));
  EXPECT_THAT(r.errors[1], StartsWith("t.toml:3:"));
  EXPECT_THAT(r.errors[2], StartsWith("t.toml:4:"));
  EXPECT_THAT(r.errors[3], StartsWith("t.toml:6:"));
}

TEST(Relations, ListenMustNotBeEmpty) {
  EXPECT_THAT(only_error(load(document("server.listen", "[]"))),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("server.listen: must name at least one")));
}

TEST(Relations, ListenMustNotRepeatASocket) {
  EXPECT_THAT(only_error(load(
                  document("server.listen", R"(["inet:[::1]:25", "unix:/a", "inet:[0::1]:25"])"))),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr(R"("inet:[0::1]:25" names the same socket as "inet:[::1]:25")")));
}

TEST(Relations, AWildcardTakesThePortOnEveryAddressAndPortZeroNeverClashes) {
  EXPECT_THAT(only_error(load(
                  document("server.listen", R"(["inet:127.0.0.1:10040", "inet:0.0.0.0:10040"])"))),
              HasSubstr(R"("inet:0.0.0.0:10040" names the same socket as "inet:127.0.0.1:10040")"));
  EXPECT_TRUE(load(document("server.listen", R"(["inet:127.0.0.1:0", "inet:127.0.0.1:0"])")).ok());
  EXPECT_TRUE(
      load(document("server.listen", R"(["inet:127.0.0.1:10040", "inet:127.0.0.2:10040"])")).ok());
}

TEST(Relations, MetricsAndControlMustNotTakeAPolicySocket) {
  EXPECT_THAT(only_error(load("[server]\nlisten = [\"inet:127.0.0.1:10040\"]\n"
                              "[metrics]\nlisten = \"inet:127.0.0.1:10040\"\n")),
              AllOf(StartsWith("t.toml:4:"),
                    HasSubstr(R"(metrics.listen "inet:127.0.0.1:10040" names the same socket as )"
                              R"(server.listen "inet:127.0.0.1:10040")")));
  EXPECT_THAT(only_error(load("[server]\nlisten = [\"unix:/run/rcptguard/policy\"]\n"
                              "[control]\nsocket = \"/run/rcptguard/policy\"\n")),
              HasSubstr(R"(control.socket "/run/rcptguard/policy" is the policy socket )"
                        R"(server.listen "unix:/run/rcptguard/policy")"));
  EXPECT_TRUE(load("[server]\nlisten = [\"inet:127.0.0.1:10040\"]\n"
                   "[metrics]\nlisten = \"inet:127.0.0.1:10042\"\n")
                  .ok());
}

TEST(Relations, ClusterCountsMustOutliveTwoReads) {
  EXPECT_THAT(only_error(load("[cluster]\nredis = \"inet:127.0.0.1:6379\"\ninterval = \"2s\"\n"
                              "max_age = \"3s\"\n")),
              HasSubstr("cluster.max_age (3s) must be at least twice cluster.interval (2s)"));
  EXPECT_TRUE(load("[cluster]\ninterval = \"2s\"\nmax_age = \"3s\"\n").ok())
      << "no cluster, no relation";
  EXPECT_THAT(only_error(load(document("cluster.node", R"("mx1/a")"))),
              HasSubstr("letters, digits"));
  EXPECT_THAT(only_error(load(document("cluster.redis", R"("redis://x")"))),
              HasSubstr("cluster.redis"));
}

TEST(Relations, FileTargetNeedsAFile) {
  EXPECT_THAT(only_error(load(document("log.target", R"("file")"))),
              AllOf(StartsWith("t.toml:2:"), HasSubstr("log.file must be set")));
  EXPECT_TRUE(load("[log]\ntarget = \"file\"\nfile = \"/var/log/rcptguard.log\"\n").ok());
}

TEST(Relations, MaxLineMustFitInMaxRequest) {
  EXPECT_EQ(only_error(load("[limits]\nmax_request = 4096\n")),
            "t.toml:2:15: limits.max_line (8192) must not exceed limits.max_request (4096)");
  EXPECT_TRUE(load("[limits]\nmax_request = 8192\n").ok());
}

TEST(Relations, SpoolWindowWithinRetention) {
  EXPECT_EQ(only_error(load("[spool]\nwindow = \"2d\"\n")),
            "t.toml:2:10: spool.window (2d) must not exceed spool.retention (1d)");
  EXPECT_TRUE(load("[spool]\nwindow = \"2d\"\nretention = \"2d\"\n").ok());
}

TEST(Relations, FollowedLogsMustNotRecountPolicyMail) {
  const std::string files = "[ingest]\nfiles = [\"/var/log/mail.log\"]\n";
  const std::string hook = "[detection]\nend_of_message_hook = \"absent\"\n";
  EXPECT_THAT(
      only_error(load(files + hook)),
      AllOf(StartsWith("t.toml:2:"), HasSubstr("ingest.instances must be set when ingest.files is"),
            HasSubstr("counted again from the log"), HasSubstr("ingest.hosts")));
  EXPECT_TRUE(load(files + "instances = [\"postfix-in\"]\n" + hook).ok());
  EXPECT_TRUE(load(files + "hosts = [\"mx2.example.test\"]\n" + hook).ok());
  // Without files nothing is read from a log, so nothing is required.
  EXPECT_TRUE(load(document("ingest.instances", "[]")).ok());
}

TEST(Relations, FollowedLogsWorkWithEveryEndOfMessageHookSetting) {
  // Log deliveries enter the engine on their own entry, not as END-OF-MESSAGE requests, so
  // "auto" cannot mistake them for Postfix's hook.
  const std::string files = "[ingest]\nfiles = [\"/var/log/mail.log\"]\nhosts = [\"mx2\"]\n";
  EXPECT_TRUE(load(files).ok());
  for (const char* hook : {R"("auto")", R"("present")", R"("absent")"}) {
    EXPECT_TRUE(load(files, {std::string{"detection.end_of_message_hook="} + hook}).ok()) << hook;
  }
}

TEST(Relations, AFollowedLogIsListedOnce) {
  EXPECT_THAT(only_error(load(R"([ingest]
files = ["/var/log/mail.log", "/var/log/maillog", "/var/log/mail.log"]
hosts = ["mx2"]
[detection]
end_of_message_hook = "absent"
)")),
              HasSubstr(R"("/var/log/mail.log" is listed twice)"));
}

TEST(Errors, BadIngestValues) {
  EXPECT_THAT(only_error(load(document("ingest.files", R"(["mail.log"])"))),
              HasSubstr(R"(ingest.files[0] = "mail.log": expected an absolute path)"));
  EXPECT_THAT(only_error(load(document("ingest.utc_offset", R"("CET")"))),
              HasSubstr("expected an offset such as"));
  EXPECT_TRUE(load(document("ingest.utc_offset", R"("Z")")).ok());
  EXPECT_THAT(only_error(load(document("ingest.instances", R"(["postfix in"])"))),
              HasSubstr("no spaces"));
  EXPECT_THAT(only_error(load(document("ingest.delivery_agents", R"([""])"))),
              HasSubstr("empty name"));
}

TEST(Errors, AlertCommandIsAnAbsoluteProgram) {
  EXPECT_EQ(
      only_error(load(document("alerts.command", R"(["alert-mail.sh", "x@example.test"])"))),
      "t.toml:2:11: alerts.command[0] = \"alert-mail.sh\": the program must be an absolute "
      "path, e.g. \"/usr/local/bin/alert-mail.sh\"; it is run without a shell or PATH search");
  EXPECT_THAT(only_error(load(document("alerts.command", R"([""])"))),
              HasSubstr("the program must be an absolute path"));
  EXPECT_THAT(only_error(load(document("alerts.command", R"(["/bin/echo", "a\u0000b"])"))),
              HasSubstr("alerts.command[1] = \"a?b\": a NUL byte cannot be passed to a program"));
  EXPECT_TRUE(load(document("alerts.command", "[]")).ok());
  EXPECT_TRUE(load(document("alerts.command", R"(["/bin/true"])")).ok());
}

TEST(Defaults, IngestDefaultsAreTheLibrarys) {
  const config c = default_config();
  const ingest::joiner_options library;
  EXPECT_TRUE(c.ingest.files.empty());
  EXPECT_TRUE(c.ingest.instances.empty());
  EXPECT_TRUE(c.ingest.hosts.empty());
  EXPECT_EQ(c.ingest.delivery_agents, library.delivery_agents);
  EXPECT_EQ(c.ingest.message_expiry, library.expiry);
  EXPECT_EQ(c.ingest.max_open_messages, library.max_open_messages);
  EXPECT_EQ(c.ingest.max_line, ingest::default_max_line);
  EXPECT_EQ(c.ingest.utc_offset, "");
  EXPECT_EQ(c.ingest.poll_interval, 500ms);
  EXPECT_EQ(c.alerts.file, "");
  EXPECT_TRUE(c.alerts.command.empty());
  EXPECT_EQ(c.alerts.command_timeout, 10s);
  EXPECT_EQ(c.alerts.command_concurrency, 2U);
  EXPECT_EQ(c.alerts.command_queue, 100U);
}

TEST(Errors, BooleanIsTomlTrueOrFalse) {
  EXPECT_EQ(only_error(load(document("spool.enabled", R"("yes")"))),
            "t.toml:2:11: spool.enabled: expected true or false, got a string");
  EXPECT_THAT(only_error(load(document("spool.check_owner", "1"))),
              HasSubstr("spool.check_owner: expected true or false, got an integer"));
  EXPECT_THAT(only_error(load("", {"spool.enabled=yes"})),
              StartsWith("-o spool.enabled=yes: spool.enabled: expected true or false"));
  const load_result r = load("", {"spool.enabled=true", "spool.check_owner = false"});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_TRUE(r.settings->spool.enabled);
  EXPECT_FALSE(r.settings->spool.check_owner);
}

TEST(Errors, BadSpoolPathsDomainsAndMappings) {
  EXPECT_THAT(only_error(load(document("spool.roots", R"(["/var/mail", "mail"])"))),
              AllOf(StartsWith("t.toml:2:"),
                    HasSubstr(R"(spool.roots[1] = "mail": expected an absolute path)")));
  EXPECT_THAT(only_error(load(document("spool.domains", R"(["@example.test"])"))),
              HasSubstr(R"(spool.domains[0] = "@example.test": expected a domain)"));
  for (const char* bad :
       {R"("bob")", R"("=bob@example.test")", R"("bob=robert")", R"("bob=")",
        R"("a/b=bob@example.test")", R"("bob=a b@example.test")", "\"/x/\ta=bob@example.test\""}) {
    EXPECT_THAT(only_error(load(document("spool.map", std::string{"["} + bad + "]"))),
                AllOf(StartsWith("t.toml:2:"), HasSubstr("spool.map[0] = ")))
        << bad;
  }
  EXPECT_TRUE(load(document("spool.map", R"(["bob=robert@example.test", "a=b=c@d"])")).ok());
}

TEST(Overrides, ApplyOnTopOfTheFile) {
  const load_result r =
      load(document("log.level", R"("warn")"),
           {"log.level=debug", "server.listen=inet:127.0.0.1:9999", "limits.max_line = 4096",
            R"(server.allow_clients=["10.0.0.0/8","::1"])", "server.unix_socket_mode=0600",
            "store.retention=7d", "server.idle_timeout=300", R"(store.path="/tmp/x y.db")"});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  const config& c = *r.settings;
  EXPECT_EQ(c.log.level, log_level::debug);
  EXPECT_EQ(c.server.listen, std::vector<std::string>{"inet:127.0.0.1:9999"});
  EXPECT_EQ(c.limits.max_line, 4096U);
  EXPECT_EQ(c.server.allow_clients, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
  EXPECT_EQ(c.server.unix_socket_mode, 0600U);
  EXPECT_EQ(c.store.retention, 7 * 24h);
  EXPECT_EQ(c.server.idle_timeout, 300s);
  EXPECT_EQ(c.store.path, "/tmp/x y.db");
}

TEST(Overrides, ABareStringForAListIsOneElement) {
  const load_result r =
      load("", {R"(server.listen="unix:/run/p.sock")", "server.allow_clients=::1"});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.settings->server.listen, std::vector<std::string>{"unix:/run/p.sock"});
  EXPECT_EQ(r.settings->server.allow_clients, std::vector<std::string>{"::1"});
}

TEST(Overrides, ANumberForATextSettingIsItsText) {
  const load_result r = load("", {"server.user=1000", "detection.defer_action=450"});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.settings->server.user, "1000");
  EXPECT_EQ(r.settings->detection.defer_action.verb, protocol::action_verb::smtp_code);
  EXPECT_EQ(r.settings->detection.defer_action.code, "450");
}

TEST(Overrides, UnknownKey) {
  EXPECT_EQ(only_error(load("", {"server.lisen=inet:127.0.0.1:1"})),
            "-o server.lisen=inet:127.0.0.1:1: unknown key 'server.lisen'");
}

TEST(Overrides, MissingEquals) {
  EXPECT_EQ(only_error(load("", {"log.level"})), "-o log.level: expected section.key=value");
}

TEST(Overrides, BadValue) {
  EXPECT_EQ(only_error(load("", {"limits.max_line=abc"})),
            "-o limits.max_line=abc: limits.max_line: expected an integer, got a string");
  EXPECT_EQ(
      only_error(load("", {"log.level=loud"})),
      R"(-o log.level=loud: log.level = "loud": must be one of trace, debug, info, warn, error)");
  EXPECT_THAT(only_error(load("", {"server.listen=inet:nowhere"})),
              StartsWith("-o server.listen=inet:nowhere: server.listen[0] = "));
  EXPECT_THAT(only_error(load("", {"limits.max_request=1024"})),
              StartsWith("-o limits.max_request=1024: limits.max_line (8192) must not exceed"));
}

TEST(Overrides, ErrorsAreCollectedWithFileErrors) {
  const load_result r = load(document("log.level", R"("loud")"), {"log.target=tape", "x.y=1"});
  EXPECT_EQ(r.errors.size(), 3U) << ::testing::PrintToString(r.errors);
}

TEST(LoadFile, MissingFileNamesPathAndReason) {
  const load_result r = load_config("/nonexistent/rcptguard.toml", {});
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors.front(),
            "/nonexistent/rcptguard.toml: cannot read: No such file or directory");
}

TEST(LoadFile, DirectoryIsRefused) {
  const load_result r = load_config("/", {});
  ASSERT_EQ(r.errors.size(), 1U);
  EXPECT_EQ(r.errors.front(), "/: cannot read: Is a directory");
}

// A file under the test temp directory holding `text`; removed when the test's fixture ends.
class LoadFileFrom : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }

  const std::filesystem::path& write(std::string_view text) {
    std::ofstream out{path_, std::ios::binary | std::ios::trunc};
    out << text;
    return path_;
  }

 private:
  std::filesystem::path path_ =
      std::filesystem::path{::testing::TempDir()} /
      // The pid keeps parallel runs of the suite (two build trees, two ctest jobs) apart.
      (std::string{::testing::UnitTest::GetInstance()->current_test_info()->name()} + "." +
       std::to_string(::getpid()) + ".toml");
};

TEST_F(LoadFileFrom, ErrorsNameThePath) {
  const auto& path = write("[server]\nmax_connections = 10\nbogus = 1\n");
  EXPECT_EQ(only_error(load_config(path, {})), path.string() + ":3:1: unknown key 'server.bogus'");
}

TEST_F(LoadFileFrom, AGoodFileLoads) {
  const load_result r = load_config(write("[log]\nlevel = \"warn\"\n"), {"log.target=syslog"});
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.settings->log.level, log_level::warn);
  EXPECT_EQ(r.settings->log.target, log_target::syslog);
}

TEST_F(LoadFileFrom, OversizedFileIsRefused) {
  const auto& path = write(std::string(1024 * 1024 + 1, '\n'));
  EXPECT_EQ(only_error(load_config(path, {})),
            path.string() + ": cannot read: larger than 1048576 bytes");
}

TEST(LoadFile, OverrideErrorsAreReportedEvenWhenTheFileIsMissing) {
  const load_result r = load_config("/nonexistent/rcptguard.toml", {"nope.nope=1"});
  EXPECT_EQ(r.errors.size(), 2U);
}

TEST(ChangedSettings, SaysWhichNeedARestart) {
  const config before = default_config();
  config after = before;
  after.server.listen = {"unix:/run/p.sock"};
  after.log.level = log_level::debug;
  const auto changes = changed_settings(before, after);
  ASSERT_EQ(changes.size(), 2U);
  EXPECT_EQ(changes[0].key, "server.listen");
  EXPECT_FALSE(changes[0].reloadable);
  EXPECT_EQ(changes[1].key, "log.level");
  EXPECT_TRUE(changes[1].reloadable);
}

TEST(ApplyReloadable, CopiesOnlyWhatAReloadMayChange) {
  config running = default_config();
  config loaded = running;
  loaded.server.listen = {"unix:/run/p.sock"};
  loaded.store.path = "/elsewhere.db";
  loaded.log.level = log_level::debug;
  loaded.limits.max_attributes = 64;
  loaded.detection.mode = detection_mode::enforce;
  const auto changes = apply_reloadable(running, loaded);
  EXPECT_EQ(changes.size(), 5U);
  EXPECT_EQ(running.server.listen, default_config().server.listen);
  EXPECT_EQ(running.store.path, default_config().store.path);
  EXPECT_EQ(running.log.level, log_level::debug);
  EXPECT_EQ(running.limits.max_attributes, 64U);
  EXPECT_EQ(running.detection.mode, detection_mode::enforce);
}

TEST(ApplyReloadable, EveryReloadableKeyIsCopiedAndNoOther) {
  for (const auto& [key, value] : non_default_values) {
    const config defaults = defaults_for(key);
    const load_result r = load(document(key, value), companions_of(key));
    ASSERT_TRUE(r.ok()) << key;
    config running = defaults;
    const auto changes = apply_reloadable(running, *r.settings);
    ASSERT_EQ(changes.size(), 1U) << key;
    const bool copied = changed_settings(defaults, running).size() == 1;
    EXPECT_EQ(copied, changes.front().reloadable) << key;
    EXPECT_EQ(copied, settings::find(key)->when == settings::applies::on_reload) << key;
  }
}

// Found by fuzz/settings: toml++'s parse errors quote the bytes they stopped at ("saw 'tr\n'"),
// and a check's reason may quote the refused value ("no group named '...'"), so a control byte in
// a settings file reached the log line or terminal that shows the error.
TEST(Errors, ReasonsQuotingTheValueHaveNoControlBytes) {
  for (const std::string_view doc : {"[control]\ngroup = \"no\\u0001such\\u001b[31m\"\n",
                                     "[server]\nallow_clients = [\"10.0.0.0/8\\n\\u007f\"]\n",
                                     "[log]\nx = tr\n", "[log]\nx = tr\x1b[31m\n"}) {
    const std::string error = only_error(load(doc));
    EXPECT_FALSE(error.empty());
    for (const char c : error) {
      EXPECT_TRUE(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) << error;
    }
  }
}

TEST(Enums, ToStringIsTheConfigSpelling) {
  EXPECT_EQ(to_string(internal_error_policy::fail_open), "fail-open");
  EXPECT_EQ(to_string(log_target::stderr_stream), "stderr");
  EXPECT_EQ(to_string(log_level::error), "error");
  EXPECT_EQ(to_string(detection_mode::enforce), "enforce");
  EXPECT_EQ(to_string(decision::eom_hook::auto_detect), "auto");
  EXPECT_EQ(to_string(decision::eom_hook::absent), "absent");
}

}  // namespace
}  // namespace rcptguard
