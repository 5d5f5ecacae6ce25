// Bucket rotation and window sums (see windows.hpp for resolution and saturation).
#include "decision/windows.hpp"

#include <algorithm>
#include <limits>

namespace rcptguard::decision {

namespace {

template <class T>
void bump(T& counter, std::uint32_t by = 1) {
  constexpr std::uint32_t top = std::numeric_limits<T>::max();
  counter =
      static_cast<T>(std::min<std::uint32_t>(top, std::uint32_t{counter} + std::min(by, top)));
}

// Clears the ring entries for the `gap` periods after `from` (all of them when gap >= size).
template <class T, std::size_t N>
void clear_after(std::array<T, N>& ring, std::uint32_t from, std::uint32_t gap) {
  if (gap >= N) {
    ring.fill(0);
    return;
  }
  for (std::uint32_t k = 1; k <= gap; ++k) ring[(from + k) % N] = 0;
}

}  // namespace

std::string_view window_name(window w) {
  switch (w) {
    case window::minute:
      return "1m";
    case window::ten_minutes:
      return "10m";
    case window::hour:
      return "1h";
    case window::day:
      return "24h";
  }
  return "?";
}

std::uint32_t window_minutes(window w) {
  switch (w) {
    case window::minute:
      return 1;
    case window::ten_minutes:
      return 10;
    case window::hour:
      return 60;
    case window::day:
      return 1440;
  }
  return 1;
}

void recipient_windows::advance(std::uint32_t minute) {
  if (minute <= head_) return;
  const std::uint32_t gap = minute - head_;
  clear_after(attempted_min_, head_, gap);
  clear_after(accepted_min_, head_, gap);
  clear_after(senders_min_, head_, gap);
  clear_after(clients_min_, head_, gap);
  const std::uint32_t old_hour = head_ / 60;
  const std::uint32_t hour_gap = minute / 60 - old_hour;
  clear_after(attempted_hour_, old_hour, hour_gap);
  clear_after(accepted_hour_, old_hour, hour_gap);
  clear_after(senders_hour_, old_hour, hour_gap);
  const std::uint32_t old_epoch = head_ / 10;
  const std::uint32_t epoch_gap = minute / 10 - old_epoch;
  clear_after(epoch_rcpts_, old_epoch, epoch_gap);
  clear_after(epoch_top_, old_epoch, epoch_gap);
  clear_after(epoch_connections_, old_epoch, epoch_gap);
  head_ = minute;
}

void recipient_windows::add_attempt() {
  bump(attempted_min_[head_ % minutes_kept]);
  bump(attempted_hour_[head_ / 60 % hours_kept]);
  bump(epoch_rcpts_[head_ / 10 % 2]);
}

void recipient_windows::add_accepted() {
  bump(accepted_min_[head_ % minutes_kept]);
  bump(accepted_hour_[head_ / 60 % hours_kept]);
}

void recipient_windows::add_sender(bool new_ten, bool new_hour) {
  if (new_ten) bump(senders_min_[head_ % minutes_kept]);
  if (new_hour) bump(senders_hour_[head_ / 60 % 2]);
}

void recipient_windows::add_client(bool new_ten) {
  if (new_ten) bump(clients_min_[head_ % minutes_kept]);
}

void recipient_windows::note_client_count(std::uint32_t count) {
  std::uint16_t& top = epoch_top_[head_ / 10 % 2];
  top = static_cast<std::uint16_t>(
      std::max<std::uint32_t>(top, std::min<std::uint32_t>(count, 0xffff)));
}

void recipient_windows::note_client_connections(std::uint32_t connections) {
  std::uint16_t& top = epoch_connections_[head_ / 10 % 2];
  top = static_cast<std::uint16_t>(
      std::max<std::uint32_t>(top, std::min<std::uint32_t>(connections, 0xffff)));
}

void recipient_windows::restore_minute(std::uint32_t minute, std::uint32_t accepted,
                                       std::uint32_t attempted) {
  if (minute > head_) advance(minute);
  if (head_ - minute < minutes_kept) {
    bump(attempted_min_[minute % minutes_kept], attempted);
    bump(accepted_min_[minute % minutes_kept], accepted);
  }
  if (head_ / 60 - minute / 60 < hours_kept) {
    bump(attempted_hour_[minute / 60 % hours_kept], attempted);
    bump(accepted_hour_[minute / 60 % hours_kept], accepted);
  }
  if (head_ / 10 - minute / 10 < 2) bump(epoch_rcpts_[minute / 10 % 2], attempted);
}

void recipient_windows::restore_hour(std::uint32_t hour, std::uint32_t accepted,
                                     std::uint32_t attempted) {
  if (hour > head_ / 60) advance(hour * 60);
  if (head_ / 60 - hour < hours_kept) {
    bump(attempted_hour_[hour % hours_kept], attempted);
    bump(accepted_hour_[hour % hours_kept], accepted);
  }
}

template <class T>
double recipient_windows::sum_minutes(const std::array<T, minutes_kept>& buckets,
                                      std::uint32_t now_minute, std::uint32_t count,
                                      double oldest_weight) const {
  now_minute = std::max(now_minute, head_);
  double sum = 0.0;
  for (std::uint32_t k = 0; k < count; ++k) {
    const std::uint32_t m = now_minute - k;
    if (m > head_ || head_ - m >= minutes_kept) continue;
    const double weight = (k + 1 == count) ? oldest_weight : 1.0;
    sum += weight * buckets[m % minutes_kept];
  }
  return sum;
}

template <class T>
double recipient_windows::sum_hours(const std::array<T, hours_kept>& buckets,
                                    std::uint32_t now_minute, std::uint32_t count,
                                    double oldest_weight) const {
  now_minute = std::max(now_minute, head_);
  const std::uint32_t now_hour = now_minute / 60;
  const std::uint32_t head_hour = head_ / 60;
  double sum = 0.0;
  for (std::uint32_t k = 0; k < count; ++k) {
    const std::uint32_t h = now_hour - k;
    if (h > head_hour || head_hour - h >= hours_kept) continue;
    const double weight = (k + 1 == count) ? oldest_weight : 1.0;
    sum += weight * buckets[h % hours_kept];
  }
  return sum;
}

double recipient_windows::read(window w, const std::array<std::uint16_t, minutes_kept>& minutes,
                               const std::array<std::uint16_t, hours_kept>& hours,
                               std::uint32_t now_minute, unsigned second_in_minute) const {
  switch (w) {
    case window::minute:
      return sum_minutes(minutes, now_minute, 2, 1.0 - second_in_minute / 60.0);
    case window::ten_minutes:
      return sum_minutes(minutes, now_minute, minutes_kept, 1.0);
    case window::hour: {
      const double into_hour = (now_minute % 60 + second_in_minute / 60.0) / 60.0;
      return sum_hours(hours, now_minute, 2, 1.0 - into_hour);
    }
    case window::day:
      return sum_hours(hours, now_minute, hours_kept, 1.0);
  }
  return 0.0;
}

double recipient_windows::attempted(window w, std::uint32_t now_minute,
                                    unsigned second_in_minute) const {
  return read(w, attempted_min_, attempted_hour_, now_minute, second_in_minute);
}

double recipient_windows::accepted(window w, std::uint32_t now_minute,
                                   unsigned second_in_minute) const {
  return read(w, accepted_min_, accepted_hour_, now_minute, second_in_minute);
}

double recipient_windows::distinct_senders_ten_minutes(std::uint32_t now_minute) const {
  return sum_minutes(senders_min_, now_minute, minutes_kept, 1.0);
}

double recipient_windows::distinct_senders_hour(std::uint32_t now_minute,
                                                unsigned second_in_minute) const {
  now_minute = std::max(now_minute, head_);
  const std::uint32_t now_hour = now_minute / 60;
  const std::uint32_t head_hour = head_ / 60;
  const double into_hour = (now_minute % 60 + second_in_minute / 60.0) / 60.0;
  double sum = 0.0;
  for (std::uint32_t k = 0; k < 2; ++k) {
    const std::uint32_t h = now_hour - k;
    if (h > head_hour || head_hour - h >= 2) continue;
    sum += (k == 1 ? 1.0 - into_hour : 1.0) * senders_hour_[h % 2];
  }
  return sum;
}

double recipient_windows::distinct_clients_ten_minutes(std::uint32_t now_minute) const {
  return sum_minutes(clients_min_, now_minute, minutes_kept, 1.0);
}

double recipient_windows::top_client_share(std::uint32_t now_minute, std::uint32_t min_messages,
                                           double& sample) const {
  now_minute = std::max(now_minute, head_);
  const std::uint32_t now_epoch = now_minute / 10;
  const std::uint32_t head_epoch = head_ / 10;
  double best = 0.0;
  sample = 0.0;
  for (std::uint32_t k = 0; k < 2; ++k) {
    const std::uint32_t e = now_epoch - k;
    if (e > head_epoch || head_epoch - e >= 2) continue;
    const std::uint32_t rcpts = epoch_rcpts_[e % 2];
    if (rcpts == 0 || rcpts < min_messages) continue;
    const double share = static_cast<double>(epoch_top_[e % 2]) / rcpts;
    if (share > best) {
      best = share;
      sample = rcpts;
    }
  }
  return best;
}

double recipient_windows::top_client_connections(std::uint32_t now_minute) const {
  now_minute = std::max(now_minute, head_);
  const std::uint32_t now_epoch = now_minute / 10;
  const std::uint32_t head_epoch = head_ / 10;
  std::uint16_t best = 0;
  for (std::uint32_t k = 0; k < 2; ++k) {
    const std::uint32_t e = now_epoch - k;
    if (e > head_epoch || head_epoch - e >= 2) continue;
    best = std::max(best, epoch_connections_[e % 2]);
  }
  return best;
}

std::uint32_t recipient_windows::attempted_in_hour(std::uint32_t hour) const {
  const std::uint32_t head_hour = head_ / 60;
  if (hour > head_hour || head_hour - hour >= hours_kept) return 0;
  return attempted_hour_[hour % hours_kept];
}

std::uint32_t recipient_windows::accepted_in_hour(std::uint32_t hour) const {
  const std::uint32_t head_hour = head_ / 60;
  if (hour > head_hour || head_hour - hour >= hours_kept) return 0;
  return accepted_hour_[hour % hours_kept];
}

}  // namespace rcptguard::decision
