// The settings table (one row per key) and the checks its rows name. Defaults live only here,
// except detection's: those rows read their default from decision/settings.hpp.
#include "config/settings.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/types.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <type_traits>
#include <utility>

#include "config/address.hpp"
#include "config/duration.hpp"
#include "ingest/joiner.hpp"
#include "ingest/reader.hpp"
#include "ingest/timestamp.hpp"
#include "protocol/reply.hpp"

namespace rcptguard::settings {

namespace {

using namespace std::chrono_literals;

template <typename T>
struct is_duration : std::false_type {};
template <typename Rep, typename Period>
struct is_duration<std::chrono::duration<Rep, Period>> : std::true_type {};

// A row's value type and its field's C++ type are checked against each other when the row's
// default is stored: a mismatch throws, and the defaults test fails.
template <typename Field>
void assign(Field& field, value&& v) {
  if constexpr (std::is_enum_v<Field> || std::is_integral_v<Field>) {
    field = static_cast<Field>(std::get<std::int64_t>(v));
  } else if constexpr (std::is_floating_point_v<Field>) {
    field = std::get<double>(v);
  } else if constexpr (is_duration<Field>::value) {
    // The loader refused values the field cannot hold (duration_step_ms), so this is exact.
    field = std::chrono::duration_cast<Field>(std::get<std::chrono::milliseconds>(v));
  } else if constexpr (std::is_same_v<Field, std::string>) {
    field = std::move(std::get<std::string>(v));
  } else if constexpr (std::is_same_v<Field, protocol::policy_action>) {
    // Checked by check_action() before it gets here.
    static_cast<void>(protocol::parse_configured_action(std::get<std::string>(v), field));
  } else {
    static_assert(std::is_same_v<Field, std::vector<std::string>>, "no value for this type");
    field = std::move(std::get<std::vector<std::string>>(v));
  }
}

template <typename Field>
value to_value(const Field& field) {
  if constexpr (std::is_enum_v<Field> || std::is_integral_v<Field>) {
    return static_cast<std::int64_t>(field);
  } else if constexpr (std::is_floating_point_v<Field>) {
    return static_cast<double>(field);
  } else if constexpr (is_duration<Field>::value) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(field);
  } else if constexpr (std::is_same_v<Field, protocol::policy_action>) {
    return configured_text(field);
  } else {
    return field;
  }
}

template <typename Field>
constexpr std::int64_t step_ms() {
  if constexpr (is_duration<Field>::value) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Field{1}).count();
  } else {
    return 1;
  }
}

// A field reached through a chain of member pointers, e.g. &config::detection,
// &decision::settings::baseline, &decision::baseline_settings::weeks.
template <auto... Path, typename Root>
auto& at(Root& root) {
  // clang-format off
  return (root .* ... .* Path);
  // clang-format on
}

template <auto... Path>
void store_at(config& c, value&& v) {
  assign(at<Path...>(c), std::move(v));
}

template <auto... Path>
value read_at(const config& c) {
  return to_value(at<Path...>(c));
}

template <auto... Path>
void copy_at(config& to, const config& from) {
  at<Path...>(to) = at<Path...>(from);
}

template <auto... Path>
void store_limit(decision::thresholds& t, value&& v) {
  assign(at<Path...>(t), std::move(v));
}

template <auto... Path>
value read_limit(const decision::thresholds& t) {
  return to_value(at<Path...>(t));
}

struct bound_field {
  std::string_view key;
  field_access field;
  limits_access limits{};
};

template <auto... Path>
constexpr bound_field bind(std::string_view key) {
  using field_type = std::remove_reference_t<decltype(at<Path...>(std::declval<config&>()))>;
  return {key, {&store_at<Path...>, &read_at<Path...>, &copy_at<Path...>, step_ms<field_type>()}};
}

// A [detection.thresholds] key: the field of config.detection.defaults, and the same field of
// any thresholds block (a class's, an override's).
template <auto... Path>
constexpr bound_field bind_limit(std::string_view key) {
  bound_field f = bind<&config::detection, &decision::settings::defaults, Path...>(key);
  f.limits = {&store_limit<Path...>, &read_limit<Path...>};
  return f;
}

// Keys are spelled from the same tokens as the fields, so "server.user" can only ever fill
// config.server.user; only the preprocessor can turn a member name into text.
// NOLINTBEGIN(cppcoreguidelines-macro-usage)
#define RG_FIELD(section, name) \
  bind<&config::section, &decltype(config::section)::name>(#section "." #name)
#define RG_DETECTION(name) bind<&config::detection, &decision::settings::name>("detection." #name)
#define RG_BASELINE(name)                                                                      \
  bind<&config::detection, &decision::settings::baseline, &decision::baseline_settings::name>( \
      "detection.baseline." #name)
#define RG_LIMIT(name) bind_limit<&decision::thresholds::name>("detection.thresholds." #name)
#define RG_WINDOW(window, part)                                                  \
  bind_limit<&decision::thresholds::window, &decision::window_thresholds::part>( \
      "detection.thresholds." #window "_" #part)
// NOLINTEND(cppcoreguidelines-macro-usage)

/// Row default text meaning "whatever a default-constructed config holds": for detection rows,
/// decision::settings{}'s own default.
constexpr std::string_view from_struct{};

setting integer(bound_field f, std::string_view default_value, std::int64_t min, std::int64_t max,
                applies when, std::string_view doc) {
  return {f.key,
          value_type::integer,
          std::string{default_value},
          min,
          max,
          0,
          0,
          {},
          nullptr,
          when,
          doc,
          f.field,
          f.limits};
}

setting real(bound_field f, std::string_view default_value, double min, double max, applies when,
             std::string_view doc) {
  return {
      f.key,   value_type::real, std::string{default_value}, 0, 0, min, max, {}, nullptr, when, doc,
      f.field, f.limits};
}

setting duration(bound_field f, std::string_view default_value, std::chrono::milliseconds min,
                 std::chrono::milliseconds max, applies when, std::string_view doc) {
  return {f.key,
          value_type::duration,
          std::string{default_value},
          min.count(),
          max.count(),
          0,
          0,
          {},
          nullptr,
          when,
          doc,
          f.field,
          f.limits};
}

setting text(bound_field f, std::string_view default_value, check_fn check, applies when,
             std::string_view doc) {
  return {f.key,   value_type::text, std::string{default_value}, 0, 0, 0, 0, {}, check, when, doc,
          f.field, f.limits};
}

setting text_list(bound_field f, std::string_view default_value, check_fn check, applies when,
                  std::string_view doc) {
  return {f.key,
          value_type::text_list,
          std::string{default_value},
          0,
          0,
          0,
          0,
          {},
          check,
          when,
          doc,
          f.field,
          f.limits};
}

setting choice(bound_field f, std::string_view default_value,
               std::span<const std::string_view> choices, applies when, std::string_view doc) {
  return {f.key,
          value_type::choice,
          std::string{default_value},
          0,
          0,
          0,
          0,
          choices,
          nullptr,
          when,
          doc,
          f.field,
          f.limits};
}

setting boolean(bound_field f, std::string_view default_value, applies when, std::string_view doc) {
  return {f.key,
          value_type::boolean,
          std::string{default_value},
          0,
          1,
          0,
          0,
          {},
          nullptr,
          when,
          doc,
          f.field,
          f.limits};
}

setting file_mode(bound_field f, std::string_view default_value, applies when,
                  std::string_view doc) {
  return {f.key,
          value_type::file_mode,
          std::string{default_value},
          0,
          0777,
          0,
          0,
          {},
          nullptr,
          when,
          doc,
          f.field,
          f.limits};
}

std::string check_endpoint(std::string_view text) {
  std::string why;
  if (parse_endpoint(text, why)) return {};
  return why;
}

std::string check_cidr(std::string_view text) {
  std::string why;
  if (parse_cidr(text, why)) return {};
  return why;
}

// The metrics endpoint is HTTP over TCP; empty turns it off.
std::string check_metrics_endpoint(std::string_view text) {
  if (text.empty()) return {};
  std::string why;
  const auto ep = parse_endpoint(text, why);
  if (!ep) return why;
  if (ep->kind != endpoint_kind::inet) {
    return "expected inet:HOST:PORT: the endpoint is HTTP over TCP";
  }
  return {};
}

// The cluster store: Redis over TCP or a unix socket; empty turns it off.
std::string check_redis_endpoint(std::string_view text) {
  if (text.empty()) return {};
  std::string why;
  return parse_endpoint(text, why) ? std::string{} : why;
}

// A node's name is part of the store's field names ("NODE/INCARNATION"): no '/', nothing a log
// line or a key would mangle.
std::string check_node_name(std::string_view text) {
  if (text.size() > 64) return "at most 64 characters";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (!(std::isalnum(u) != 0 || c == '-' || c == '_' || c == '.')) {
      return "letters, digits, '-', '_' and '.' only";
    }
  }
  return {};
}

std::string check_key_prefix(std::string_view text) {
  if (text.empty() || text.size() > 64) return "1 to 64 characters";
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return "printable ASCII without spaces only";
  }
  return {};
}

std::string check_action(std::string_view text) {
  protocol::policy_action parsed;
  if (protocol::parse_configured_action(text, parsed) == protocol::action_error::none) return {};
  return "expected DEFER_IF_PERMIT, DEFER or a 4NN reply code, optionally followed by a 4.X.Y "
         "enhanced status code";
}

bool is_control_or_space(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

// RFC 5322 field-name: printable ASCII except ':' and space.
std::string check_header_name(std::string_view text) {
  if (text.empty() || text.size() > 64) return "expected a header name of 1 to 64 characters";
  const bool valid = std::all_of(text.begin(), text.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != ':';
  });
  if (!valid) return "a header name is printable ASCII without ':' or spaces";
  return {};
}

std::string check_address_pattern(std::string_view text) {
  if (text.empty()) return "empty pattern";
  if (std::any_of(text.begin(), text.end(), is_control_or_space)) {
    return "spaces and control characters never occur in an address";
  }
  if (text.find('@') == std::string_view::npos) {
    return R"(expected an address pattern with '@': "bob@example.test", "*@example.test", )"
           R"("@example.test" or a '*'/'?' glob)";
  }
  return {};
}

std::string check_delimiters(std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (is_control_or_space(c) || u >= 0x80 || c == '@' || std::isalnum(u) != 0) {
      return "delimiters are punctuation characters other than '@', such as \"+\" or \"+-\"";
    }
  }
  return {};
}

// Spool paths come from the administrator; control characters would only garble the log lines
// that quote them.
std::string check_absolute_path(std::string_view text) {
  if (text.empty() || text.front() != '/') return "expected an absolute path";
  if (std::any_of(text.begin(), text.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    return "control characters in a path";
  }
  return {};
}

std::string check_domain(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.' ||
      text.find('@') != std::string_view::npos ||
      std::any_of(text.begin(), text.end(), is_control_or_space)) {
    return "expected a domain such as \"example.test\", without '@'";
  }
  return {};
}

// The rule of scanner::parse_mapping() (the last '=' splits), which rg_config cannot call: the
// scanner library is not one of its dependencies.
std::string check_mapping(std::string_view text) {
  const std::size_t eq = text.rfind('=');
  const std::string_view why =
      R"(expected "user=address" or "/path/to/mailbox=address", e.g. "bob=bob@example.test")";
  if (eq == std::string_view::npos || eq == 0) return std::string{why};
  const std::string_view key = text.substr(0, eq);
  const std::string_view address = text.substr(eq + 1);
  if (address.find('@') == std::string_view::npos ||
      std::any_of(address.begin(), address.end(), is_control_or_space)) {
    return std::string{why} + "; the address needs an '@'";
  }
  if (key.front() == '/') return check_absolute_path(key);
  if (key.find('/') != std::string_view::npos ||
      std::any_of(key.begin(), key.end(), is_control_or_space)) {
    return std::string{why} + "; a user name has no '/' or spaces";
  }
  return {};
}

// scanner::owner_uid()'s rule, which rg_config cannot call (see check_mapping): digits are a
// uid, anything else must be a user here, so a typo fails at load instead of refusing every
// virtual mailbox at each scan.
std::string check_user_or_uid(std::string_view text) {
  if (text.empty()) return "expected a user name or a numeric uid";
  if (std::any_of(text.begin(), text.end(), is_control_or_space)) {
    return "a user name has no spaces or control characters";
  }
  if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::uint64_t uid = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), uid);
    if (error != std::errc{} || end != text.data() + text.size() ||
        uid >= std::numeric_limits<uid_t>::max()) {
      return "uid out of range";
    }
    return {};
  }
  const std::string name{text};
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::array<char, 16384> buffer{};
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return "no user named '" + name + "' on this system; give an existing user or a numeric uid";
  }
  return {};
}

// The control socket's path: relative or absolute, short enough for sockaddr_un (108 bytes with
// its NUL), and printable, since error messages quote it.
std::string check_socket_path(std::string_view text) {
  if (text.size() >= 108) return "a unix socket path has at most 107 bytes";
  if (std::any_of(text.begin(), text.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    return "control characters in a path";
  }
  return {};
}

// A group that must exist when the daemon starts; checked at load so check-config names a typo.
std::string check_group(std::string_view text) {
  if (text.empty()) return {};
  const std::string name{text};
  struct group entry {};
  struct group* found = nullptr;
  std::array<char, 16384> buffer{};
  if (::getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return "no group named '" + name + "' on this system";
  }
  return {};
}

// Syslog host names, Postfix syslog names ("postfix/submission") and delivery agents appear
// as one token in a log line, so a space could never match.
std::string check_log_token(std::string_view text) {
  if (text.empty()) return "empty name";
  if (std::any_of(text.begin(), text.end(), is_control_or_space)) {
    return "a name in a log line has no spaces or control characters";
  }
  return {};
}

std::string check_utc_offset(std::string_view text) {
  if (text.empty() || ingest::parse_utc_offset(text)) return {};
  return R"(expected an offset such as "+01:00", "-0500" or "Z", or "" for the system time zone)";
}

// An argument is handed to execve() as a C string, which would end at a NUL that TOML's
// "\u0000" can put inside; refused rather than run a different command than the one configured.
std::string check_argument(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) return "a NUL byte cannot be passed to a program";
  return {};
}

// The ingest library's defaults as row defaults, so they are written once, in ingest/.
std::string toml_strings(const std::vector<std::string>& items) {
  std::string out = "[";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ", ";
    out += "\"" + item + "\"";
  }
  return out + "]";
}

std::string toml_duration(std::chrono::milliseconds d) {
  return "\"" + format_duration(d) + "\"";
}

constexpr auto restart = applies::on_restart;
constexpr auto reload = applies::on_reload;
constexpr std::int64_t mebibyte = std::int64_t{1024} * 1024;
constexpr std::chrono::milliseconds day = 24h;
constexpr std::int64_t million = 1'000'000;

constexpr std::array section_table{
    section{"server", "Sockets, who may connect, and how long a connection may last."},
    section{"limits", "Bounds on what one policy client may send, checked before buffering it."},
    section{"log", "Where log lines go and how much is written."},
    section{"store", "The SQLite database of counters and events, written on its own thread."},
    section{"spool",
            "The spool scanner: a thread of the daemon that reads delivered mailboxes for the "
            "same attachment stored again and again, which the decision engine counts as "
            "evidence of a flood (detection.thresholds.evidence_*). It only ever reads "
            "mailboxes, and stores what it found in the database of [store]."},
    section{"ingest",
            "Mail logs followed by the daemon, like `rcptguard ingest --follow`: every message "
            "a log shows delivered is counted by the same engine as a policy request, at the "
            "log's timestamp, and remembered position by position in the database of [store], "
            "so a restart neither skips nor double-counts. A message must not be counted by "
            "both the policy hook and the log: while the daemon answers policy requests, "
            "instances (or hosts) must name only what the hook does not see. Old logs are "
            "replayed with `rcptguard ingest`, not here: lines older than a few minutes when "
            "read are skipped, since the engine counts in wall-clock windows."},
    section{"alerts", "Alert episodes for a SIEM, from the policy hook and from logs."},
    section{"metrics",
            "An HTTP endpoint for Prometheus (GET /metrics, text format 0.0.4): the counters of "
            "the SUMMARY log line, the reply latency and the state of the store, spool scanner "
            "and followed logs. Off by default. Served by the network thread without blocking; "
            "at most 8 connections, 8 KiB of request headers and 10 s per request."},
    section{"cluster",
            "Several MX hosts, one picture: the nodes share their per-minute counts per "
            "recipient and their distinct senders and clients through one Redis, so a flood "
            "spread across them is judged on the cluster's volume. Each node keeps answering "
            "from memory and never waits on Redis for a reply; a thread of its own publishes "
            "its counts and reads the other nodes' for the recipients active on it every "
            "interval. Redis down, slow or restarted: every node judges on its own counts at "
            "once, logs CLUSTER LOST, and catches up when Redis is back. Off by default (README, "
            "\"Several MX hosts\")."},
    section{"control",
            "The operator controls: a unix socket on which the running daemon takes `rcptguard "
            "allow`, `unallow`, `reset`, `release` and `status`, and applies each before the "
            "next policy request. Only root, the daemon's own user and members of group may use "
            "it, as the caller's peer credentials say; every command is logged (CONTROL) and "
            "kept in the database (v_operator_actions). Served by the network thread without "
            "blocking; at most 4 connections, a 64 KiB request line and 10 s per request."},
    section{"detection",
            "How recipients are counted and what is done with a verdict. Every detection "
            "setting is applied on reload."},
    section{"detection.thresholds",
            "When a recipient's inbound volume becomes a warning or a deferral. Each window "
            "(minute, ten_minutes, hour, day) has a warn and a defer point, each the larger of "
            "a floor (messages) and a factor times the learned expected count; [[detection.class]] "
            "and [[detection.override]] entries start from these values."},
    section{"detection.baseline", "How a recipient's hourly history becomes its expected count."},
};

// Grouped by section, in section_table order; the sample file follows this order.
std::vector<setting> make_table() {
  return {
      text_list(RG_FIELD(server, listen), R"(["inet:127.0.0.1:10041"])", check_endpoint, restart,
                "Sockets to accept Postfix policy connections on: \"inet:HOST:PORT\", "
                "\"inet:[IPV6]:PORT\" or \"unix:/absolute/path\". Port 0 picks a free port, "
                "which only tests want."),
      text_list(RG_FIELD(server, allow_clients), R"(["127.0.0.0/8", "::1/128"])", check_cidr,
                reload,
                "Networks (CIDR; a bare address is one host) whose TCP connections are served; "
                "others are closed at once. An empty list refuses every TCP client. Unix sockets "
                "are guarded by unix_socket_mode and unix_socket_group instead."),
      file_mode(RG_FIELD(server, unix_socket_mode), R"("0660")", restart,
                "Permission bits of unix listen sockets, in octal; Postfix's user needs write "
                "access."),
      text(RG_FIELD(server, unix_socket_group), R"("postfix")", nullptr, restart,
           "Group that owns unix listen sockets, so that with unix_socket_mode 0660 only "
           "Postfix (and root) can ask for verdicts; start-up fails if the group does not "
           "exist. Empty leaves the daemon's own group."),
      text(RG_FIELD(server, user), R"("")", nullptr, restart,
           "Account to switch to once sockets, database and log file are open; empty keeps the "
           "starting user."),
      integer(RG_FIELD(server, max_connections), "1024", 1, 100'000, reload,
              "Policy connections served at once. Postfix opens one per smtpd process that "
              "asks. At the cap the connection idle the longest is closed to make room "
              "(Postfix reconnects when it next asks); only if every connection is in the "
              "middle of a request is the new one refused. The daemon raises its file "
              "descriptor limit to fit, and warns if it cannot."),
      integer(RG_FIELD(server, max_connections_per_client), "512", 0, 100'000, reload,
              "Policy connections one TCP client address may hold; a client at its cap "
              "displaces only its own idle connections, so one host cannot crowd out the "
              "others. Keep it above the smtpd process count of the largest Postfix host "
              "that connects (default_process_limit, per smtpd service). 0: no per-client "
              "cap. Unix socket clients are not counted here: unix_socket_group guards them."),
      duration(RG_FIELD(server, idle_timeout), R"("600s")", 1s, day, reload,
               "Close a connection after this long without a request. Keep it at or above "
               "Postfix's smtpd_policy_service_max_idle (300s) so that Postfix normally closes "
               "first; shorter only costs reconnects."),
      duration(RG_FIELD(server, request_timeout), R"("10s")", 100ms, 300s, reload,
               "Longest time from a request's first byte to its end, however it is split into "
               "reads; a slower client is disconnected."),
      choice(RG_FIELD(server, on_internal_error), R"("fail-open")", internal_error_policy_names,
             reload,
             "When rcptguard itself fails on a well-formed request: \"fail-open\" answers DUNNO "
             "so mail flows; \"disconnect\" closes without an answer, and Postfix applies "
             "smtpd_policy_service_default_action."),

      integer(RG_FIELD(limits, max_line), "8192", 256, mebibyte, reload,
              "Longest name=value line, in bytes. Postfix sends at most 4 x line_length_limit "
              "(2048)."),
      integer(RG_FIELD(limits, max_attributes), "128", 16, 4096, reload,
              "Attributes in one request, duplicates included. Postfix 3.12 sends about 32."),
      integer(RG_FIELD(limits, max_request), "65536", 1024, 16 * mebibyte, reload,
              "Bytes in one request including the closing empty line; at least max_line."),

      choice(RG_FIELD(log, target), R"("stderr")", log_target_names, restart,
             "Where log lines go: \"stderr\" (the journal under systemd), \"syslog\" or "
             "\"file\"."),
      text(RG_FIELD(log, file), R"("")", nullptr, restart,
           "Log file path; required when target is \"file\"."),
      choice(RG_FIELD(log, level), R"("info")", log_level_names, reload,
             "Least severe level written."),
      duration(RG_FIELD(log, summary_interval), R"("60s")", 0s, day, reload,
               "How often counters and peaks are logged; \"0s\" turns the summary off."),

      text(RG_FIELD(store, path), R"("rcptguard.db")", nullptr, restart,
           "SQLite database file; a relative path is relative to the working directory."),
      duration(RG_FIELD(store, flush_interval), R"("1s")", 10ms, 10s, restart,
               "Longest time a record waits in memory before it is written."),
      integer(RG_FIELD(store, max_pending_keys), "2000000", 1000, 100'000'000, restart,
              "Keys (recipient-minutes, distinct senders, correspondent pairs, flagged "
              "requests) held in memory while the database is slow; the writer merges what "
              "arrives into them, so nothing is dropped. Beyond this, new sender, pair and "
              "flagged-sender keys are folded and counted; message counts never are."),
      integer(RG_FIELD(store, writer_nice), "0", 0, 19, restart,
              "Nice value of the store's threads, the writer and the one folding what arrives "
              "(the network thread keeps 0). A higher value "
              "lets replies win when they share a core with the network thread, but on "
              "a host whose CPUs are busy with other work (content filters) the writer then "
              "falls behind by minutes: counts stay in memory longer, nothing is lost."),
      duration(RG_FIELD(store, retention), R"("60d")", day, 3650 * day, reload,
               "Age after which stored events are deleted."),
      integer(RG_FIELD(store, history_weeks), "8", 1, 104, restart,
              "Weeks of hourly history loaded at start-up for the baselines; at least "
              "detection.baseline.weeks."),
      duration(RG_FIELD(store, prune_interval), R"("1h")", 1min, day, restart,
               "How often rows older than retention are deleted, in small chunks."),

      boolean(RG_FIELD(spool, enabled), "false", restart,
              "Scan the mail spool from the daemon. Off by default: the daemon's user "
              "(server.user) then needs read access to every mailbox, which a site grants "
              "deliberately."),
      duration(RG_FIELD(spool, interval), R"("5m")", 10s, day, reload,
               "Time from the end of one scan to the start of the next. A scan reads only what "
               "was delivered since the last, so a short interval costs little."),
      text_list(RG_FIELD(spool, roots), R"(["/var/mail", "/var/spool/mail"])", check_absolute_path,
                reload,
                "Local spool directories: each file is an mbox named after its user (local(8) "
                "mail_spool_directory), each subdirectory with new/ or cur/ a Maildir, and each "
                "mailbox is owned by that user (check_owner). Virtual mailboxes, owned by one "
                "virtual uid, go in virtual_roots instead. Missing roots are skipped, and one "
                "reached twice through a symlink is read once. Read afresh every scan, so a "
                "reload applies to the next one."),
      text_list(RG_FIELD(spool, virtual_roots), "[]", check_absolute_path, reload,
                "Spool directories of virtual mailboxes, read like roots: virtual(8)'s "
                "virtual_mailbox_base/DOMAIN, or Dovecot's /var/vmail/DOMAIN when mail_location "
                "is maildir:/var/vmail/%d/%n. Their mailboxes are owned by virtual_owner whatever "
                "they are named, since a local part such as list or news may also be a system "
                "user. A directory in both lists is read as virtual, and a map path inside one "
                "follows the same rule."),
      text_list(RG_FIELD(spool, virtual_owner), "[]", check_user_or_uid, reload,
                "User names or numeric uids that own the mailboxes of virtual_roots: Postfix's "
                "virtual_uid_maps, Dovecot's mail_uid, e.g. [\"vmail\"]. A name that is not a "
                "user is an error; while none is known, every mailbox of virtual_roots is "
                "refused (with check_owner)."),
      text_list(RG_FIELD(spool, domains), "[]", check_domain, reload,
                "Local domains: mailbox bob stands for bob@ each of them. Empty: only mailboxes "
                "named in map give evidence the engine can use, since a bare user name is not "
                "an address Postfix asks about."),
      text_list(RG_FIELD(spool, map), "[]", check_mapping, reload,
                "\"user=address\" or \"/path/to/mailbox=address\" for virtual mailboxes, "
                "aliases and Maildirs outside the roots (\"/home/bob/Maildir=bob@example.test\"); "
                "an entry replaces the domains rule for its mailbox. A path is scanned even "
                "outside the roots."),
      integer(RG_FIELD(spool, min_repeats), "3", 2, million, reload,
              "Copies of one attachment (by SHA-256 of the decoded content) that the scanner "
              "reports; detection.thresholds.evidence_min_repeats decides what the engine makes "
              "of them."),
      duration(RG_FIELD(spool, window), R"("1h")", 1min, 30 * day, reload,
               "Copies count when stored this long before the scan at most: a flood arrives "
               "within the hour, a mailbox's years of newsletters do not count. At most "
               "retention."),
      duration(RG_FIELD(spool, retention), R"("24h")", 1h, 30 * day, reload,
               "Spool messages, attachments and evidence stored longer ago than this are deleted "
               "from the database and from the scanner's memory."),
      boolean(RG_FIELD(spool, check_owner), "true", reload,
              "Refuse a mailbox not owned by whom its layout says, so a planted file cannot "
              "speak for someone else's mailbox: in roots, the local user it is named after "
              "(when that user exists); in virtual_roots, one of virtual_owner. Maildir message "
              "files follow their Maildir's rule."),
      integer(RG_FIELD(spool, max_message_bytes), "67108864", 64 * 1024, 1024 * mebibyte, reload,
              "Largest message parsed, in bytes; a larger one is skipped, and reading goes on "
              "after it. Postfix's message_size_limit default is 10 MB; 64 MiB leaves room for "
              "sites that raised it."),
      integer(RG_FIELD(spool, max_header_bytes), "102400", 1024, 16 * mebibyte, reload,
              "Largest top-level header block of a message, in bytes; Postfix's "
              "header_size_limit default."),
      integer(RG_FIELD(spool, max_mime_depth), "64", 1, 1000, reload,
              "MIME nesting (multipart and message/rfc822 levels) followed before a message is "
              "skipped; bounds the parser's stack."),
      integer(RG_FIELD(spool, max_mime_parts), "1000", 1, 100'000, reload,
              "MIME parts of one message before it is skipped; each part costs a hash and a "
              "record, and a real message has a handful."),
      duration(RG_FIELD(spool, max_time_per_file), R"("10s")", 100ms, 10min, reload,
               "Time spent on one mailbox per scan; the rest is read by the next scan, so one "
               "huge mailbox cannot hold up the others."),

      text_list(RG_FIELD(ingest, files), "[]", check_absolute_path, restart,
                "Mail logs to follow like tail -F (absolute paths; rotation by rename and by "
                "copytruncate is followed). The daemon's user (server.user) needs read access, "
                "e.g. membership of group adm. Empty: no log is read. A new file is read from "
                "its end, a known one from the stored position."),
      text_list(RG_FIELD(ingest, instances), "[]", check_log_token, restart,
                "Count only messages received by these Postfix syslog names (\"postfix\", "
                "\"postfix/submission\", \"postfix-out\") or Sendmail programs (\"sm-mta\"). "
                "Required while files is set and the daemon listens for policy requests, unless "
                "hosts is set: list the instances whose smtpd does not ask rcptguard, so no "
                "message is counted twice."),
      text_list(RG_FIELD(ingest, hosts), "[]", check_log_token, restart,
                "Count only messages logged by these syslog hosts (a central log of other "
                "servers that have no policy hook). Empty: any host."),
      text_list(RG_FIELD(ingest, delivery_agents),
                toml_strings(ingest::joiner_options{}.delivery_agents), check_log_token, restart,
                "Postfix delivery daemons and Sendmail mailers whose deliveries are inbound to "
                "the recipient's mailbox. smtp is a relay (to a content filter or another "
                "server) and counts only when added, as on a gateway in front of the mailboxes."),
      text(RG_FIELD(ingest, utc_offset), R"("")", check_utc_offset, restart,
           "Offset of log timestamps that carry none (classic syslog \"Nov 27 00:00:01\"), "
           "e.g. \"+01:00\"; empty: the system time zone (TZ), following DST."),
      duration(RG_FIELD(ingest, poll_interval), R"("500ms")", 50ms, 1min, reload,
               "How often the files are checked for new lines. Log events reach the engine "
               "within this time of being written; the engine takes them at the daemon's next "
               "housekeeping tick (at most store.flush_interval, or 1s)."),
      duration(RG_FIELD(ingest, message_expiry), toml_duration(ingest::joiner_options{}.expiry),
               1min, 7 * day, restart,
               "A message with no log line for this long (log time) is forgotten, so one "
               "whose lines are incomplete does not stay in memory."),
      integer(RG_FIELD(ingest, max_open_messages),
              std::to_string(ingest::joiner_options{}.max_open_messages), 100, 100 * million,
              restart,
              "Messages (queue ids) followed at once; beyond this the oldest is forgotten "
              "first. A few hundred bytes each."),
      integer(RG_FIELD(ingest, max_line), std::to_string(ingest::default_max_line), 1024,
              16 * mebibyte, restart,
              "Longest log line read, in bytes; longer ones are cut (and counted)."),

      text(RG_FIELD(alerts, file), R"("")", nullptr, restart,
           "Append every alert episode (policy hook and logs) to this file as one JSON object "
           "per line, as `rcptguard ingest --alerts` and `rcptguard review alerts --format "
           "json` write them: a line when an episode opens and when it escalates to defer. "
           "Empty: not written. A failed write is logged; the daemon goes on."),
      text_list(RG_FIELD(alerts, command), "[]", check_argument, restart,
                "Program run for each alert the file gets a line for, with that JSON object and "
                "a newline on its stdin, e.g. [\"/usr/local/bin/alert-mail.sh\", "
                "\"security@example.test\"]. Run as written, without a shell: the first word is "
                "an absolute path. It runs as the daemon's user. Empty: nothing is run."),
      duration(RG_FIELD(alerts, command_timeout), R"("10s")", 100ms, 10min, restart,
               "A run still going after this gets SIGTERM (its whole process group), then "
               "SIGKILL 2 seconds later, and counts as timed out. A daemon stopping waits as "
               "long for the runs in progress (the systemd unit allows 30s)."),
      integer(RG_FIELD(alerts, command_concurrency), "2", 1, 32, restart,
              "Runs at once: a slow mail server or webhook holds up no more processes than this."),
      integer(RG_FIELD(alerts, command_queue), "100", 1, 10'000, restart,
              "Alerts waiting for a free run; beyond this an alert is not run but logged and "
              "counted (it is still in the database and the alert file)."),

      text(RG_FIELD(metrics, listen), R"("")", check_metrics_endpoint, restart,
           "Where to serve /metrics: \"inet:HOST:PORT\" or \"inet:[IPV6]:PORT\", e.g. "
           "\"inet:127.0.0.1:10042\" (the policy port plus one: Prometheus's exporter range "
           "9100-9999 is fully allocated, 9154 to postfix_exporter). Bound before the privilege "
           "drop. Empty: no endpoint."),
      text_list(RG_FIELD(metrics, allow_clients), R"(["127.0.0.0/8", "::1/128"])", check_cidr,
                reload,
                "Networks (CIDR; a bare address is one host) whose scrapes are answered; other "
                "connections are closed at once. The metrics reveal traffic volumes, not "
                "addresses, but keep this to the Prometheus servers."),

      text(RG_FIELD(cluster, redis), R"("")", check_redis_endpoint, restart,
           "The Redis the nodes share: \"inet:HOST:PORT\" or \"unix:/path\" (e.g. "
           "\"inet:10.0.0.5:6379\", \"unix:/run/redis/redis-server.sock\"); one standalone "
           "Redis or a Sentinel-managed primary's address, not Redis Cluster. Debian 12's "
           "hiredis has no TLS: reach a remote Redis over a private network or a tunnel. Empty: "
           "no cluster, this node's counts alone."),
      text(RG_FIELD(cluster, user), R"("")", nullptr, restart,
           "Redis ACL user (Redis 6 and later); empty: AUTH with the password alone."),
      text(RG_FIELD(cluster, password), R"("")", nullptr, restart,
           "Redis password (AUTH); empty: none. Keep the settings file readable by root and "
           "the daemon's group only."),
      text(RG_FIELD(cluster, node), R"("")", check_node_name, restart,
           "This node's name in the store (letters, digits, '-', '_', '.'); every node needs "
           "its own. Empty: the host name."),
      duration(RG_FIELD(cluster, interval), R"("250ms")", 50ms, 5s, restart,
               "How often the cluster thread publishes this node's counts and reads the other "
               "nodes': the other nodes' counts are at most about two intervals old when a "
               "verdict uses them."),
      duration(RG_FIELD(cluster, timeout), R"("200ms")", 10ms, 5s, restart,
               "Longest wait for Redis to connect or answer; past it the store counts as lost "
               "until a reconnect succeeds (tried again every interval, backing off to 5s)."),
      duration(bind<&config::detection, &decision::settings::cluster_max_age>("cluster.max_age"),
               R"("2s")", 100ms, 60s, reload,
               "The other nodes' counts are added to a verdict while no older than this; older "
               "(the reads stopped), this node judges on its own counts. At least twice the "
               "interval."),
      text(RG_FIELD(cluster, key_prefix), R"("rcptguard:")", check_key_prefix, restart,
           "Prefix of every key in Redis, so several clusters (or other programs) can share "
           "one Redis."),
      integer(RG_FIELD(cluster, max_keys), "1000000", 1000, 100'000'000, restart,
              "This node's recipient-minutes and recipient-hours held for publishing (about 100 "
              "bytes each); an RCPT for a new one beyond this is left out of the cluster's "
              "counts (this node still counts it) and counted as cluster_refused."),
      integer(RG_FIELD(cluster, min_count), "2", 1, 1000, restart,
              "A recipient is shared with the other nodes once it has this many RCPTs on this "
              "node within 10 minutes (then all of them are): a load of many recipients with "
              "one message each costs the store nothing, and the cluster's count of a recipient "
              "lacks at most this minus one of each node's RCPTs. 1 shares every recipient."),
      integer(RG_FIELD(cluster, max_pull), "1000", 1, 1'000'000, restart,
              "Recipients whose other nodes' counts are read each interval: those with mail "
              "here in the last two minutes, the most RCPTs here first. Each costs Redis about "
              "40 reads a round, so this bounds a round's time."),
      integer(RG_FIELD(cluster, max_correspondents), "10000", 10, 1'000'000, restart,
              "Senders the cluster store keeps as known correspondents of one recipient (about "
              "60 bytes each in Redis); beyond it a new pair is not shared (counted as "
              "cluster_correspondents_refused) and passes only on the node that saw it. Pairs "
              "last store.retention after a recipient's latest one."),
      integer(bind<&config::detection, &decision::settings::max_cluster_recipients>(
                  "cluster.max_recipients"),
              "100000", 100, 10'000'000, restart,
              "Recipients whose other nodes' counts the engine holds (about 250 bytes each)."),

      text(RG_FIELD(control, socket), R"("rcptguard.control")", check_socket_path, restart,
           "Path of the control socket, bound before the privilege drop; a relative path is "
           "relative to the working directory, of the daemon and of each command, so give an "
           "absolute one (e.g. \"/run/rcptguard/control.sock\") for commands run from anywhere. "
           "An existing path is replaced only if it is a stale socket. Empty turns the controls "
           "off."),
      file_mode(RG_FIELD(control, socket_mode), R"("0660")", restart,
                "Permission bits of the control socket, in octal. Whoever can open it must still "
                "be root, the daemon's user or a member of group."),
      text(RG_FIELD(control, group), R"("")", check_group, restart,
           "Group that owns the control socket and whose members (primary or supplementary) "
           "may use it besides root and the daemon's user. Empty: the daemon's group (server."
           "user's, else the group it was started with)."),

      choice(RG_DETECTION(mode), from_struct, detection_mode_names, reload,
             "\"monitor\" answers WARN (Postfix logs it and accepts the mail) wherever enforce "
             "would warn or defer, and never defers; \"enforce\" sends defer_action. Start in "
             "monitor: a fresh install must not defer mail before it is tuned."),
      text(RG_DETECTION(defer_action), from_struct, check_action, reload,
           "The answer for a deferred recipient: DEFER_IF_PERMIT, DEFER or a 4NN reply code, "
           "optionally followed by a 4.X.Y enhanced status code (4.2.1 is \"mailbox busy\")."),
      choice(RG_DETECTION(enforce_action), from_struct, flood_action_names, reload,
             "What enforce mode answers a recipient at the defer level: \"defer\" sends "
             "defer_action; \"flag\" accepts the message with flag_header prepended, so the "
             "delivery agent can file it into Junk (contrib/mail-filters/), and still defers at "
             "hard_defer_score. Known correspondents and allow-listed senders get neither."),
      text(RG_DETECTION(flag_header), from_struct, check_header_name, reload,
           "Header name for enforce_action = \"flag\"; its value is \"<recipient> "
           "episode=<start, UTC> score=<score>\"."),
      real(RG_DETECTION(hard_defer_score), from_struct, 0.0, 100.0, reload,
           "With enforce_action = \"flag\": a score at or above this is deferred instead "
           "(the defer point scores 2, a volume four times past it 4)."),
      choice(RG_DETECTION(end_of_message_hook), from_struct, end_of_message_hook_names, reload,
             "Whether Postfix also queries rcptguard from smtpd_end_of_data_restrictions: "
             "\"present\" counts a RCPT only once its message is accepted, \"absent\" counts it "
             "at once, \"auto\" counts at once until the first END-OF-MESSAGE request arrives."),
      text(RG_DETECTION(recipient_delimiters), from_struct, check_delimiters, reload,
           "Postfix's recipient_delimiter: bob+tag@example.test counts as bob@example.test. "
           "Empty: addresses are counted as written."),
      integer(RG_DETECTION(ipv6_prefix), from_struct, 0, 128, reload,
              "IPv6 clients are counted per network of this prefix length; a /64 is usually one "
              "host or customer, who may rotate addresses within it freely."),
      integer(RG_DETECTION(max_tracked_recipients), from_struct, 1000, 100 * million, restart,
              "Recipients counted in memory (about 250 bytes each); beyond this the coldest is "
              "forgotten first."),
      integer(RG_DETECTION(pair_slots), from_struct, 1024, 256 * million, restart,
              "Sender and client pairs remembered for counting distinct senders and clients "
              "(16 bytes each; rounded up to a power of two)."),
      integer(RG_DETECTION(correspondent_slots), from_struct, 1024, 256 * million, restart,
              "Known correspondents kept in memory (16 bytes each; rounded up to a power of "
              "two); the store keeps the rest."),
      integer(RG_DETECTION(client_session_slots), from_struct, 1024, 256 * million, restart,
              "Client address+port sessions remembered for counting connections per client "
              "(16 bytes each; rounded up to a power of two)."),
      integer(RG_DETECTION(client_connection_slots), from_struct, 1024, 256 * million, restart,
              "Clients whose connections are counted per window (16 bytes each; rounded up to a "
              "power of two); the least recently seen is forgotten first."),
      integer(RG_DETECTION(max_open_transactions), from_struct, 16, million, restart,
              "SMTP transactions followed at once; smtpd has one open per process, so thousands "
              "is already huge."),
      integer(RG_DETECTION(max_recipients_per_transaction), from_struct, 1, 100'000, restart,
              "RCPTs of one transaction that are de-duplicated; more are counted but not "
              "de-duplicated. Postfix's smtpd_recipient_limit defaults to 1000."),
      duration(RG_DETECTION(transaction_timeout), from_struct, 1min, day, reload,
               "A transaction open this long is closed; the DATA phase of a large message over "
               "a slow link can take many minutes."),
      duration(RG_DETECTION(detached_transaction_grace), from_struct, 0s, 5min, reload,
               "How long a closed connection's transaction waits for Postfix's retry of a "
               "failed policy request (after 1s, on a new connection) before it is rolled back."),
      duration(RG_DETECTION(correspondent_min_age), from_struct, 0s, 30 * day, reload,
               "A sender counts as a known correspondent only if first seen this long before the "
               "episode started, so the first minutes of a flood cannot make its senders known."),
      real(RG_DETECTION(episode_peak_step), from_struct, 1.0, 100.0, reload,
           "An episode record is stored again only when its score grew by this factor (or its "
           "level rose), so a growing flood does not write one record per message."),
      duration(RG_DETECTION(idle_expiry), from_struct, day, 365 * day, reload,
               "Idle recipients without a learned baseline are forgotten after this long; more "
               "than a day, so the 24-hour window has emptied."),
      text_list(RG_DETECTION(allow_recipients), from_struct, check_address_pattern, reload,
                "Recipients always answered DUNNO (still counted): \"bob@example.test\", "
                "\"*@example.test\" or \"@example.test\" for a domain, or a '*'/'?' glob."),
      text_list(RG_DETECTION(allow_senders), from_struct, check_address_pattern, reload,
                "Senders whose mail is always answered DUNNO (still counted); patterns as in "
                "allow_recipients."),
      text_list(RG_DETECTION(allow_clients), from_struct, check_cidr, reload,
                "Client networks (CIDR; a bare address is one host) whose mail is always "
                "answered DUNNO (still counted)."),

      integer(RG_WINDOW(minute, warn_floor), from_struct, 1, million, reload,
              "1 minute: only bursts far above any normal delivery pattern; lists deliver in "
              "bursts. Warn at this many messages at least."),
      real(RG_WINDOW(minute, warn_factor), from_struct, 0.1, 1000.0, reload,
           "Warn at this multiple of the expected count, if above the floor."),
      integer(RG_WINDOW(minute, defer_floor), from_struct, 1, million, reload,
              "Defer at this many messages at least; at or above the warn floor."),
      real(RG_WINDOW(minute, defer_factor), from_struct, 0.1, 1000.0, reload,
           "Defer at this multiple of the expected count; at or above the warn factor."),
      integer(RG_WINDOW(ten_minutes, warn_floor), from_struct, 1, million, reload,
              "10 minutes, the main flood detector: 20 mails in 10 minutes is a flood for a "
              "mailbox that normally gets a few an hour."),
      real(RG_WINDOW(ten_minutes, warn_factor), from_struct, 0.1, 1000.0, reload,
           "Multiples of the learned rate leave room for busy days."),
      integer(RG_WINDOW(ten_minutes, defer_floor), from_struct, 1, million, reload,
              "Defer floor of the 10-minute window."),
      real(RG_WINDOW(ten_minutes, defer_factor), from_struct, 0.1, 1000.0, reload,
           "Defer factor of the 10-minute window."),
      integer(RG_WINDOW(hour, warn_floor), from_struct, 1, million, reload,
              "1 hour: catches floods paced to stay under the 10-minute floor (one a minute all "
              "hour)."),
      real(RG_WINDOW(hour, warn_factor), from_struct, 0.1, 1000.0, reload,
           "Warn factor of the hour window."),
      integer(RG_WINDOW(hour, defer_floor), from_struct, 1, million, reload,
              "Defer floor of the hour window."),
      real(RG_WINDOW(hour, defer_factor), from_struct, 0.1, 1000.0, reload,
           "Defer factor of the hour window."),
      integer(RG_WINDOW(day, warn_floor), from_struct, 1, million, reload,
              "24 hours: slow floods. A day's volume is steadier than an hour's, so the factors "
              "are smaller."),
      real(RG_WINDOW(day, warn_factor), from_struct, 0.1, 1000.0, reload,
           "Warn factor of the day window."),
      integer(RG_WINDOW(day, defer_floor), from_struct, 1, million, reload,
              "Defer floor of the day window."),
      real(RG_WINDOW(day, defer_factor), from_struct, 0.1, 1000.0, reload,
           "Defer factor of the day window."),
      real(RG_LIMIT(warn_score), from_struct, 0.1, 20.0, reload,
           "Score at which a recipient is warned about. A window at its warn point scores 1.0, "
           "at its defer point 2.0; the other signals add their weights."),
      real(RG_LIMIT(defer_score), from_struct, 0.1, 20.0, reload,
           "Score at which a recipient is deferred; at least warn_score."),
      real(RG_LIMIT(warn_exit_score), from_struct, 0.0, 10.0, reload,
           "Hysteresis: a warned recipient stays warned until its score stays below this for "
           "cool_down; below warn_score, so one quiet minute does not release a flood."),
      real(RG_LIMIT(defer_exit_score), from_struct, 0.0, 10.0, reload,
           "As warn_exit_score for deferral; below defer_score."),
      duration(RG_LIMIT(cool_down), from_struct, 0s, day, reload,
               "Long enough to outlast the gaps of a bursty flood, short enough to release "
               "within the hour."),
      real(RG_LIMIT(amplifier_gate), from_struct, 0.0, 4.0, reload,
           "The other signals only add weight once the volume score reaches this: three mails "
           "from three senders are not a subscription bomb."),
      integer(RG_LIMIT(sender_diversity_floor), from_struct, 1, million, reload,
              "Distinct senders in 10 minutes (or the hour) beyond max(floor, factor x expected) "
              "add sender_diversity_weight: subscription bombs are many distinct senders."),
      real(RG_LIMIT(sender_diversity_factor), from_struct, 0.1, 1000.0, reload,
           "Multiple of the expected distinct senders; see sender_diversity_floor."),
      real(RG_LIMIT(sender_diversity_weight), from_struct, 0.0, 10.0, reload,
           "Score added by sender diversity; 0 turns the signal off."),
      integer(RG_LIMIT(client_diversity_floor), from_struct, 1, million, reload,
              "Distinct clients in 10 minutes that add client_diversity_weight: botnets and list "
              "servers spread over many addresses."),
      real(RG_LIMIT(client_diversity_weight), from_struct, 0.0, 10.0, reload,
           "Score added by client diversity; 0 turns the signal off."),
      real(RG_LIMIT(single_client_share), from_struct, 0.01, 1.0, reload,
           "One client sending this share of a recipient's mail in 10 minutes is single-source "
           "hammering."),
      integer(RG_LIMIT(single_client_min_messages), from_struct, 1, million, reload,
              "Messages needed before single_client_share means anything."),
      real(RG_LIMIT(single_client_weight), from_struct, 0.0, 10.0, reload,
           "Score added by single-source hammering; 0 turns the signal off."),
      integer(RG_LIMIT(connection_rate_min_connections), from_struct, 1, million, reload,
              "Connections in 10 minutes from one client for one recipient before "
              "connection_rate_share means anything."),
      real(RG_LIMIT(connection_rate_share), from_struct, 0.01, 1.0, reload,
           "A client whose connections target one recipient at this share is hammering it."),
      real(RG_LIMIT(connection_rate_weight), from_struct, 0.0, 10.0, reload,
           "Score added by the connection-rate signal; low because big senders also open one "
           "connection per message. 0 turns the signal off."),
      real(RG_LIMIT(concentration_share), from_struct, 0.01, 1.0, reload,
           "A recipient receiving this share of all inbound RCPTs in 10 minutes is a target."),
      integer(RG_LIMIT(concentration_min_total), from_struct, 1, 1000 * million, reload,
              "Server-wide RCPTs in 10 minutes needed before concentration_share means "
              "anything."),
      real(RG_LIMIT(concentration_weight), from_struct, 0.0, 10.0, reload,
           "Score added by concentration; 0 turns the signal off."),
      integer(RG_LIMIT(evidence_min_repeats), from_struct, 1, million, reload,
              "Identical attachments found in the mailbox by the spool scanner that count as "
              "evidence of a flood."),
      duration(RG_LIMIT(evidence_max_age), from_struct, 1min, 30 * day, reload,
               "Spool evidence older than this is ignored."),
      real(RG_LIMIT(evidence_weight), from_struct, 0.0, 10.0, reload,
           "Score added by spool evidence; enough to lift a volume between the warn and defer "
           "points to a deferral."),
      real(RG_LIMIT(baseline_ceiling_per_hour), from_struct, 1.0, 1e7, reload,
           "Learned hourly baselines never exceed this many messages: an attacker cannot teach "
           "more. Busier accounts belong in a class with a higher ceiling."),
      real(RG_LIMIT(baseline_spread_weight), from_struct, 0.0, 100.0, reload,
           "Expected = median + weight x MAD, so mailboxes with a noisy normal get more room."),
      real(RG_LIMIT(burst_warn_factor), from_struct, 1.0, 100.0, reload,
           "A window warns at no less than this times the recipient's usual burst in it: the "
           "largest 1-minute, 10-minute or 1-hour volume it had outside trusted episodes in the "
           "last detection.baseline.weeks weeks (ticket storms, newsletter copies)."),
      real(RG_LIMIT(burst_defer_factor), from_struct, 1.0, 100.0, reload,
           "A window reaches its defer point at no less than this times the usual burst."),

      integer(RG_BASELINE(min_history_hours), from_struct, 0, 8760, reload,
              "Hours of history before a recipient's baseline is fully trusted: until then its "
              "episodes are not taken for floods (their hours are learned from), the rise cap "
              "does not apply and it does not count towards the server-wide prior. A week "
              "covers every hour of the week."),
      integer(RG_BASELINE(cold_start_hours), from_struct, 0, 8760, reload,
              "Hours of own history before a recipient is judged by its own baseline alone; "
              "until then the server-wide prior is blended in linearly."),
      integer(RG_BASELINE(weeks), from_struct, 1, 104, reload,
              "Past weeks sampled for the same hour of the week; a median of four that one "
              "flooded week cannot move. At most store.history_weeks."),
      integer(RG_BASELINE(recent_days), from_struct, 0, 728, reload,
              "Past days sampled for the same hour of the day; at most 7 x "
              "store.history_weeks."),
      real(RG_BASELINE(max_rise_per_day), from_struct, 0.0, 10.0, reload,
           "A learned baseline rises at most this fraction per day, so a slow ramp stays "
           "visible."),
      integer(RG_BASELINE(lookahead_hours), from_struct, 0, 24, reload,
              "The expectation is the largest of this many following hours too, so a late "
              "history update errs towards fewer alerts."),
      real(RG_BASELINE(prior_quantile), from_struct, 0.0, 1.0, reload,
           "The cold-start prior is this quantile of all recipients' mean hourly volume."),
      real(RG_BASELINE(prior_floor_hourly), from_struct, 0.001, 1e6, reload,
           "Floor of the prior and of the rise cap's base (messages per hour), so a silent "
           "mailbox can still learn."),
      integer(RG_BASELINE(prior_min_recipients), from_struct, 1, million, reload,
              "Fewer learned recipients than this leave the prior at its previous value."),
  };
}

#undef RG_FIELD
#undef RG_DETECTION
#undef RG_BASELINE
#undef RG_LIMIT
#undef RG_WINDOW

// Fills in the detection defaults from a default-constructed config, whose detection member is
// decision::settings{}: decision/settings.hpp stays the one place they are written.
std::vector<setting> build_table() {
  std::vector<setting> rows = make_table();
  const config reference{};
  for (setting& s : rows) {
    if (s.default_value.empty()) s.default_value = format_value(s, s.field.read(reference));
  }
  return rows;
}

const std::vector<setting>& table() {
  static const std::vector<setting> rows = build_table();
  return rows;
}

bool same_thresholds(const decision::thresholds& a, const decision::thresholds& b) {
  return std::all_of(table().begin(), table().end(), [&](const setting& s) {
    return s.limits.read == nullptr || s.limits.read(a) == s.limits.read(b);
  });
}

bool same_classes(const config& a, const config& b) {
  return std::equal(a.detection.classes.begin(), a.detection.classes.end(),
                    b.detection.classes.begin(), b.detection.classes.end(),
                    [](const decision::recipient_class& x, const decision::recipient_class& y) {
                      return x.name == y.name && x.recipients == y.recipients &&
                             same_thresholds(x.limits, y.limits);
                    });
}

bool same_overrides(const config& a, const config& b) {
  return std::equal(
      a.detection.overrides.begin(), a.detection.overrides.end(), b.detection.overrides.begin(),
      b.detection.overrides.end(),
      [](const decision::recipient_override& x, const decision::recipient_override& y) {
        return x.recipient == y.recipient && same_thresholds(x.limits, y.limits);
      });
}

void copy_classes(config& to, const config& from) {
  to.detection.classes = from.detection.classes;
}

void copy_overrides(config& to, const config& from) {
  to.detection.overrides = from.detection.overrides;
}

constexpr std::array array_table{
    table_array{"detection.class", reload,
                "Recipients that are busy by design (mailing lists, ticket queues, archive "
                "copies) get their own thresholds. Each [[detection.class]] has a unique name, "
                "recipients (patterns as in detection.allow_recipients) and any keys of "
                "[detection.thresholds]; keys left out take the [detection.thresholds] value. "
                "The first class whose pattern matches applies.",
                &same_classes, &copy_classes},
    table_array{"detection.override", reload,
                "One recipient with its own thresholds, checked before the classes: recipient "
                "and any keys of [detection.thresholds]; keys left out take the "
                "[detection.thresholds] value.",
                &same_overrides, &copy_overrides},
};

}  // namespace

std::span<const setting> all() {
  return table();
}

std::span<const section> sections() {
  return section_table;
}

std::span<const table_array> arrays() {
  return array_table;
}

const setting* find(std::string_view key) {
  const auto& rows = table();
  const auto it =
      std::find_if(rows.begin(), rows.end(), [key](const setting& s) { return s.key == key; });
  return it == rows.end() ? nullptr : &*it;
}

const table_array* find_array(std::string_view key) {
  const auto* it = std::find_if(array_table.begin(), array_table.end(),
                                [key](const table_array& a) { return a.key == key; });
  return it == array_table.end() ? nullptr : it;
}

bool is_section(std::string_view name) {
  return std::any_of(section_table.begin(), section_table.end(),
                     [name](const section& s) { return s.name == name; });
}

std::string format_real(double v) {
  std::array<char, 400> buffer{};
  // Plain digits read better than "1e+07"; exponents only where digits would run long.
  const double size = std::fabs(v);
  const bool plain = size == 0 || (size >= 1e-6 && size < 1e15);
  const auto [end, ec] = plain ? std::to_chars(buffer.data(), buffer.data() + buffer.size(), v,
                                               std::chars_format::fixed)
                               : std::to_chars(buffer.data(), buffer.data() + buffer.size(), v);
  std::string out{buffer.data(), ec == std::errc{} ? end : buffer.data()};
  if (!std::isfinite(v)) return out;  // "inf" and "nan" are TOML floats as they are
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

std::string format_value(const setting& s, const value& v) {
  const auto quoted = [](std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  };
  switch (s.type) {
    case value_type::integer:
      return std::to_string(std::get<std::int64_t>(v));
    case value_type::real:
      return format_real(std::get<double>(v));
    case value_type::duration:
      return quoted(format_duration(std::get<std::chrono::milliseconds>(v)));
    case value_type::text:
      return quoted(std::get<std::string>(v));
    case value_type::text_list: {
      std::string out = "[";
      for (const std::string& item : std::get<std::vector<std::string>>(v)) {
        if (out.size() > 1) out += ", ";
        out += quoted(item);
      }
      return out + "]";
    }
    case value_type::choice:
      return quoted(s.choices[static_cast<std::size_t>(std::get<std::int64_t>(v))]);
    case value_type::boolean:
      return std::get<std::int64_t>(v) != 0 ? "true" : "false";
    case value_type::file_mode:
      break;
  }
  std::string digits(4, '0');
  std::int64_t mode = std::get<std::int64_t>(v);
  for (auto it = digits.rbegin(); it != digits.rend(); ++it, mode >>= 3) {
    *it = static_cast<char>('0' + (mode & 7));
  }
  return quoted(digits);
}

std::string configured_text(const protocol::policy_action& action) {
  std::string out;
  switch (action.verb) {
    case protocol::action_verb::defer_if_permit:
      out = "DEFER_IF_PERMIT";
      break;
    case protocol::action_verb::defer:
      out = "DEFER";
      break;
    case protocol::action_verb::smtp_code:
      out = action.code;
      break;
    case protocol::action_verb::dunno:
      out = "DUNNO";  // not configurable; check_action() refuses it
      break;
    case protocol::action_verb::warn:
      out = "WARN";
      break;
    case protocol::action_verb::prepend:
      out = "PREPEND";  // not configurable either
      break;
  }
  if (!action.text.empty()) out += " " + action.text;
  return out;
}

}  // namespace rcptguard::settings
