// The process's file descriptor limit against what the connection cap needs. Every connection
// is a descriptor; a soft RLIMIT_NOFILE of 1024 (the common default) under a cap of 1024 would
// fail accept() long before the cap is reached.
#pragma once

#include <cstdint>

namespace rcptguard::daemon {

struct file_limit {
  std::uint64_t soft = 0;  ///< now in force
  std::uint64_t hard = 0;
  std::uint64_t soft_before = 0;  ///< equal to soft when nothing was raised
};

/// The current limits, without changing them.
file_limit current_file_limit();

/// Raises the soft limit to `needed` when it is lower, never above the hard limit (raising that
/// needs privileges and is the service manager's decision: LimitNOFILE=).
file_limit fit_file_limit(std::uint64_t needed);

}  // namespace rcptguard::daemon
