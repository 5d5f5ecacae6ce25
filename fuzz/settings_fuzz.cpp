// Fuzz target: the TOML settings loader (config/config.hpp). The input is a settings file; the
// lines after a line "#-o" (a TOML comment, so the file part stays a file) are also given as
// `-o` overrides. Errors are expected; checked: a result is a config or errors, never both or
// neither; no error is an "internal error" (an exception the loader caught: a bug) or carries a
// control byte that could forge a log line; and a loaded config reloads consistently
// (apply_reloadable leaves only restart-only settings different). May include: config/, fuzz/.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "fuzz/check.hpp"

namespace {

using namespace rcptguard;

constexpr std::string_view overrides_marker = "\n#-o\n";

constexpr std::string_view source_name = "fuzz.toml";

void check_errors(const load_result& result) {
  FUZZ_CHECK(result.ok() == result.errors.empty());
  for (const std::string& e : result.errors) {
    // config.cpp's catch-all: "<source>: internal error: <what()>" (a value may quote the words).
    if (e.starts_with(std::string{source_name} + ": internal error: ")) {
      std::fprintf(stderr, "settings: %s\n", e.c_str());
      std::abort();
    }
    FUZZ_CHECK(!e.empty());
    for (const char c : e) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        std::fprintf(stderr, "settings: control byte %#x in error: %s\n",
                     static_cast<unsigned>(static_cast<unsigned char>(c)), e.c_str());
        std::abort();
      }
    }
  }
}

void check_reload(const config& loaded) {
  config running = default_config();
  apply_reloadable(running, loaded);
  for (const setting_change& change : changed_settings(running, loaded)) {
    if (change.reloadable) {
      std::fprintf(stderr, "settings: %.*s still differs after a reload\n",
                   static_cast<int>(change.key.size()), change.key.data());
      std::abort();
    }
  }
  FUZZ_CHECK(changed_settings(loaded, loaded).empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view file = input;
  std::vector<std::string> overrides;
  if (const std::size_t marker = input.find(overrides_marker); marker != std::string_view::npos) {
    file = input.substr(0, marker + 1);
    std::string_view rest = input.substr(marker + overrides_marker.size());
    while (!rest.empty()) {
      const std::size_t nl = rest.find('\n');
      overrides.emplace_back(rest.substr(0, nl));
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
  }
  const load_result result = load_config_string(file, overrides, source_name);
  check_errors(result);
  if (result.ok()) check_reload(*result.settings);
  return 0;
}
