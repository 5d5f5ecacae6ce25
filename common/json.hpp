// JSON output through nlohmann-json (Debian's nlohmann-json3-dev, header-only): objects keep
// their keys in the order written, and every dump replaces invalid UTF-8 (U+FFFD) instead of
// throwing, so a SIEM or jq gets a valid line whatever bytes a sender put into an address.
// NaN and infinity, which JSON lacks, are written as null.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace rcptguard {

using json = nlohmann::ordered_json;

/// One line of JSON, without a newline.
inline std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace rcptguard
