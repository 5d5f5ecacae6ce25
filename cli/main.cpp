// rcptguard: one binary, one subcommand per job. Exit codes: 0 success, 1 failure (bad
// configuration, start-up error), 2 usage error, 3 (serve) data lost at shutdown.
#include <fmt/core.h>

#include <cstdio>
#include <string>

#include "cli/command_line.hpp"
#include "cli/control_command.hpp"
#include "cli/ingest_command.hpp"
#include "cli/report_command.hpp"
#include "cli/review_command.hpp"
#include "cli/scan_command.hpp"
#include "common/text.hpp"
#include "config/config.hpp"
#include "config/safety.hpp"
#include "daemon/daemon.hpp"
#include "daemon/file_limit.hpp"

namespace {

using namespace rcptguard::cli;
using rcptguard::config_source;

constexpr const char* usage_text =
    "usage: rcptguard COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve          run the policy daemon in the foreground (SIGTERM stops, SIGHUP reloads)\n"
    "  check-config   load and validate the configuration; exit 0 if valid, 1 if not\n"
    "  review         alerts, one recipient's story, top recipients (database, read-only)\n"
    "  report         one self-contained HTML file about a period (--html FILE; read-only)\n"
    "  scan           scan the mail spool once for repeated attachments (read-only)\n"
    "  ingest         replay Postfix/Sendmail logs through the engine, or follow them (--follow)\n"
    "  allow          let a recipient (or --sender) through on the running daemon\n"
    "  unallow        remove an entry 'allow' made\n"
    "  reset          zero a recipient's live counters on the running daemon\n"
    "  release        end a recipient's open episode now (DUNNO from its next request)\n"
    "  status         uptime, verdicts, open episodes and allow entries of the running daemon\n"
    "  version        print the version\n"
    "\n"
    "Run 'rcptguard COMMAND --help' for the options of a command.\n"
    "Exit codes: 0 success, 1 failure (invalid configuration, start-up error), 2 usage error,\n"
    "3 'serve' stopped but could not store everything (the database stayed unwritable).\n";

static_assert(exit_data_lost == 3, "the usage text names the code");

constexpr const char* override_example = "server.listen=inet:127.0.0.1:10041";

int command_serve(int argc, char** argv) {
  cxxopts::Options options("rcptguard serve",
                           "Answer Postfix check_policy_service requests in the foreground.");
  add_config_options(options, override_example);
  return run_command(options, argc, argv, "rcptguard serve", stdout, stderr,
                     [](const cxxopts::ParseResult& args) {
                       const config_source source = config_source_from(args);
                       auto settings = load_or_report(source, "rcptguard", stderr);
                       if (!settings) return exit_failure;
                       if (source.file.empty()) {
                         fmt::print(stderr,
                                    "rcptguard: no settings file given and {} absent: using "
                                    "built-in defaults\n",
                                    rcptguard::default_config_path);
                       }
                       return rcptguard::daemon::run_daemon(source, std::move(*settings));
                     });
}

int command_check_config(int argc, char** argv) {
  cxxopts::Options options("rcptguard check-config",
                           "Load and validate the settings exactly as 'serve' would.");
  add_config_options(options, override_example);
  options.add_options()("print-reference", "print every setting with its default and exit");
  return run_command(
      options, argc, argv, "rcptguard check-config", stdout, stderr,
      [](const cxxopts::ParseResult& args) {
        if (args.count("print-reference") != 0) {
          fmt::print("{}", rcptguard::render_reference());
          return exit_ok;
        }
        const config_source source = config_source_from(args);
        const auto settings = load_or_report(source, "rcptguard", stderr);
        if (!settings) return exit_failure;
        // Valid but unsafe is still valid: warnings do not change the exit code.
        const auto limit = rcptguard::daemon::current_file_limit();
        for (const auto& warning : rcptguard::unsafe_settings(*settings, limit.hard)) {
          fmt::print(stderr, "rcptguard: warning: {}\n", warning);
        }
        fmt::print("rcptguard: configuration {} is valid\n", rcptguard::describe(source));
        return exit_ok;
      });
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "{}", usage_text);
    return exit_usage;
  }
  const std::string command = argv[1];
  // Each subcommand parses argv from its own name on, so cxxopts sees "serve -c ...".
  const int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (command == "serve") return command_serve(sub_argc, sub_argv);
  if (command == "check-config") return command_check_config(sub_argc, sub_argv);
  if (command == "review") return command_review(sub_argc, sub_argv);
  if (command == "report") return command_report(sub_argc, sub_argv);
  if (command == "scan") return command_scan(sub_argc, sub_argv);
  if (command == "allow") return command_allow(sub_argc, sub_argv);
  if (command == "unallow") return command_unallow(sub_argc, sub_argv);
  if (command == "reset") return command_reset(sub_argc, sub_argv);
  if (command == "release") return command_release(sub_argc, sub_argv);
  if (command == "status") return command_status(sub_argc, sub_argv);
  if (command == "ingest") return command_ingest(sub_argc, sub_argv);
  if (command == "version" || command == "--version") {
    fmt::print("rcptguard {}\n", RCPTGUARD_VERSION);
    return exit_ok;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    fmt::print("{}", usage_text);
    return exit_ok;
  }
  fmt::print(stderr, "rcptguard: unknown command '{}'\n{}", rcptguard::printable(command),
             usage_text);
  return exit_usage;
}
