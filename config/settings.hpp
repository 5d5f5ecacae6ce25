// The settings table: one row per key with its type, default, bounds, documentation and the
// config field it fills. Loading, defaults, the sample file and reload diffs all read it, so
// adding a setting is one row here plus one struct field in config.hpp.
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
  duration,   ///< duration string or integer seconds; min and max are milliseconds
  text,       ///< TOML string, optionally checked
  text_list,  ///< array of TOML strings, each optionally checked
  choice,     ///< one of `choices`; stored as the matching enumerator
  file_mode,  ///< octal digits as a TOML string ("0660") within [min, max]
};

/// Whether a running daemon picks up a new value on reload or only on restart.
enum class applies : std::uint8_t { on_reload, on_restart };

/// A checked value on its way into `config`: integer, file_mode and choice (the index into
/// `choices`) use int64, duration milliseconds, text string, text_list a vector.
using value =
    std::variant<std::int64_t, std::chrono::milliseconds, std::string, std::vector<std::string>>;

/// Validates one text or list element; returns why it is wrong, or "" when it is fine.
using check_fn = std::string (*)(std::string_view);

/// How a row reaches its struct field, without the loader knowing any field by name.
struct field_access {
  void (*store)(config&, value&&);
  bool (*equal)(const config&, const config&);
};

struct setting {
  std::string_view key;  ///< "section.name"
  value_type type;
  /// The default as TOML value text, exactly as the sample file shows it, e.g. "\"10s\"".
  std::string_view default_value;
  std::int64_t min;
  std::int64_t max;
  std::span<const std::string_view> choices;
  check_fn check;  ///< may be null
  applies when;
  std::string_view doc;  ///< one sentence or two; the sample file wraps it
  field_access field;

  std::string_view section() const { return key.substr(0, key.find('.')); }
  std::string_view name() const { return key.substr(key.find('.') + 1); }
};

struct section {
  std::string_view name;
  std::string_view doc;
};

/// Every setting, grouped by section in the order of sections().
std::span<const setting> all();
std::span<const section> sections();
/// nullptr when `key` is not a setting.
const setting* find(std::string_view key);

}  // namespace rcptguard::settings
