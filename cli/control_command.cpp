// The operator controls (see control_command.hpp): argv -> one request on the control socket ->
// the daemon's answer on stdout (or its error on stderr). Addresses in a status come from mail,
// i.e. from senders: text output shows them through printable().
#include "cli/control_command.hpp"

#include <fmt/core.h>

#include <string>

#include "cli/command_line.hpp"
#include "cli/control_client.hpp"
#include "common/text.hpp"

namespace rcptguard::cli {
namespace {

enum class control_verb : std::uint8_t { allow, unallow, reset, release };

struct verb_info {
  const char* name;
  const char* who;
  const char* summary;
  bool has_kind;
};

constexpr verb_info info(control_verb verb) {
  switch (verb) {
    case control_verb::allow:
      return {"allow", "rcptguard allow",
              "Allow a recipient (counted, never judged) or, with --sender, a sender (never warned "
              "or deferred) on the running daemon, until a time or for good. Kept across restarts.",
              true};
    case control_verb::unallow:
      return {"unallow", "rcptguard unallow",
              "Remove an entry that 'rcptguard allow' made (configured allow-lists stay).", true};
    case control_verb::reset:
      return {"reset", "rcptguard reset",
              "Zero a recipient's live counters (every window, senders, clients, spool evidence); "
              "an open episode then cools down by its rules.",
              false};
    case control_verb::release:
      return {"release", "rcptguard release",
              "End a recipient's open episode now and zero its counters: DUNNO from its next "
              "request; a flood that goes on opens a new episode.",
              false};
  }
  return {"", "", "", false};
}

constexpr const char* override_example = "control.socket=/run/rcptguard/control.sock";

int run_verb(control_verb verb, int argc, char** argv) {
  const verb_info v = info(verb);
  cxxopts::Options options(v.who, v.summary);
  options.add_options()("address", "the address", cxxopts::value<std::string>())(
      "reason", "why (required; kept in the audit log with your user name)",
      cxxopts::value<std::string>());
  if (v.has_kind) {
    options.add_options()("sender", "the address is a sender, not a recipient");
  }
  if (verb == control_verb::allow) {
    options.add_options()(
        "until",
        "until TIME: a duration from now (2h, 7d) or a local time 2026-10-01T14:00 (Z at the end: "
        "UTC); default for good",
        cxxopts::value<std::string>());
  }
  add_config_options(options, override_example);
  options.parse_positional({"address"});
  options.positional_help("ADDRESS");
  return run_command(
      options, argc, argv, v.who, stdout, stderr, [&](const cxxopts::ParseResult& args) {
        if (args.count("address") == 0) throw usage_error{"no address given"};
        const std::string address = args["address"].as<std::string>();
        if (address.find('@') == std::string::npos) {
          throw usage_error{"'" + printable(address) + "' is not an address (local-part@domain)"};
        }
        if (args.count("reason") == 0 || args["reason"].as<std::string>().empty()) {
          throw usage_error{"--reason TEXT is required"};
        }
        json request;
        request["command"] = v.name;
        request["address"] = address;
        if (v.has_kind) {
          request["kind"] = args.count("sender") != 0 ? "sender" : "recipient";
        }
        if (verb == control_verb::allow && args.count("until") != 0) {
          std::string why;
          const auto until = parse_until(args["until"].as<std::string>(), wall_clock_now(), why);
          if (!until) throw usage_error{"--until: " + why};
          request["until"] = to_unix_seconds(*until);
        }
        request["reason"] = args["reason"].as<std::string>();

        const auto settings = load_or_report(config_source_from(args), v.who, stderr);
        if (!settings) return exit_failure;
        const json reply = send_control_request(control_target_from(*settings), request);
        const bool ok = reply["ok"].get<bool>();
        const char* key = ok ? "message" : "error";
        const std::string text = reply.contains(key) && reply[key].is_string()
                                     ? reply[key].get<std::string>()
                                     : std::string(ok ? "done" : "failed");
        if (ok) {
          fmt::print(stdout, "{}: {}\n", v.who, printable(text));
          return exit_ok;
        }
        fmt::print(stderr, "{}: {}\n", v.who, printable(text));
        return exit_failure;
      });
}

std::string text_of(const json& j, const char* key) {
  if (!j.contains(key)) return "";
  const json& v = j[key];
  if (v.is_string()) return printable(v.get<std::string>());
  if (v.is_null()) return "";
  return v.dump();
}

std::string duration_text(std::int64_t seconds) {
  const std::int64_t days = seconds / 86400;
  const std::int64_t hours = seconds % 86400 / 3600;
  const std::int64_t minutes = seconds % 3600 / 60;
  return days > 0 ? fmt::format("{}d{:02}h{:02}m", days, hours, minutes)
                  : fmt::format("{}h{:02}m", hours, minutes);
}

void print_status(const json& s) {
  const json& verdicts = s.value("verdicts", json::object());
  fmt::print("rcptguard {}, pid {}, mode {}, up {} (since {})\n", text_of(s, "version"),
             text_of(s, "pid"), text_of(s, "mode"),
             duration_text(s.value("uptime_s", std::int64_t{0})), text_of(s, "started"));
  fmt::print("requests {}: dunno {}, warn {}, defer {}, flag {}\n", text_of(s, "requests"),
             text_of(verdicts, "dunno"), text_of(verdicts, "warn"), text_of(verdicts, "defer"),
             text_of(verdicts, "flag"));
  fmt::print("tracked recipients {} of {}; store pending keys {}\n",
             text_of(s, "tracked_recipients"), text_of(s, "max_tracked_recipients"),
             text_of(s, "store_pending_keys"));
  const json& episodes = s.value("open_episodes", json::array());
  fmt::print("open episodes: {}\n", text_of(s, "open_episodes_total"));
  if (!episodes.empty()) {
    fmt::print("  {:<40} {:<6} {:<21} {:>6} {:>6}\n", "RECIPIENT", "LEVEL", "SINCE", "SCORE",
               "PEAK");
  }
  for (const json& e : episodes) {
    fmt::print("  {:<40} {:<6} {:<21} {:>6.2f} {:>6.2f}\n", text_of(e, "recipient"),
               text_of(e, "level"), text_of(e, "since"), e.value("score", 0.0),
               e.value("peak_score", 0.0));
  }
  const json& allows = s.value("operator_allows", json::array());
  fmt::print("operator allow entries: {}\n", allows.size());
  for (const json& a : allows) {
    const std::string until = text_of(a, "until");
    fmt::print("  {:<9} {:<40} {:<21} by {}: {}\n", text_of(a, "kind"), text_of(a, "address"),
               until.empty() ? "for good" : "until " + until, text_of(a, "user"),
               text_of(a, "reason"));
  }
}

}  // namespace

int command_allow(int argc, char** argv) {
  return run_verb(control_verb::allow, argc, argv);
}

int command_unallow(int argc, char** argv) {
  return run_verb(control_verb::unallow, argc, argv);
}

int command_reset(int argc, char** argv) {
  return run_verb(control_verb::reset, argc, argv);
}

int command_release(int argc, char** argv) {
  return run_verb(control_verb::release, argc, argv);
}

int command_status(int argc, char** argv) {
  cxxopts::Options options("rcptguard status",
                           "What the running daemon is doing: uptime, requests and verdicts, open "
                           "episodes, tracked recipients, the store's backlog, operator allow "
                           "entries.");
  options.add_options()("format", "text or json (the daemon's reply, one line)",
                        cxxopts::value<std::string>());
  add_config_options(options, override_example);
  return run_command(
      options, argc, argv, "rcptguard status", stdout, stderr,
      [](const cxxopts::ParseResult& args) {
        const std::string format =
            args.count("format") != 0 ? args["format"].as<std::string>() : "text";
        if (format != "text" && format != "json") {
          throw usage_error{"--format must be text or json, not '" + printable(format) + "'"};
        }
        const auto settings = load_or_report(config_source_from(args), "rcptguard status", stderr);
        if (!settings) return exit_failure;
        json request;
        request["command"] = "status";
        const json reply = send_control_request(control_target_from(*settings), request);
        if (!reply["ok"].get<bool>()) {
          fmt::print(stderr, "rcptguard status: {}\n", text_of(reply, "error"));
          return exit_failure;
        }
        if (format == "json") {
          fmt::print("{}\n", dump_json(reply));
        } else {
          print_status(reply);
        }
        return exit_ok;
      });
}

}  // namespace rcptguard::cli
