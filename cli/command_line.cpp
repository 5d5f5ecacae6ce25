#include "cli/command_line.hpp"

#include <fmt/core.h>

#include <exception>
#include <filesystem>
#include <system_error>
#include <vector>

#include "common/text.hpp"

namespace rcptguard::cli {

void add_config_options(cxxopts::Options& options, std::string_view example) {
  options.add_options()("c,config",
                        "settings file (default " + std::string(default_config_path) +
                            " if it exists, else built-in defaults)",
                        cxxopts::value<std::string>())(
      "o,option", "override one setting, e.g. -o " + std::string(example) + " (repeatable)",
      cxxopts::value<std::vector<std::string>>())("h,help", "show this help");
}

config_source config_source_from(const cxxopts::ParseResult& args) {
  config_source source;
  if (args.count("config") != 0) {
    source.file = args["config"].as<std::string>();
  } else if (std::error_code ec; std::filesystem::exists(default_config_path, ec)) {
    source.file = default_config_path;
  }
  if (args.count("option") != 0) source.overrides = args["option"].as<std::vector<std::string>>();
  return source;
}

std::optional<config> load_or_report(const config_source& source, std::string_view who,
                                     std::FILE* err) {
  load_result loaded = load_settings(source);
  for (const auto& error : loaded.errors) fmt::print(err, "{}: {}\n", who, error);
  if (!loaded.ok()) {
    fmt::print(err, "{}: configuration {} is invalid\n", who, describe(source));
    return std::nullopt;
  }
  return std::move(loaded.settings);
}

int run_command(cxxopts::Options& options, int argc, char** argv, std::string_view who,
                std::FILE* out, std::FILE* err,
                const std::function<int(const cxxopts::ParseResult&)>& body) {
  const auto usage = [&](std::string_view message) {
    fmt::print(err, "{}: {}\n(see '{} --help')\n", who, message, who);
    return exit_usage;
  };
  try {
    options.allow_unrecognised_options();  // reported below, as a usage error
    const cxxopts::ParseResult parsed = options.parse(argc, argv);
    if (parsed.count("help") != 0) {
      fmt::print(out, "{}", options.help());
      return exit_ok;
    }
    if (!parsed.unmatched().empty()) {
      return usage("unexpected argument '" + printable(parsed.unmatched().front()) + "'");
    }
    return body(parsed);
  } catch (const usage_error& e) {
    return usage(e.message);
  } catch (const cxxopts::exceptions::exception& e) {
    return usage(printable(e.what()));
  } catch (const std::exception& e) {
    fmt::print(err, "{}: {}\n", who, printable(e.what()));
    return exit_failure;
  }
}

}  // namespace rcptguard::cli
