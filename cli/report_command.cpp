// `rcptguard report`: argv, the read-only queries of store/report_queries.hpp over one or
// several nodes' databases (cli/report_nodes.hpp), review's baseline model
// (cli/review_baseline.hpp) for the "expected" of every hour, and the renderer of cli/report/.
// The file is written beside its final name and renamed into place, so a reader never sees half
// a report.
#include "cli/report_command.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <map>
#include <set>
#include <span>

#include "cli/command_line.hpp"
#include "cli/node_databases.hpp"
#include "cli/report/document.hpp"
#include "cli/report/model.hpp"
#include "cli/report_nodes.hpp"
#include "cli/review_baseline.hpp"
#include "cli/time_argument.hpp"
#include "common/text.hpp"
#include "config/config.hpp"
#include "decision/keys.hpp"
#include "store/report_queries.hpp"

namespace rcptguard::cli {
namespace {

constexpr std::int64_t hour_seconds = 3600;
constexpr std::int64_t day_seconds = 86400;

namespace limits {
/// Flagged recipients with a section of their own (the most verdicts first); the report counts
/// the others, which --recipient can ask for.
constexpr std::size_t max_sections = 40;
/// Candidates for the deviation table: the busiest recipients of the period and those with the
/// largest single hour, each this many; then the table keeps the most deviating.
constexpr std::size_t deviation_candidates = 30;
constexpr std::size_t deviation_rows = 15;
constexpr std::size_t explanations = 200;
constexpr std::size_t parties = 10;
constexpr std::size_t attachments = 20;
/// A quarter: beyond it an hourly chart has more slots than pixels, and every hour's baseline
/// is computed from its own history.
constexpr std::int64_t max_period_days = 92;
}  // namespace limits

std::int64_t floor_to(std::int64_t t, std::int64_t unit) {
  const std::int64_t rem = t % unit;
  return rem < 0 ? t - rem - unit : t - rem;
}

// ---------------------------------------------------------------------------------------------
// The model.

/// One recipient's hours of the period with observed and expected volume (review's model, so
/// `rcptguard review` and the report expect the same).
std::vector<report::hour_point> hours_of(std::span<node_database> dbs,
                                         const expectation_model& model,
                                         const std::string& recipient, std::int64_t from,
                                         std::int64_t until) {
  const std::int64_t first_hour = floor_to(from, hour_seconds);
  const auto count =
      static_cast<std::size_t>((until - first_hour + hour_seconds - 1) / hour_seconds);
  std::vector<store::hourly_row> history;
  for (const decision::hourly_count& h :
       cluster_history(dbs, recipient, first_hour - model.history_seconds(), until)) {
    store::hourly_row row;
    row.hour_start = h.hour_start;
    row.accepted = h.accepted;
    row.attempted = h.attempted;
    row.distinct_senders = h.distinct_senders;
    row.peak_minute = h.peak_minute;
    row.peak_ten_minutes = h.peak_ten_minutes;
    row.in_episode = h.in_episode;
    history.push_back(row);
  }
  const std::vector<double> expected = model.expected(recipient, history, first_hour, count);
  std::vector<report::hour_point> hours(count);
  for (std::size_t i = 0; i < count; ++i) {
    hours[i].hour_start = first_hour + static_cast<std::int64_t>(i) * hour_seconds;
    hours[i].expected = expected[i];
  }
  for (const store::hourly_row& h : history) {
    if (h.hour_start < first_hour) continue;
    const auto i = static_cast<std::size_t>((h.hour_start - first_hour) / hour_seconds);
    if (i >= count) continue;
    hours[i].observed = std::max(h.attempted, h.accepted);
    hours[i].accepted = h.accepted;
  }
  return hours;
}

report::recipient_section section_of(std::span<node_database> dbs, const expectation_model& model,
                                     const std::string& recipient, std::int64_t from,
                                     std::int64_t until,
                                     const std::vector<report::episode>& episodes) {
  report::recipient_section s;
  s.recipient = recipient;
  s.hours = hours_of(dbs, model, recipient, from, until);
  const std::int64_t first_hour = s.hours.empty() ? from : s.hours.front().hour_start;
  for (const store::report_flagged_hour& f : cluster_flagged_hours(dbs, recipient, from, until)) {
    const std::int64_t i = (f.hour_start - first_hour) / hour_seconds;
    if (f.hour_start < first_hour || i >= static_cast<std::int64_t>(s.hours.size())) continue;
    auto& point = s.hours[static_cast<std::size_t>(i)];
    point.warn += f.warn;
    point.defer += f.defer;
    point.flag += f.flag;
  }
  for (const report::episode& e : episodes) {
    if (e.recipient == recipient) s.episodes.push_back(e);
  }
  s.explanations = cluster_explanations(dbs, recipient, from, until, limits::explanations);
  s.explanations_total = cluster_explanation_count(dbs, recipient, from, until);
  s.senders = cluster_top_parties(dbs, recipient, from, until, false, limits::parties);
  s.clients = cluster_top_parties(dbs, recipient, from, until, true, limits::parties);
  s.attachments = cluster_evidence(dbs, recipient, from, until, limits::attachments);
  s.correspondents = cluster_correspondents(dbs, recipient);
  return s;
}

report::report_data build_report(std::span<node_database> dbs, const report_args& args) {
  const std::int64_t from = to_unix_seconds(args.since);
  const std::int64_t until = to_unix_seconds(args.until);
  std::vector<SQLite::Database*> connections;
  for (node_database& d : dbs) connections.push_back(&d.db);
  const expectation_model model(
      args.detection,
      review_prior(connections, floor_to(from, hour_seconds), args.detection.baseline));

  report::report_data d;
  d.since = from;
  d.until = until;
  d.generated = to_unix_seconds(args.now);
  for (const node_database& n : dbs) d.sources.push_back({n.path, n.node});
  d.version = RCPTGUARD_VERSION;
  d.episodes = cluster_episodes(dbs, from, until);

  // Days: episodes by the day they started, flagged requests by the day they were answered.
  const std::map<std::int64_t, std::int64_t> flagged_per_day =
      cluster_flagged_per_day(dbs, from, until);
  for (const auto& [day, requests] : flagged_per_day) d.flagged_requests += requests;
  for (std::int64_t day = floor_to(from, day_seconds); day < until; day += day_seconds) {
    report::day_summary s;
    s.day_start = day;
    for (const report::episode& e : d.episodes) {
      if (e.started < std::max(day, from) || e.started >= day + day_seconds) continue;
      (e.peak_level == "defer" ? s.defer_episodes : s.warn_episodes) += 1;
    }
    if (const auto it = flagged_per_day.find(day); it != flagged_per_day.end()) {
      s.flagged_requests = it->second;
    }
    d.days.push_back(s);
  }

  d.messages = cluster_messages(dbs, from, until);
  d.recipients = cluster_recipients(dbs, from, until);

  // Sections: the flagged recipients (the most verdicts, capped; a named one always) by their
  // first episode, then the named ones without an episode, in the order given.
  std::map<std::string, std::int64_t> verdicts_of;
  std::map<std::string, std::int64_t> first_episode_of;
  for (const report::episode& e : d.episodes) {
    verdicts_of[e.recipient] += e.verdicts;
    first_episode_of.try_emplace(e.recipient, e.started);
  }
  const std::set<std::string> named(args.recipients.begin(), args.recipients.end());
  std::vector<std::string> flagged;
  for (const auto& [recipient, count] : verdicts_of) {
    if (!named.contains(recipient)) flagged.push_back(recipient);
  }
  std::stable_sort(flagged.begin(), flagged.end(), [&](const std::string& a, const std::string& b) {
    return verdicts_of[a] > verdicts_of[b];
  });
  if (flagged.size() > limits::max_sections) {
    d.sections_left_out = static_cast<std::int64_t>(flagged.size() - limits::max_sections);
    flagged.resize(limits::max_sections);
  }
  std::set<std::string> seen;
  std::vector<std::string> quiet_named;
  for (const std::string& r : args.recipients) {
    if (!seen.insert(r).second) continue;
    (verdicts_of.contains(r) ? flagged : quiet_named).push_back(r);
  }
  std::stable_sort(flagged.begin(), flagged.end(), [&](const std::string& a, const std::string& b) {
    return first_episode_of[a] < first_episode_of[b];
  });
  std::vector<std::string> section_order = flagged;
  section_order.insert(section_order.end(), quiet_named.begin(), quiet_named.end());
  std::map<std::string, std::size_t> section_index;
  for (const std::string& r : section_order) {
    report::recipient_section s = section_of(dbs, model, r, from, until, d.episodes);
    s.anchor = "r" + std::to_string(d.sections.size() + 1);
    s.named = named.contains(r);
    section_index.emplace(r, d.sections.size());
    d.sections.push_back(std::move(s));
  }

  // Deviations: candidates by volume and by their largest hour, flagged and named ones too.
  std::set<std::string> candidates(section_order.begin(), section_order.end());
  for (const bool by_peak : {false, true}) {
    for (std::string& r :
         cluster_busiest(dbs, from, until, by_peak, limits::deviation_candidates)) {
      candidates.insert(std::move(r));
    }
  }
  for (const std::string& r : candidates) {
    const auto in_section = section_index.find(r);
    const std::vector<report::hour_point> computed = in_section == section_index.end()
                                                         ? hours_of(dbs, model, r, from, until)
                                                         : std::vector<report::hour_point>{};
    const std::vector<report::hour_point>& hours =
        in_section == section_index.end() ? computed : d.sections[in_section->second].hours;
    report::deviation row;
    row.recipient = r;
    double best = -1.0;
    for (const report::hour_point& h : hours) {
      row.volume += h.observed;
      if (h.observed <= 0) continue;
      const double ratio = deviation(static_cast<double>(h.observed), h.expected);
      if (ratio > best) {
        best = ratio;
        row.peak_hour = h.hour_start;
        row.peak_observed = h.observed;
        row.peak_expected = h.expected;
      }
    }
    if (row.volume <= 0) continue;
    for (const report::episode& e : d.episodes) row.episodes += e.recipient == r ? 1 : 0;
    if (in_section != section_index.end()) row.anchor = d.sections[in_section->second].anchor;
    d.deviations.push_back(std::move(row));
  }
  const auto ratio_of = [](const report::deviation& r) {
    return deviation(static_cast<double>(r.peak_observed), r.peak_expected);
  };
  std::sort(d.deviations.begin(), d.deviations.end(),
            [&](const report::deviation& a, const report::deviation& b) {
              const double ra = ratio_of(a);
              const double rb = ratio_of(b);
              if (ra != rb) return ra > rb;
              if (a.volume != b.volume) return a.volume > b.volume;
              return a.recipient < b.recipient;
            });
  if (d.deviations.size() > limits::deviation_rows) d.deviations.resize(limits::deviation_rows);
  return d;
}

// ---------------------------------------------------------------------------------------------
// Output.

/// Writes `text` to a new file beside `path` and renames it over `path`. Returns an error text,
/// empty on success.
std::string write_atomically(const std::string& path, const std::string& text) {
  std::string temp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(temp.data());  // O_EXCL, mode 0600: a report names people
  if (fd < 0) return "cannot create " + printable(temp) + ": " + std::strerror(errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return "cannot write " + printable(temp) + ": " + why;
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    return "cannot write " + printable(temp) + ": " + why;
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(temp.c_str());
    return "cannot rename " + printable(temp) + " to " + printable(path) + ": " + why;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// argv.

cxxopts::Options report_options() {
  cxxopts::Options options(
      "rcptguard report",
      "Write one self-contained HTML file about a period: alerts per day, the most deviating "
      "recipients, and for each flagged (or named) recipient its hours against the learned "
      "baseline, the episodes, the reasons at each escalation, top senders and clients, and "
      "repeated attachments. The database is opened read-only; several (-d repeated, one per "
      "node of a cluster) are reported as one cluster.");
  options.add_options()("html", "write the report to FILE ('-': standard output)",
                        cxxopts::value<std::string>(), "FILE")(
      "since", "start of the period (default 7d): " + std::string{time_argument_forms},
      cxxopts::value<std::string>(),
      "TIME")("until", "end of the period, as --since (default now)", cxxopts::value<std::string>(),
              "TIME")("recipient", "also show this recipient, flagged or not (repeatable)",
                      cxxopts::value<std::vector<std::string>>(), "ADDRESS")(
      "d,database",
      "database file (default: store.path of the settings); repeat it for several nodes' "
      "databases of a cluster, reported as one: volumes summed, one flood once with its nodes",
      cxxopts::value<std::vector<std::string>>());
  add_config_options(options, "store.path=/var/lib/rcptguard/rcptguard.db");
  return options;
}

time_point time_option(const cxxopts::ParseResult& parsed, const char* name,
                       std::string_view fallback, time_point now) {
  const std::string text =
      parsed.count(name) != 0 ? parsed[name].as<std::string>() : std::string{fallback};
  const time_argument t = parse_time_argument(text, to_unix_seconds(now));
  if (!t.unix_seconds) {
    throw usage_error{
        "--" + std::string{name} + " '" + printable(text) + "' " +
        (t.problem == "malformed" ? "is not " + std::string{time_argument_forms} : t.problem)};
  }
  return from_unix_seconds(*t.unix_seconds);
}

// Fills `args`; throws usage_error. Returns false (after printing) when the settings could not
// be loaded: they are read even with -d, since the baselines and classes come from them.
bool parse_report(const cxxopts::ParseResult& parsed, report_args& args, std::FILE* err) {
  if (parsed.count("html") == 0) throw usage_error{"--html FILE is required"};
  args.html = parsed["html"].as<std::string>();
  if (args.html.empty()) throw usage_error{"--html FILE is empty"};
  args.since = time_option(parsed, "since", "7d", args.now);
  args.until = parsed.count("until") != 0 ? time_option(parsed, "until", "", args.now) : args.now;
  if (args.since >= args.until) throw usage_error{"--since must be before --until"};
  if (args.until - args.since > std::chrono::days{limits::max_period_days}) {
    throw usage_error{"the period is longer than " + std::to_string(limits::max_period_days) +
                      " days"};
  }

  const std::optional<config> settings =
      load_or_report(config_source_from(parsed), "rcptguard report", err);
  if (!settings) return false;
  args.detection = settings->detection;
  args.databases = parsed.count("database") != 0 ? parsed["database"].as<std::vector<std::string>>()
                                                 : std::vector<std::string>{settings->store.path};

  if (parsed.count("recipient") != 0) {
    for (const std::string& given : parsed["recipient"].as<std::vector<std::string>>()) {
      std::string_view address = given;
      if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
        address = address.substr(1, address.size() - 2);
      }
      std::string key;
      decision::normalise_address(address, args.detection.recipient_delimiters, key);
      if (key.empty()) throw usage_error{"--recipient '" + printable(given) + "' is empty"};
      args.recipients.push_back(std::move(key));
    }
  }
  return true;
}

}  // namespace

int run_report(const report_args& args, std::FILE* out, std::FILE* err) {
  std::optional<std::vector<node_database>> dbs =
      open_node_databases(args.databases, "rcptguard report", err);
  if (!dbs) return exit_failure;
  std::string html;
  try {
    // One read transaction per database: every query sees the same snapshot of a node while its
    // daemon writes on.
    for (node_database& d : *dbs) d.db.exec("BEGIN");
    html = report::render_html(build_report(*dbs, args));
    for (node_database& d : *dbs) d.db.exec("COMMIT");
  } catch (const std::exception& e) {
    std::string paths;
    for (const node_database& d : *dbs) paths += (paths.empty() ? "" : ", ") + printable(d.path);
    fmt::print(err, "rcptguard report: cannot read database {}: {}\n", paths, printable(e.what()));
    return exit_failure;
  }
  if (args.html == "-") {
    if (std::fwrite(html.data(), 1, html.size(), out) != html.size() || std::fflush(out) != 0) {
      fmt::print(err, "rcptguard report: cannot write the output\n");
      return exit_failure;
    }
    return exit_ok;
  }
  if (const std::string problem = write_atomically(args.html, html); !problem.empty()) {
    fmt::print(err, "rcptguard report: {}\n", problem);
    return exit_failure;
  }
  return exit_ok;
}

int command_report(int argc, char** argv, const report_io& io) {
  cxxopts::Options options = report_options();
  return run_command(options, argc, argv, "rcptguard report", io.out, io.err,
                     [&](const cxxopts::ParseResult& parsed) {
                       report_args args;
                       args.now = io.now.value_or(wall_clock_now());
                       if (!parse_report(parsed, args, io.err)) return exit_failure;
                       return run_report(args, io.out, io.err);
                     });
}

int command_report(int argc, char** argv) {
  return command_report(argc, argv, report_io{});
}

}  // namespace rcptguard::cli
