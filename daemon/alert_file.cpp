// JSON Lines alert output (see alert_file.hpp).
#include "daemon/alert_file.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <stdexcept>
#include <system_error>

#include "common/json.hpp"
#include "common/text.hpp"
#include "store/review.hpp"

namespace rcptguard::daemon {

namespace {

std::string_view level_name(decision::verdict_level level) {
  return level == decision::verdict_level::defer ? "defer" : "warn";
}

std::string_view source_name(decision::event_source source) {
  return source == decision::event_source::log ? "log" : "policy";
}

// An alert file that cannot be opened is tried again this much later, not at every batch.
constexpr std::chrono::minutes alert_reopen_interval{1};

}  // namespace

std::string alert_json(const decision::episode_record& episode, bool escalated) {
  const std::int64_t raised = to_unix_seconds(escalated ? episode.updated : episode.started);
  return dump_json({{"type", "episode"},
                    {"time", store::format_utc(raised)},
                    {"recipient", episode.recipient},
                    {"verdict", level_name(episode.peak_level)},
                    {"score", episode.peak_score},
                    {"window", episode.peak_window},
                    {"observed", episode.peak_observed},
                    {"baseline", episode.peak_baseline},
                    {"reasons", episode.summary},
                    {"source", source_name(episode.source)},
                    {"attack", {"T1667", "AN1009"}},
                    {"started", store::format_utc(to_unix_seconds(episode.started))},
                    {"escalated", escalated}});
}

alert_file::alert_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    throw std::runtime_error("cannot open alert file " + path + ": " +
                             std::generic_category().message(errno));
  }
  stream_ = ::fdopen(fd, "a");
  if (stream_ == nullptr) {
    ::close(fd);
    throw std::runtime_error("cannot open alert file " + path);
  }
  owned_ = true;
}

alert_file::alert_file(std::FILE* stream) : stream_(stream) {}

alert_file::~alert_file() {
  if (owned_) std::fclose(stream_);
}

std::vector<raised_alert> alert_tracker::track(
    const std::vector<decision::episode_record>& episodes) {
  std::vector<raised_alert> raised;
  for (const decision::episode_record& e : episodes) {
    auto key = std::make_pair(e.recipient, to_unix_seconds(e.started));
    const auto found = open_.find(key);
    const bool opened = found == open_.end();
    const bool escalated = !opened && e.peak_level > found->second;
    // A close with no open entry is of an episode that began before this process.
    if ((opened && !e.ended) || escalated) raised.push_back({&e, escalated});
    if (e.ended) {
      if (!opened) open_.erase(found);
    } else if (opened) {
      open_.emplace(std::move(key), e.peak_level);
    } else {
      found->second = std::max(found->second, e.peak_level);
    }
  }
  return raised;
}

std::size_t alert_file::write(const std::vector<decision::episode_record>& episodes) {
  return write(tracker_.track(episodes));
}

std::size_t alert_file::write(const std::vector<raised_alert>& alerts) {
  for (const raised_alert& a : alerts) {
    fmt::print(stream_, "{}\n", alert_json(*a.episode, a.escalated));
  }
  if (!alerts.empty() && (std::fflush(stream_) != 0 || std::ferror(stream_) != 0)) {
    ++write_errors_;
    std::clearerr(stream_);
  }
  lines_ += alerts.size();
  return alerts.size();
}

// ---------------------------------------------------------------------------------------------
// alert_sink

alert_sink::alert_sink(std::string path, std::shared_ptr<spdlog::logger> log,
                       alert_command* command)
    : path_(std::move(path)), log_(std::move(log)), command_(command) {}

alert_sink::~alert_sink() = default;

std::uint64_t alert_sink::lines() const {
  return file_ ? file_->lines() : 0;
}

void alert_sink::write(const std::vector<decision::episode_record>& episodes) {
  if ((path_.empty() && command_ == nullptr) || episodes.empty()) return;
  const std::vector<raised_alert> alerts = tracker_.track(episodes);
  if (alerts.empty()) return;
  if (command_ != nullptr) {
    for (const raised_alert& a : alerts) {
      command_->submit(a.episode->recipient, alert_json(*a.episode, a.escalated));
    }
  }
  if (!path_.empty()) write_file(alerts);
}

void alert_sink::write_file(const std::vector<raised_alert>& alerts) {
  const auto clock = std::chrono::steady_clock::now();
  if (!file_) {
    if (next_open_ && clock < *next_open_) return;
    try {
      file_ = std::make_unique<alert_file>(path_);
      next_open_.reset();
    } catch (const std::exception& e) {
      ++failures_;
      next_open_ = clock + alert_reopen_interval;
      log_->error("ALERTS {} (retried in a minute; alerts stay in the database)",
                  sanitize_for_log(e.what(), max_printable));
      return;
    }
  }
  const std::uint64_t errors = file_->write_errors();
  try {
    file_->write(alerts);
  } catch (const std::exception& e) {
    ++failures_;
    log_->error("ALERTS write to {} failed: {}", sanitize_for_log(path_, max_printable),
                sanitize_for_log(e.what(), max_printable));
    return;
  }
  if (file_->write_errors() != errors) {
    ++failures_;
    log_->error("ALERTS write to {} failed (disk full?); alerts stay in the database",
                sanitize_for_log(path_, max_printable));
  }
}

}  // namespace rcptguard::daemon
