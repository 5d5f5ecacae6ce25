#include "daemon/file_limit.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <limits>

namespace rcptguard::daemon {

namespace {

std::uint64_t as_count(rlim_t value) {
  return value == RLIM_INFINITY ? std::numeric_limits<std::uint64_t>::max()
                                : static_cast<std::uint64_t>(value);
}

}  // namespace

file_limit current_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return {};
  return {as_count(limit.rlim_cur), as_count(limit.rlim_max), as_count(limit.rlim_cur)};
}

file_limit fit_file_limit(std::uint64_t needed) {
  file_limit result = current_file_limit();
  if (result.soft >= needed) return result;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return result;
  const rlim_t wanted = static_cast<rlim_t>(std::min(needed, result.hard));
  if (wanted <= limit.rlim_cur) return result;
  limit.rlim_cur = wanted;
  if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) return result;
  result.soft = as_count(wanted);
  return result;
}

}  // namespace rcptguard::daemon
