// The daemon's settings as typed structs, and loading them from a TOML file plus `-o` overrides.
// Every key, its default, bounds and documentation is declared once, in the table in
// settings.cpp; loading, default_config(), the sample file and the reload diff all derive from it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "decision/settings.hpp"
#include "protocol/limits.hpp"
#include "protocol/reply.hpp"

namespace rcptguard {

// Each enum's names are listed beside it, in enumerator order: the table stores a setting's
// position in this list, so the two cannot disagree.

/// What to answer when rcptguard itself fails on a well-formed request (the transport's choice,
/// declared with the reply format).
using internal_error_policy = protocol::internal_error_policy;
inline constexpr std::array<std::string_view, 2> internal_error_policy_names{"fail-open",
                                                                             "disconnect"};

enum class log_target : std::uint8_t { stderr_stream, syslog, file };
inline constexpr std::array<std::string_view, 3> log_target_names{"stderr", "syslog", "file"};

enum class log_level : std::uint8_t { trace, debug, info, warn, error };
inline constexpr std::array<std::string_view, 5> log_level_names{"trace", "debug", "info", "warn",
                                                                 "error"};

/// decision/settings.hpp's enums, spelled in the same enumerator order.
using detection_mode = decision::detection_mode;
inline constexpr std::array<std::string_view, 2> detection_mode_names{"monitor", "enforce"};
inline constexpr std::array<std::string_view, 3> end_of_message_hook_names{"auto", "present",
                                                                           "absent"};
inline constexpr std::array<std::string_view, 2> flood_action_names{"defer", "flag"};

/// The configuration spelling of each value, e.g. "fail-open".
inline std::string_view to_string(internal_error_policy v) {
  return internal_error_policy_names.at(static_cast<std::size_t>(v));
}
inline std::string_view to_string(log_target v) {
  return log_target_names.at(static_cast<std::size_t>(v));
}
inline std::string_view to_string(log_level v) {
  return log_level_names.at(static_cast<std::size_t>(v));
}
inline std::string_view to_string(decision::detection_mode v) {
  return detection_mode_names.at(static_cast<std::size_t>(v));
}
inline std::string_view to_string(decision::eom_hook v) {
  return end_of_message_hook_names.at(static_cast<std::size_t>(v));
}

// The members below are zero-initialised placeholders, not defaults: a second set of defaults
// here could drift from the table. Start from default_config() or a load_config() result.
// config::detection is the exception: decision::settings{} holds the detection defaults, and
// the table's detection rows take their defaults from it.

struct server_settings {
  /// "inet:HOST:PORT", "inet:[IPV6]:PORT" or "unix:/abs/path"; see parse_endpoint().
  std::vector<std::string> listen;
  /// CIDRs of TCP peers we serve; see parse_cidr().
  std::vector<std::string> allow_clients;
  std::uint32_t unix_socket_mode{};  ///< permission bits, 0 to 0777
  std::string unix_socket_group;     ///< empty: leave the group alone
  std::string user;                  ///< empty: do not drop privileges
  std::size_t max_connections{};
  std::size_t max_connections_per_client{};  ///< 0: no per-address cap
  std::chrono::milliseconds idle_timeout{};
  /// From a request's first byte to its end, however many reads that takes.
  std::chrono::milliseconds request_timeout{};
  internal_error_policy on_internal_error{};
};

struct log_settings {
  log_target target{};
  std::string file;  ///< set whenever target is file
  log_level level{};
  std::chrono::milliseconds summary_interval{};  ///< zero: no periodic summary
};

struct store_settings {
  std::string path;
  std::chrono::milliseconds flush_interval{};
  std::size_t max_pending_keys{};
  int writer_nice{};
  std::chrono::milliseconds retention{};
  std::uint32_t history_weeks{};  ///< of hourly counts, loaded for the baselines
  std::chrono::milliseconds prune_interval{};
};

/// The spool scanner run by the daemon; scan_options_from() (config/options.hpp) turns it into
/// scanner::scan_options, whose field comments give the reasons for the defaults.
struct spool_settings {
  bool enabled{};
  std::chrono::milliseconds interval{};
  std::vector<std::string> roots;          ///< absolute directories
  std::vector<std::string> virtual_roots;  ///< absolute directories of virtual mailboxes
  std::vector<std::string> virtual_owner;  ///< user names or numeric uids
  std::vector<std::string> domains;        ///< local domains: mailbox bob -> bob@domain
  std::vector<std::string> map;            ///< "user=address" or "/path=address"
  std::uint32_t min_repeats{};
  std::chrono::seconds window{};
  std::chrono::seconds retention{};
  bool check_owner{};
  std::uint64_t max_message_bytes{};
  std::size_t max_header_bytes{};
  unsigned max_mime_depth{};
  unsigned max_mime_parts{};
  std::chrono::milliseconds max_time_per_file{};
};

/// Mail logs followed by the daemon (see daemon/mail_log_service.hpp); ingest_command's --options
/// and ingest::joiner_options give the reasons for the defaults, which are taken from there.
struct ingest_settings {
  std::vector<std::string> files;      ///< absolute paths; empty: no log is followed
  std::vector<std::string> instances;  ///< Postfix syslog names / Sendmail programs counted
  std::vector<std::string> hosts;      ///< syslog hosts counted; empty: any
  std::vector<std::string> delivery_agents;
  std::string utc_offset;  ///< "+01:00", "-0500", "Z"; empty: the system time zone (TZ)
  std::chrono::milliseconds poll_interval{};
  std::chrono::seconds message_expiry{};
  std::size_t max_open_messages{};
  std::size_t max_line{};
};

/// Alert episodes as JSON Lines for a SIEM (daemon/alert_file.hpp), and a program run for each
/// alert (daemon/alert_command.hpp).
struct alerts_settings {
  std::string file;  ///< empty: not written
  /// argv of the program, run without a shell; argv[0] is an absolute path. Empty: none.
  std::vector<std::string> command;
  std::chrono::milliseconds command_timeout{};
  std::size_t command_concurrency{};  ///< runs at once
  std::size_t command_queue{};        ///< alerts waiting for a free run
};

/// The Prometheus endpoint (daemon/metrics_service.hpp); off while listen is empty.
struct metrics_settings {
  /// "inet:HOST:PORT" or "inet:[IPV6]:PORT" (see parse_endpoint()); empty: no endpoint.
  std::string listen;
  /// CIDRs of scrapers we answer; see parse_cidr().
  std::vector<std::string> allow_clients;
};

/// The operator control socket (daemon/control_service.hpp): `rcptguard allow`, `unallow`,
/// `reset`, `release` and `status` talk to the running daemon through it.
struct control_settings {
  std::string socket;           ///< path, relative to the working directory; empty: off
  std::uint32_t socket_mode{};  ///< permission bits, 0 to 0777
  std::string group;            ///< whose members may use it; empty: the daemon's group
};

/// The optional cluster store (daemon/cluster_service.hpp, cluster/): several MX hosts share
/// their counts through one Redis. Off while redis is empty. (cluster.max_age and
/// cluster.max_recipients are the engine's: detection.cluster_max_age, max_cluster_recipients.)
struct cluster_settings {
  std::string redis;  ///< "inet:HOST:PORT" or "unix:/path"; empty: off
  std::string user;   ///< Redis ACL user; empty: the password alone
  std::string password;
  std::string node;  ///< this node's name in the store; empty: the host name
  std::chrono::milliseconds interval{};
  std::chrono::milliseconds timeout{};
  std::string key_prefix;
  std::int64_t max_keys = 0;
  std::int64_t max_pull = 0;
  std::int64_t min_count = 0;
  std::int64_t max_correspondents = 0;
};

struct config {
  server_settings server;
  protocol::limits limits;
  log_settings log;
  store_settings store;
  spool_settings spool;
  ingest_settings ingest;
  alerts_settings alerts;
  metrics_settings metrics;
  cluster_settings cluster;
  control_settings control;
  /// Everything the decision engine reads, including [[detection.class]] and
  /// [[detection.override]] with every unspecified key filled from [detection.thresholds].
  decision::settings detection;
};

/// Either a complete, validated config or every problem found, never both.
struct load_result {
  std::optional<config> settings;
  /// One line each, "where: what", e.g. "rcptguard.toml:3:1: unknown key 'server.lisen'".
  std::vector<std::string> errors;

  bool ok() const { return settings.has_value(); }
};

/// Reads and validates a settings file, then applies `overrides` ("section.key=value", like
/// `postconf -o`) on top. Never throws; an unreadable file is an error naming path and reason.
load_result load_config(const std::filesystem::path& file,
                        const std::vector<std::string>& overrides);

/// As load_config() for text already in memory; `source_name` prefixes error positions.
load_result load_config_string(std::string_view toml_text,
                               const std::vector<std::string>& overrides,
                               std::string_view source_name);

/// Where the settings come from. The overrides are re-applied on every reload, like the file.
struct config_source {
  std::filesystem::path file;          ///< empty: built-in defaults
  std::vector<std::string> overrides;  ///< "section.key=value", as given to -o
};

/// The file every command reads when none is named, if it exists.
inline constexpr const char* default_config_path = "/etc/rcptguard/rcptguard.toml";

/// Loads `source` the same way at start-up, for every command and at every reload.
load_result load_settings(const config_source& source);

/// "defaults" or the file's path, for messages about `source`.
std::string describe(const config_source& source);

/// Every setting at its default.
config default_config();

/// A commented TOML file listing every setting with its default, bounds and documentation.
/// etc/rcptguard.toml is exactly this text.
std::string render_reference();

struct setting_change {
  std::string_view key;  ///< "section.name", or "detection.class" when any class differs
  bool reloadable;       ///< false: the running daemon keeps the old value until a restart
};

/// The settings whose values differ, in table order, then the arrays of tables
/// (detection.class, detection.override); what a reload reports and acts on.
std::vector<setting_change> changed_settings(const config& before, const config& after);

/// A reload: copies every reloadable setting of `loaded` into `running` and leaves the others
/// (sockets, user, paths) as they were bound. Returns what differed, as changed_settings() does,
/// so the caller can say which changes wait for a restart.
std::vector<setting_change> apply_reloadable(config& running, const config& loaded);

}  // namespace rcptguard
