// The operator's allow-list: recipients and senders let through at run time (`rcptguard allow`),
// until a time or for good, beside the configured detection.allow_recipients/allow_senders.
// Exact normalised addresses only, so a lookup is one hash probe on the request path. Bounded:
// entries come from operators, but a script in a loop must not grow the daemon without limit.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/time.hpp"
#include "decision/events.hpp"

namespace rcptguard::decision {

class operator_allowlist {
 public:
  /// Entries held at most, recipients and senders together.
  static constexpr std::size_t max_entries = 10'000;

  enum class add_result : std::uint8_t { added, replaced, full };

  /// Adds `entry` (its address already normalised), or replaces the entry of the same address
  /// and kind; `full` when it is new and max_entries are held.
  add_result add(operator_allow_entry entry);
  /// Removes the entry of `address` and `kind`; false when there was none.
  bool remove(std::string_view address, allow_kind kind);
  /// Whether `address` (normalised) has an entry of `kind`. Expiry is tick()'s: an entry counts
  /// until the first expire() at or after its `until`.
  bool allows(std::string_view address, allow_kind kind) const;

  /// Removes the entries whose `until` is at or before `now` and appends them to `expired`.
  /// O(1) until the soonest `until` is reached.
  void expire(time_point now, std::vector<operator_allow_entry>& expired);

  /// Every entry, recipients first, each kind by address.
  std::vector<operator_allow_entry> entries() const;
  std::size_t size() const { return recipients_.size() + senders_.size(); }

 private:
  struct view_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using entry_map =
      std::unordered_map<std::string, operator_allow_entry, view_hash, std::equal_to<>>;

  entry_map& of(allow_kind kind) { return kind == allow_kind::sender ? senders_ : recipients_; }
  const entry_map& of(allow_kind kind) const {
    return kind == allow_kind::sender ? senders_ : recipients_;
  }
  void find_next_expiry();

  entry_map recipients_;
  entry_map senders_;
  time_point next_expiry_ = time_point::max();
};

}  // namespace rcptguard::decision
