// The spool scanner's thread: state from the database once, then scan, save, prune, log and
// publish every interval. Every failure (database locked or unwritable, spool unreadable) is
// logged and retried at the next interval; nothing here stops the daemon.
#include "daemon/spool_service.hpp"

#include <SQLiteCpp/Database.h>
#include <fmt/core.h>

#include <boost/asio/post.hpp>
#include <map>
#include <optional>

#include "common/text.hpp"
#include "config/duration.hpp"
#include "config/options.hpp"
#include "daemon/spool_evidence.hpp"
#include "store/schema.hpp"
#include "store/spool.hpp"
#include "store/writer.hpp"

namespace rcptguard::daemon {

namespace {

// Refusal reasons quoted in a scan's summary line; each refused file gets its own line anyway.
constexpr std::size_t max_summary_reasons = 3;
// Paths, reasons and addresses come from mailbox and file names, i.e. partly from whoever can
// create files in the spool: all of them are quoted through printable().

}  // namespace

/// The thread's connection and what it has read from it. `state` is only valid while
/// `state_loaded`: after a failed save the stored state is behind the one in memory, so it is
/// read again and the unsaved messages are read again too, instead of being lost.
struct spool_service::database_state {
  scanner::scan_state state;
  bool state_loaded = false;
};

namespace {

// What save_scan() reads of the state: the read positions of the mailboxes the scan visited,
// not their records (which may be many).
scanner::scan_state positions_of(const scanner::scan_report& report,
                                 const scanner::scan_state& state) {
  scanner::scan_state out;
  for (const scanner::file_report& f : report.files) {
    const auto found = state.mailboxes.find(f.path);
    if (found == state.mailboxes.end()) continue;
    scanner::mailbox_state& box = out.mailboxes[f.path];
    box.kind = found->second.kind;
    box.mbox = found->second.mbox;
    box.maildir_files = found->second.maildir_files;
  }
  return out;
}

}  // namespace

spool_service::spool_service(boost::asio::io_context& io, spool_settings settings,
                             std::string database, std::shared_ptr<spdlog::logger> log,
                             spool_publish publish, spool_save save)
    : io_(io),
      database_(std::move(database)),
      log_(std::move(log)),
      publish_(std::move(publish)),
      save_(std::move(save)),
      settings_(std::move(settings)) {}

void spool_service::start() {
  if (worker_.running()) return;
  std::chrono::milliseconds interval{};
  {
    const std::lock_guard lock(mutex_);
    std::string roots;
    for (const std::string& root : settings_.roots) roots += (roots.empty() ? "" : ", ") + root;
    for (const std::string& root : settings_.virtual_roots) {
      roots += (roots.empty() ? "" : ", ") + root + " (virtual)";
    }
    log_->info("SPOOL scanning {} every {}", printable(roots), format_duration(settings_.interval));
    interval = settings_.interval;
  }
  worker_.start(interval, [this, db = std::make_shared<database_state>()] { round(*db); });
}

void spool_service::reconfigure(spool_settings settings) {
  const auto interval = settings.interval;
  {
    const std::lock_guard lock(mutex_);
    settings_ = std::move(settings);
  }
  worker_.set_interval(interval);
}

void spool_service::request_stop() {
  worker_.request_stop();
}

void spool_service::stop() {
  worker_.stop();
}

void spool_service::round(database_state& db) {
  try {
    scan(db);
  } catch (const std::exception& e) {
    // The connection may be the cause (file replaced, disk full): open it afresh next time.
    log_->error("SPOOL scan failed: {}; retrying at the next interval", printable(e.what()));
    failures_.fetch_add(1, std::memory_order_relaxed);
    db.state_loaded = false;
  }
}

void spool_service::scan(database_state& db) {
  if (worker_.stop_requested()) return;
  spool_settings settings;
  {
    const std::lock_guard lock(mutex_);
    settings = settings_;
  }
  const scanner::scan_options options = scan_options_from(settings);
  const time_point now = wall_clock_now();

  // The writer stores scans in order; the next scan waits until the last one is stored, so
  // the rows it reads back (after a refused save) are never behind a scan still in flight.
  if (saving_->load()) {
    log_->debug("SPOOL scan skipped: the last scan is still being stored");
    return;
  }
  if (reload_->exchange(false)) db.state_loaded = false;
  if (!db.state_loaded) {
    SQLite::Database connection = store::open_read_only(database_);
    db.state = store::load_scan_state(connection, now, options.retention);
    db.state_loaded = true;
  }

  const scanner::scan_report report = scanner::scan_once(options, db.state, now);
  const time_point scanned = wall_clock_now();

  spool_evidence_list evidence;
  for (const scanner::recipient_report& r : report.recipients) {
    if (auto strongest = strongest_evidence(r.evidence, now)) {
      evidence.emplace_back(r.recipient, std::move(*strongest));
    }
  }
  log_report(report, evidence.size());
  if (!evidence.empty()) {
    // Published before saving: the evidence is true whether or not the database takes it. The
    // handler holds no pointer to this object, so it may outlive the scheduler harmlessly.
    boost::asio::post(io_, [publish = publish_, evidence = std::move(evidence), now]() mutable {
      publish(std::move(evidence), now);
    });
  }

  // The writer thread owns the database's writes; the rows go there, and a save it refuses
  // for its content makes the next scan read the stored state again.
  saving_->store(true);
  auto saved = std::make_shared<const std::pair<scanner::scan_report, scanner::scan_state>>(
      report, positions_of(report, db.state));
  store::database_job job;
  job.run = [saved](SQLite::Database& connection) {
    store::save_scan(connection, saved->first, saved->second);
  };
  job.done = [saving = saving_, reload = reload_](bool committed) {
    if (!committed) reload->store(true);
    saving->store(false);
  };
  if (!save_(std::move(job))) saving_->store(false);
  last_scan_duration_ms_.store(
      std::chrono::duration_cast<std::chrono::milliseconds>(scanned - now).count(),
      std::memory_order_relaxed);
  last_scan_end_us_.store(scanned.time_since_epoch().count(), std::memory_order_relaxed);
  scans_.fetch_add(1, std::memory_order_relaxed);
}

spool_scan_status spool_service::status() const {
  spool_scan_status s;
  s.scans = scans_.load(std::memory_order_relaxed);
  s.failures = failures_.load(std::memory_order_relaxed);
  if (const std::int64_t end = last_scan_end_us_.load(std::memory_order_relaxed); end != 0) {
    s.last_scan_end = time_point{std::chrono::microseconds{end}};
  }
  s.last_scan_duration =
      std::chrono::milliseconds{last_scan_duration_ms_.load(std::memory_order_relaxed)};
  return s;
}

void spool_service::log_report(const scanner::scan_report& report, std::size_t evidence_count) {
  std::uint64_t messages = 0;
  std::uint64_t attachments = 0;
  std::uint64_t bytes_read = 0;
  std::size_t refused = 0;
  std::map<std::string, std::size_t> reasons;
  for (const scanner::file_report& f : report.files) {
    messages += f.messages;
    attachments += f.attachments;
    bytes_read += f.bytes_read;
    if (!f.refused.empty()) {
      ++refused;
      ++reasons[printable(f.refused)];
      log_->warn("SPOOL refused {}: {}", printable(f.path), printable(f.refused));
    }
    if (!f.warning.empty()) log_->warn("SPOOL {}: {}", printable(f.path), printable(f.warning));
    if (!f.restarted.empty()) {
      log_->info("SPOOL {} read again from the start: {}", printable(f.path), f.restarted);
    }
    for (const scanner::skipped_message& s : f.skipped) {
      log_->info("SPOOL {} skipped a message {}: {}", printable(f.path),
                 s.file.empty() ? "at offset " + std::to_string(s.offset) : printable(s.file),
                 scanner::to_string(s.reason));
    }
  }
  // Roots that do not exist are normal (/var/spool/mail is often absent); say so only on demand.
  for (const std::string& note : report.notes) log_->debug("SPOOL {}", printable(note));

  std::size_t repeated = 0;
  for (const scanner::recipient_report& r : report.recipients) {
    repeated += r.evidence.repeats.size();
    if (r.evidence.repeats.empty()) continue;
    const scanner::repeated_attachment& top = r.evidence.repeats.front();
    log_->info("SPOOL evidence {} ({}): sha256 {} stored {}x", printable(r.recipient),
               printable(r.mailbox), top.sha256.substr(0, evidence_hash_digits), top.count);
  }

  std::string why;
  std::size_t shown = 0;
  for (const auto& [reason, count] : reasons) {
    if (shown++ == max_summary_reasons) {
      why += fmt::format(", {} more", reasons.size() - max_summary_reasons);
      break;
    }
    why += fmt::format("{}{} x{}", why.empty() ? "" : ", ", reason, count);
  }
  log_->info(
      "SPOOL scanned {} mailboxes, {} messages, {} attachments, {} repeated hashes, bytes read "
      "{}, refused {}{}{}{}; evidence for {} recipients",
      report.files.size(), messages, attachments, repeated, bytes_read, refused,
      why.empty() ? "" : " (", why, why.empty() ? "" : ")", evidence_count);
}

}  // namespace rcptguard::daemon
