// The operator commands (see operator_controls.hpp).
#include "daemon/operator_controls.hpp"

#include <SQLiteCpp/Transaction.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <optional>

#include "common/json.hpp"
#include "common/text.hpp"
#include "store/operator_actions.hpp"

namespace rcptguard::daemon {

namespace {

using decision::allow_kind;

constexpr std::array<std::string_view, 5> commands{"allow", "unallow", "reset", "release",
                                                   "status"};
// The keys each command takes; anything else is refused, so a typo is not silently ignored.
constexpr std::array<std::string_view, 5> keys{"command", "address", "kind", "until", "reason"};

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

std::string level_text(decision::verdict_level level) {
  return level == decision::verdict_level::defer ? "defer" : "warn";
}

json time_or_null(time_point t) {
  return t == time_point{} ? json(nullptr) : json(format_utc(t));
}

}  // namespace

/// A request as parsed; `error` set when it cannot be served.
struct operator_controls::request {
  std::string command;
  std::string address;  ///< as given; the engine's key replaces it once applied
  allow_kind kind = allow_kind::recipient;
  bool kind_given = false;
  time_point until{};  ///< the epoch: for good
  std::string reason;
  std::string error;
};

operator_controls::operator_controls(decision::engine& engine, const server::server_stats& stats,
                                     const config& settings, submit_fn submit,
                                     store_stats_fn store_stats,
                                     std::shared_ptr<spdlog::logger> log, time_point started)
    : engine_(engine),
      stats_(stats),
      settings_(settings),
      submit_(std::move(submit)),
      store_stats_(std::move(store_stats)),
      log_(std::move(log)),
      started_(started) {}

std::string operator_controls::handle(std::string_view line, const control_caller& caller,
                                      time_point now) {
  request req;
  const json in = json::parse(line.begin(), line.end(), nullptr, false);
  const auto fail = [&](std::string why) { req.error = std::move(why); };
  if (in.is_discarded() || !in.is_object()) {
    fail("the request is not a JSON object");
  } else if (!in.contains("command") || !in["command"].is_string() ||
             std::find(commands.begin(), commands.end(),
                       in["command"].get_ref<const std::string&>()) == commands.end()) {
    fail("\"command\" must be one of allow, unallow, reset, release, status");
  } else {
    req.command = in["command"].get<std::string>();
    for (const auto& [key, value] : in.items()) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        fail("unknown key \"" + printable(key) + "\"");
        break;
      }
    }
  }
  const bool changes = req.error.empty() && req.command != "status";
  if (changes) {
    const auto text = [&](const char* key) -> const std::string* {
      return in.contains(key) && in[key].is_string() ? &in[key].get_ref<const std::string&>()
                                                     : nullptr;
    };
    const std::string* address = text("address");
    const std::string* reason = text("reason");
    if (address == nullptr || address->empty() ||
        address->size() > control_request_limits::max_address ||
        std::any_of(address->begin(), address->end(),
                    [](char c) { return c == ' ' || is_control(c); }) ||
        address->find('@') == std::string::npos) {
      fail("\"address\" must be an address (local-part@domain, at most " +
           std::to_string(control_request_limits::max_address) + " bytes)");
    } else if (reason == nullptr || reason->empty() ||
               reason->size() > control_request_limits::max_reason ||
               std::any_of(reason->begin(), reason->end(), is_control)) {
      fail("\"reason\" must be a text of 1 to " +
           std::to_string(control_request_limits::max_reason) +
           " bytes without control "
           "characters");
    } else {
      req.address = *address;
      req.reason = *reason;
    }
    if (req.error.empty() && in.contains("kind")) {
      const std::string* kind = text("kind");
      req.kind_given = true;
      if (req.command != "allow" && req.command != "unallow") {
        fail("\"kind\" belongs to allow and unallow; " + req.command + " acts on a recipient");
      } else if (kind != nullptr && *kind == "sender") {
        req.kind = allow_kind::sender;
      } else if (kind == nullptr || *kind != "recipient") {
        fail(R"("kind" must be "recipient" or "sender")");
      }
    }
    if (req.error.empty() && in.contains("until")) {
      if (req.command != "allow") {
        fail("\"until\" belongs to allow");
      } else if (!in["until"].is_number_integer()) {
        fail("\"until\" must be Unix seconds (an integer)");
      } else {
        req.until = from_unix_seconds(in["until"].get<std::int64_t>());
        if (req.until <= now) fail("\"until\" " + format_utc(req.until) + " is not in the future");
      }
    }
  }

  json out;
  if (!req.error.empty()) {
    out["ok"] = false;
    if (!req.command.empty()) out["command"] = req.command;
    out["error"] = req.error;
    record(caller, req, now, false, req.error);
    return dump_json(out);
  }
  if (req.command == "status") {
    record(caller, req, now, true, "");
    return status(now);
  }

  decision::operator_result result;
  if (req.command == "allow") {
    decision::operator_allow_entry entry;
    entry.address = req.address;
    entry.kind = req.kind;
    entry.until = req.until;
    entry.created_at = now;
    entry.user = caller.user.empty() ? "uid " + std::to_string(caller.uid) : caller.user;
    entry.reason = req.reason;
    result = engine_.operator_allow(std::move(entry), now);
  } else if (req.command == "unallow") {
    result = engine_.operator_unallow(req.address, req.kind, now);
  } else if (req.command == "reset") {
    result = engine_.operator_reset(req.address, now);
  } else {
    result = engine_.operator_release(req.address, now);
  }
  if (!result.key.empty()) req.address = result.key;
  record(caller, req, now, result.ok, result.message);
  if (result.ok && req.command == "release" && announce_) {
    announce_(req.address, now,
              caller.user.empty() ? "uid " + std::to_string(caller.uid) : caller.user, req.reason);
  }
  out["ok"] = result.ok;
  out["command"] = req.command;
  out["address"] = req.address;
  out[result.ok ? "message" : "error"] = result.message;
  return dump_json(out);
}

void operator_controls::release_from_cluster(const cluster::release_note& note, time_point now) {
  const decision::operator_result result = engine_.operator_release(note.recipient, now);
  if (!result.ok) return;  // its episode here ended meanwhile: nothing to release
  control_caller caller;
  caller.user = note.user;
  request req;
  req.command = "release";
  req.address = result.key.empty() ? note.recipient : result.key;
  req.reason = note.reason;
  record(caller, req, now, true,
         "released on node " + note.node + " at " + format_utc(from_unix_seconds(note.at)) +
             ", applied here: " + result.message);
}

void operator_controls::refused(const control_caller& caller, const std::string& why,
                                time_point now) {
  store::operator_action action;
  action.at = now;
  action.user = caller.user;
  action.uid = caller.uid;
  action.result = "refused";
  action.detail = why;
  const auto retention =
      std::chrono::duration_cast<std::chrono::seconds>(settings_.store.retention);
  store::database_job job;
  job.run = [action, now, retention](SQLite::Database& db) {
    SQLite::Transaction tx(db);
    store::insert_operator_action(db, action);
    store::prune_operator_rows(db, now, retention);
    tx.commit();
  };
  if (!submit_(std::move(job))) {
    log_->error("CONTROL audit row of a refused caller not stored: the store is stopping");
  }
}

void operator_controls::record(const control_caller& caller, const request& req, time_point now,
                               bool ok, const std::string& detail) {
  const bool allows = req.command == "allow" || req.command == "unallow";
  log_->info("CONTROL {} {}{}{}{}{}: {}{}{}", caller.describe(),
             req.command.empty() ? "(no command)" : req.command,
             allows ? std::string(" ") + std::string(store::allow_kind_text(req.kind)) : "",
             req.address.empty() ? "" : " " + printable(req.address),
             req.until == time_point{} ? "" : " until " + format_utc(req.until),
             req.reason.empty() ? "" : " reason=\"" + printable(req.reason) + "\"",
             ok ? "ok" : "failed", detail.empty() ? "" : ": ", printable(detail));

  store::operator_action action;
  action.at = now;
  action.user = caller.user;
  // A release applied from another node has no local caller: no uid.
  action.uid = caller.uid == static_cast<uid_t>(-1) ? -1 : static_cast<std::int64_t>(caller.uid);
  action.command = req.command;
  action.kind = allows ? std::string(store::allow_kind_text(req.kind)) : "";
  action.address = req.address;
  action.until = req.until;
  action.reason = req.reason;
  action.result = ok ? "ok" : "failed";
  action.detail = detail;
  // The allow entries in force follow the engine's list: written or deleted with the audit row.
  std::optional<decision::operator_allow_entry> saved;
  const bool deleted = ok && req.command == "unallow";
  if (ok && req.command == "allow") {
    saved = decision::operator_allow_entry{
        req.address,
        req.kind,
        req.until,
        now,
        caller.user.empty() ? "uid " + std::to_string(caller.uid) : caller.user,
        req.reason};
  }
  const auto retention =
      std::chrono::duration_cast<std::chrono::seconds>(settings_.store.retention);
  store::database_job job;
  job.run = [action, saved, deleted, kind = req.kind, now, retention](SQLite::Database& db) {
    SQLite::Transaction tx(db);
    store::insert_operator_action(db, action);
    if (saved) store::save_operator_allow(db, *saved);
    if (deleted) store::delete_operator_allow(db, action.address, kind);
    store::prune_operator_rows(db, now, retention);
    tx.commit();
  };
  if (!submit_(std::move(job))) {
    log_->error("CONTROL audit row of {} not stored: the store is stopping", req.command);
  }
}

std::string operator_controls::status(time_point now) const {
  const decision::engine_stats engine = engine_.stats();
  json out;
  out["ok"] = true;
  out["command"] = "status";
  out["version"] = RCPTGUARD_VERSION;
  out["pid"] = ::getpid();
  out["mode"] = rcptguard::to_string(settings_.detection.mode);
  out["started"] = format_utc(started_);
  out["uptime_s"] = std::chrono::duration_cast<std::chrono::seconds>(now - started_).count();
  out["requests"] = stats_.requests;
  out["verdicts"] = {{"dunno", stats_.dunno},
                     {"warn", stats_.warn},
                     {"defer", stats_.defer},
                     {"flag", stats_.flag}};
  out["tracked_recipients"] = engine.tracked_recipients;
  out["max_tracked_recipients"] = engine.max_tracked_recipients;
  out["store_pending_keys"] = store_stats_().queue_depth;

  const std::vector<decision::episode_view> episodes = engine_.open_episodes(now);
  out["open_episodes_total"] = episodes.size();
  json listed = json::array();
  for (const decision::episode_view& e : episodes) {
    if (listed.size() >= control_request_limits::max_status_episodes) break;
    listed.push_back({{"recipient", e.recipient},
                      {"level", level_text(e.level)},
                      {"since", format_utc(e.started)},
                      {"score", e.score},
                      {"peak_score", e.peak_score}});
  }
  out["open_episodes"] = std::move(listed);

  json allows = json::array();
  for (const decision::operator_allow_entry& a : engine_.operator_allows()) {
    allows.push_back({{"address", a.address},
                      {"kind", store::allow_kind_text(a.kind)},
                      {"until", time_or_null(a.until)},
                      {"created", format_utc(a.created_at)},
                      {"user", a.user},
                      {"reason", a.reason}});
  }
  out["operator_allows"] = std::move(allows);
  return dump_json(out);
}

}  // namespace rcptguard::daemon
