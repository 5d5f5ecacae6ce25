// The settings table (one row per key) and the checks its rows name. Defaults live only here.
#include "config/settings.hpp"

#include <algorithm>
#include <array>
#include <type_traits>
#include <utility>

#include "config/address.hpp"
#include "protocol/reply.hpp"

namespace rcptguard::settings {

namespace {

using namespace std::chrono_literals;

// A row's value type and its field's C++ type are checked against each other when the row's
// default is stored: a mismatch throws, and the defaults test fails.
template <auto Section, auto Field>
void store_field(config& c, value&& v) {
  auto& field = (c.*Section).*Field;
  using field_type = std::remove_reference_t<decltype(field)>;
  if constexpr (std::is_enum_v<field_type> || std::is_integral_v<field_type>) {
    field = static_cast<field_type>(std::get<std::int64_t>(v));
  } else if constexpr (std::is_same_v<field_type, std::chrono::milliseconds>) {
    field = std::get<std::chrono::milliseconds>(v);
  } else if constexpr (std::is_same_v<field_type, std::string>) {
    field = std::move(std::get<std::string>(v));
  } else {
    static_assert(std::is_same_v<field_type, std::vector<std::string>>, "no value for this type");
    field = std::move(std::get<std::vector<std::string>>(v));
  }
}

template <auto Section, auto Field>
bool equal_field(const config& a, const config& b) {
  return (a.*Section).*Field == (b.*Section).*Field;
}

struct bound_field {
  std::string_view key;
  field_access field;
};

template <auto Section, auto Field>
constexpr bound_field bind(std::string_view key) {
  return {key, {&store_field<Section, Field>, &equal_field<Section, Field>}};
}

// The key is spelled from the same tokens as the field, so "server.user" can only ever fill
// config.server.user; only the preprocessor can turn a member name into text.
// NOLINTNEXTLINE(cppcoreguidelines-macro-usage)
#define RG_FIELD(section, name) \
  bind<&config::section, &decltype(config::section)::name>(#section "." #name)

constexpr setting integer(bound_field f, std::string_view default_value, std::int64_t min,
                          std::int64_t max, applies when, std::string_view doc) {
  return {f.key, value_type::integer, default_value, min, max, {}, nullptr, when, doc, f.field};
}

constexpr setting duration(bound_field f, std::string_view default_value,
                           std::chrono::milliseconds min, std::chrono::milliseconds max,
                           applies when, std::string_view doc) {
  return {
      f.key,  value_type::duration, default_value, min.count(), max.count(), {}, nullptr, when, doc,
      f.field};
}

constexpr setting text(bound_field f, std::string_view default_value, check_fn check, applies when,
                       std::string_view doc) {
  return {f.key, value_type::text, default_value, 0, 0, {}, check, when, doc, f.field};
}

constexpr setting text_list(bound_field f, std::string_view default_value, check_fn check,
                            applies when, std::string_view doc) {
  return {f.key, value_type::text_list, default_value, 0, 0, {}, check, when, doc, f.field};
}

constexpr setting choice(bound_field f, std::string_view default_value,
                         std::span<const std::string_view> choices, applies when,
                         std::string_view doc) {
  return {f.key, value_type::choice, default_value, 0, 0, choices, nullptr, when, doc, f.field};
}

constexpr setting file_mode(bound_field f, std::string_view default_value, applies when,
                            std::string_view doc) {
  return {f.key, value_type::file_mode, default_value, 0, 0777, {}, nullptr, when, doc, f.field};
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

std::string check_action(std::string_view text) {
  protocol::policy_action parsed;
  if (protocol::parse_configured_action(text, parsed) == protocol::action_error::none) return {};
  return "expected DEFER_IF_PERMIT, DEFER or a 4NN reply code, optionally followed by a 4.X.Y "
         "enhanced status code";
}

constexpr auto restart = applies::on_restart;
constexpr auto reload = applies::on_reload;
constexpr std::int64_t mebibyte = std::int64_t{1024} * 1024;
constexpr std::chrono::milliseconds day = 24h;

constexpr std::array section_table{
    section{"server", "Sockets, who may connect, and how long a connection may last."},
    section{"limits", "Bounds on what one policy client may send, checked before buffering it."},
    section{"log", "Where log lines go and how much is written."},
    section{"store", "The SQLite database of counters and events, written on its own thread."},
    section{"detection", "What is done with a verdict."},
};

// Grouped by section, in section_table order; the sample file follows this order.
constexpr std::array table{
    text_list(RG_FIELD(server, listen), R"(["inet:127.0.0.1:10041"])", check_endpoint, restart,
              "Sockets to accept Postfix policy connections on: \"inet:HOST:PORT\", "
              "\"inet:[IPV6]:PORT\" or \"unix:/absolute/path\". Port 0 picks a free port, "
              "which only tests want."),
    text_list(RG_FIELD(server, allow_clients), R"(["127.0.0.0/8", "::1/128"])", check_cidr, reload,
              "Networks (CIDR; a bare address is one host) whose TCP connections are served; "
              "others are closed at once. An empty list refuses every TCP client. Unix sockets "
              "are guarded by unix_socket_mode and unix_socket_group instead."),
    file_mode(RG_FIELD(server, unix_socket_mode), R"("0660")", restart,
              "Permission bits of unix listen sockets, in octal; Postfix's user needs write "
              "access."),
    text(RG_FIELD(server, unix_socket_group), R"("")", nullptr, restart,
         "Group that owns unix listen sockets; empty leaves the daemon's own group."),
    text(RG_FIELD(server, user), R"("")", nullptr, restart,
         "Account to switch to once sockets, database and log file are open; empty keeps the "
         "starting user."),
    integer(RG_FIELD(server, max_connections), "1024", 1, 100'000, reload,
            "Policy connections served at once; more are closed when accepted. Postfix opens one "
            "per smtpd process that asks."),
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
           "Where log lines go: \"stderr\" (the journal under systemd), \"syslog\" or \"file\"."),
    text(RG_FIELD(log, file), R"("")", nullptr, restart,
         "Log file path; required when target is \"file\"."),
    choice(RG_FIELD(log, level), R"("info")", log_level_names, reload,
           "Least severe level written."),
    duration(RG_FIELD(log, summary_interval), R"("60s")", 0s, day, reload,
             "How often counters and peaks are logged; \"0s\" turns the summary off."),

    text(RG_FIELD(store, path), R"("rcptguard.db")", nullptr, restart,
         "SQLite database file; a relative path is relative to the working directory."),
    duration(RG_FIELD(store, flush_interval), R"("500ms")", 10ms, 10s, restart,
             "Longest time a record waits in memory before it is written."),
    integer(RG_FIELD(store, queue_capacity), "100000", 100, 10'000'000, restart,
            "Records waiting for the writer; beyond this new records are dropped and counted, "
            "never waited for."),
    duration(RG_FIELD(store, retention), R"("60d")", day, 3650 * day, reload,
             "Age after which stored events are deleted."),

    choice(RG_FIELD(detection, mode), R"("monitor")", detection_mode_names, reload,
           "\"monitor\" logs and stores verdicts but always answers DUNNO; \"enforce\" also "
           "sends defer_action to Postfix."),
    text(RG_FIELD(detection, defer_action), R"("DEFER_IF_PERMIT 4.2.1")", check_action, reload,
         "The answer for a deferred recipient: DEFER_IF_PERMIT, DEFER or a 4NN reply code, "
         "optionally followed by a 4.X.Y enhanced status code."),
};

#undef RG_FIELD

}  // namespace

std::span<const setting> all() {
  return table;
}

std::span<const section> sections() {
  return section_table;
}

const setting* find(std::string_view key) {
  const auto* it =
      std::find_if(table.begin(), table.end(), [key](const setting& s) { return s.key == key; });
  return it == table.end() ? nullptr : it;
}

}  // namespace rcptguard::settings
