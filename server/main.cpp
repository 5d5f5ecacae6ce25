// rcptguard: one binary, one subcommand per job. Exit codes: 0 success, 1 failure (bad
// configuration, start-up error), 2 usage error.
#include <fmt/core.h>

#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "server/cxxopts.hpp"
#include "server/daemon.hpp"
#include "server/ingest_command.hpp"
#include "server/review_command.hpp"
#include "server/scan_command.hpp"

namespace {

using rcptguard::config;
using rcptguard::load_result;

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

constexpr const char* default_config_path = "/etc/rcptguard/rcptguard.toml";

constexpr const char* usage_text =
    "usage: rcptguard COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve          run the policy daemon in the foreground (SIGTERM stops, SIGHUP reloads)\n"
    "  check-config   load and validate the configuration; exit 0 if valid, 1 if not\n"
    "  review         alerts, one recipient's story, top recipients (database, read-only)\n"
    "  scan           scan the mail spool once for repeated attachments (read-only)\n"
    "  ingest         replay Postfix/Sendmail logs through the engine, or follow them (--follow)\n"
    "  version        print the version\n"
    "\n"
    "Run 'rcptguard COMMAND --help' for the options of a command.\n"
    "Exit codes: 0 success, 1 failure (invalid configuration, start-up error), 2 usage error.\n";

using config_choice = rcptguard::server::daemon_options;

void add_config_options(cxxopts::Options& options) {
  options.add_options()("c,config",
                        "settings file (default " + std::string(default_config_path) +
                            " if it exists, else built-in defaults)",
                        cxxopts::value<std::string>())(
      "o,option", "override one setting, e.g. -o server.listen=inet:127.0.0.1:10041 (repeatable)",
      cxxopts::value<std::vector<std::string>>())("h,help", "show this help");
}

config_choice config_from(const cxxopts::ParseResult& args) {
  config_choice choice;
  if (args.count("config") != 0) {
    choice.config_file = args["config"].as<std::string>();
  } else if (std::filesystem::exists(default_config_path)) {
    choice.config_file = default_config_path;
  }
  if (args.count("option") != 0) choice.overrides = args["option"].as<std::vector<std::string>>();
  return choice;
}

std::optional<config> load_or_report(const config_choice& choice) {
  load_result loaded = rcptguard::server::load_settings(choice);
  for (const auto& error : loaded.errors) fmt::print(stderr, "rcptguard: {}\n", error);
  if (!loaded.ok()) {
    fmt::print(stderr, "rcptguard: configuration {} is invalid\n",
               choice.config_file.empty() ? std::string("defaults") : choice.config_file.string());
    return std::nullopt;
  }
  return std::move(loaded.settings);
}

int command_serve(int argc, char** argv) {
  cxxopts::Options options("rcptguard serve",
                           "Answer Postfix check_policy_service requests in the foreground.");
  add_config_options(options);
  const auto args = options.parse(argc, argv);
  if (args.count("help") != 0) {
    fmt::print("{}", options.help());
    return exit_ok;
  }
  const config_choice choice = config_from(args);
  auto settings = load_or_report(choice);
  if (!settings) return exit_failure;
  if (choice.config_file.empty()) {
    fmt::print(stderr, "rcptguard: no settings file given and {} absent: using built-in defaults\n",
               default_config_path);
  }
  return rcptguard::server::run_daemon(choice, std::move(*settings));
}

int command_check_config(int argc, char** argv) {
  cxxopts::Options options("rcptguard check-config",
                           "Load and validate the settings exactly as 'serve' would.");
  add_config_options(options);
  options.add_options()("print-reference", "print every setting with its default and exit");
  const auto args = options.parse(argc, argv);
  if (args.count("help") != 0) {
    fmt::print("{}", options.help());
    return exit_ok;
  }
  if (args.count("print-reference") != 0) {
    fmt::print("{}", rcptguard::render_reference());
    return exit_ok;
  }
  const config_choice choice = config_from(args);
  if (!load_or_report(choice)) return exit_failure;
  fmt::print("rcptguard: configuration {} is valid\n",
             choice.config_file.empty() ? std::string("defaults") : choice.config_file.string());
  return exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "{}", usage_text);
    return exit_usage;
  }
  const std::string command = argv[1];
  // Each subcommand parses argv from its own name on, so cxxopts sees "rcptguard-serve -c ...".
  const int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  try {
    if (command == "serve") return command_serve(sub_argc, sub_argv);
    if (command == "check-config") return command_check_config(sub_argc, sub_argv);
    if (command == "review") return rcptguard::server::command_review(sub_argc, sub_argv);
    if (command == "scan") return rcptguard::server::command_scan(sub_argc, sub_argv);
    if (command == "ingest") return rcptguard::server::command_ingest(sub_argc, sub_argv);
    if (command == "version" || command == "--version") {
      fmt::print("rcptguard {}\n", RCPTGUARD_VERSION);
      return exit_ok;
    }
    if (command == "help" || command == "--help" || command == "-h") {
      fmt::print("{}", usage_text);
      return exit_ok;
    }
  } catch (const cxxopts::exceptions::exception& e) {
    fmt::print(stderr, "rcptguard {}: {}\n", command, e.what());
    return exit_usage;
  }
  fmt::print(stderr, "rcptguard: unknown command '{}'\n{}", command, usage_text);
  return exit_usage;
}
