// What every command shares: its exit codes, the -c/-o/-h options and the settings they name,
// and how a usage error is reported. The one place cxxopts is included: an -o or --map value may
// itself hold commas (a TOML list), so repeated option values are split on NUL, which never
// occurs in an argument.
#pragma once

#define CXXOPTS_VECTOR_DELIMITER '\0'
#include <cstdio>
#include <cxxopts.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "daemon/daemon.hpp"

namespace rcptguard::cli {

inline constexpr int exit_ok = 0;
inline constexpr int exit_failure = 1;  ///< invalid configuration, unusable file or database
inline constexpr int exit_usage = 2;    ///< the command line itself is wrong
/// serve: the shutdown could not store everything (the database stayed unwritable). Defined by
/// the daemon, which returns it; named here with the others.
inline constexpr int exit_data_lost = daemon::exit_data_lost;

/// A mistake in the command line, thrown while reading the parsed options.
struct usage_error {
  std::string message;
};

/// Adds -c/--config, -o/--option and -h/--help; `example` shows one -o value.
void add_config_options(cxxopts::Options& options, std::string_view example);

/// The settings -c/-o name: -c, else default_config_path when it exists, else the built-in
/// defaults; -o overrides on top. The same rule for every command.
config_source config_source_from(const cxxopts::ParseResult& args);

/// Loads `source`, or prints every problem as "`who`: problem" and "`who`: configuration X is
/// invalid" to `err` and returns nothing.
std::optional<config> load_or_report(const config_source& source, std::string_view who,
                                     std::FILE* err);

/// Parses argv (argv[0] is the command's name) with `options` and runs `body` with the result.
/// --help prints the help to `out`; an unexpected argument, a usage_error or a cxxopts error
/// prints "`who`: problem" and "(see '`who` --help')" to `err` and gives exit_usage. Anything
/// else `body` throws is printed as "`who`: what" and gives exit_failure. Never throws.
int run_command(cxxopts::Options& options, int argc, char** argv, std::string_view who,
                std::FILE* out, std::FILE* err,
                const std::function<int(const cxxopts::ParseResult&)>& body);

}  // namespace rcptguard::cli
