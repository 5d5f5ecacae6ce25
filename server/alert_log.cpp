// JSON Lines alert output (see alert_log.hpp).
#include "server/alert_log.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <stdexcept>
#include <system_error>

#include "server/review_command.hpp"
#include "store/review.hpp"

namespace rcptguard::server {

namespace {

std::string_view level_name(decision::verdict_level level) {
  return level == decision::verdict_level::defer ? "defer" : "warn";
}

std::string_view source_name(decision::event_source source) {
  return source == decision::event_source::log ? "log" : "policy";
}

std::string number(double value) {
  return std::isfinite(value) ? fmt::format("{}", value) : std::string{"null"};
}

}  // namespace

std::string alert_json(const decision::episode_record& episode, bool escalated) {
  const std::int64_t raised = to_unix_seconds(escalated ? episode.updated : episode.started);
  std::string out = "{\"type\":\"episode\",\"time\":";
  out += json_quote(store::format_utc(raised));
  out += ",\"recipient\":" + json_quote(episode.recipient);
  out += ",\"verdict\":" + json_quote(level_name(episode.peak_level));
  out += ",\"score\":" + number(episode.peak_score);
  out += ",\"window\":" + json_quote(episode.peak_window);
  out += ",\"observed\":" + number(episode.peak_observed);
  out += ",\"baseline\":" + number(episode.peak_baseline);
  out += ",\"reasons\":" + json_quote(episode.summary);
  out += ",\"source\":" + json_quote(source_name(episode.source));
  out += R"(,"attack":["T1667","AN1009"])";
  out += ",\"started\":" + json_quote(store::format_utc(to_unix_seconds(episode.started)));
  out += ",\"escalated\":";
  out += escalated ? "true" : "false";
  out += '}';
  return out;
}

alert_log::alert_log(const std::string& path) {
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

alert_log::alert_log(std::FILE* stream) : stream_(stream) {}

alert_log::~alert_log() {
  if (owned_) std::fclose(stream_);
}

std::size_t alert_log::write(const std::vector<decision::episode_record>& episodes) {
  std::size_t written = 0;
  for (const decision::episode_record& e : episodes) {
    auto key = std::make_pair(e.recipient, to_unix_seconds(e.started));
    const auto found = open_.find(key);
    const bool opened = found == open_.end();
    const bool escalated = !opened && e.peak_level > found->second;
    // A close with no open entry is of an episode that began before this process.
    if ((opened && !e.ended) || escalated) {
      fmt::print(stream_, "{}\n", alert_json(e, escalated));
      ++written;
    }
    if (e.ended) {
      if (!opened) open_.erase(found);
    } else if (opened) {
      open_.emplace(std::move(key), e.peak_level);
    } else {
      found->second = std::max(found->second, e.peak_level);
    }
  }
  if (written != 0 && (std::fflush(stream_) != 0 || std::ferror(stream_) != 0)) {
    ++write_errors_;
    std::clearerr(stream_);
  }
  lines_ += written;
  return written;
}

}  // namespace rcptguard::server
