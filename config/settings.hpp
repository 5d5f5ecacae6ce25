// The settings table: one row per key with its type, default, bounds, documentation and the
// config field it fills. Loading, defaults, the sample file and reload diffs all read it, so
// adding a setting is one row here plus one struct field in config.hpp (or, for detection, in
// decision/settings.hpp, whose default the row takes over).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace rcptguard::settings {

enum class value_type : std::uint8_t {
  integer,    ///< TOML integer within [min, max]
  real,       ///< TOML float (or integer) within [real_min, real_max]
  duration,   ///< duration string or integer seconds; min and max are milliseconds
  text,       ///< TOML string, optionally checked
  text_list,  ///< array of TOML strings, each optionally checked
  choice,     ///< one of `choices`; stored as the matching enumerator
  file_mode,  ///< octal digits as a TOML string ("0660") within [min, max]
  boolean,    ///< TOML true or false; stored as int64 0 or 1
};

/// Whether a running daemon picks up a new value on reload or only on restart.
enum class applies : std::uint8_t { on_reload, on_restart };

/// A checked value on its way into `config`: integer, file_mode, boolean (0 or 1) and choice
/// (the index into `choices`) use int64, real double, duration milliseconds, text string,
/// text_list a vector.
using value = std::variant<std::int64_t, double, std::chrono::milliseconds, std::string,
                           std::vector<std::string>>;

/// Validates one text or list element; returns why it is wrong, or "" when it is fine.
using check_fn = std::string (*)(std::string_view);

/// How a row reaches its struct field, without the loader knowing any field by name.
struct field_access {
  void (*store)(config&, value&&);
  value (*read)(const config&);  ///< the field as the value store() would take
  void (*copy)(config& to, const config& from);
  /// Durations: milliseconds per tick of the field (1000 for a std::chrono::seconds field), so a
  /// value the field cannot hold exactly is refused instead of truncated.
  std::int64_t duration_step_ms;
};

/// The same field inside one decision::thresholds block, for rows of [detection.thresholds]:
/// those keys also appear in every [[detection.class]] and [[detection.override]] element.
struct limits_access {
  void (*store)(decision::thresholds&, value&&);
  value (*read)(const decision::thresholds&);
};

struct setting {
  std::string_view key;  ///< "section.name"; the section may itself be dotted
  value_type type;
  /// The default as TOML value text, exactly as the sample file shows it, e.g. "\"10s\"". For
  /// detection rows it is generated from the field in a default-constructed decision::settings.
  std::string default_value;
  std::int64_t min;
  std::int64_t max;
  double real_min;
  double real_max;
  std::span<const std::string_view> choices;
  check_fn check;  ///< may be null
  applies when;
  std::string_view doc;  ///< one sentence or two; the sample file wraps it
  field_access field;
  limits_access limits;  ///< null members except in [detection.thresholds]

  std::string_view section() const { return key.substr(0, key.rfind('.')); }
  std::string_view name() const { return key.substr(key.rfind('.') + 1); }
};

struct section {
  std::string_view name;  ///< "detection.thresholds" for [detection.thresholds]
  std::string_view doc;
};

/// A key whose value is an array of tables ([[detection.class]]); loaded by config.cpp, listed
/// here so that reload diffs and the sample file know about it.
struct table_array {
  std::string_view key;
  applies when;
  std::string_view doc;
  bool (*equal)(const config&, const config&);
  void (*copy)(config& to, const config& from);
};

/// Every setting, grouped by section in the order of sections().
std::span<const setting> all();
std::span<const section> sections();
std::span<const table_array> arrays();
/// nullptr when `key` is not a setting.
const setting* find(std::string_view key);
const table_array* find_array(std::string_view key);
bool is_section(std::string_view name);

/// `v` as TOML value text for row `s`, the way the sample file writes it ("\"10s\"", "8.0").
std::string format_value(const setting& s, const value& v);
/// A double as TOML float text: the shortest exact spelling, always with a '.' or exponent.
std::string format_real(double v);

/// The spelling protocol::parse_configured_action() takes back, e.g. "DEFER_IF_PERMIT 4.2.1".
std::string configured_text(const protocol::policy_action& action);

}  // namespace rcptguard::settings
