// Safe, read-only, non-blocking opening of mailbox files; see safe_open.hpp for the rules.
#include "scanner/safe_open.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>
#include <system_error>
#include <vector>

namespace rcptguard::scanner {
namespace {

std::string errno_text(int error) {
  return std::generic_category().message(error);
}

// A shared lock taken and dropped at once: fails only while a writer holds the write lock.
bool writer_holds_lock(int fd) {
  struct flock lock {};
  lock.l_type = F_RDLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_SETLK, &lock) != 0) return errno == EAGAIN || errno == EACCES;
  lock.l_type = F_UNLCK;
  ::fcntl(fd, F_SETLK, &lock);
  return false;
}

bool dotlock_present(int dir_fd, const char* name) {
  const std::string lock_name = std::string(name) + ".lock";
  struct stat st {};
  return ::fstatat(dir_fd, lock_name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
}

}  // namespace

unique_fd::~unique_fd() {
  if (fd_ >= 0) ::close(fd_);
}

unique_fd& unique_fd::operator=(unique_fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

open_result safe_open_at(int dir_fd, const char* name, const open_policy& policy) {
  open_result result;
  // O_NONBLOCK: a FIFO planted in the spool must not hang the scan on open or read.
  constexpr int base_flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  // O_NOATIME keeps "new mail" detection (mtime > atime, used by shells and mail clients)
  // intact; the kernel allows it only to the owner or with CAP_FOWNER, so EPERM is expected
  // when the scanner runs as an unprivileged reader.
  int fd = ::openat(dir_fd, name, base_flags | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = ::openat(dir_fd, name, base_flags);
  if (fd < 0) {
    const int error = errno;
    result.refusal = error == ELOOP ? "is a symbolic link; refused" : "open: " + errno_text(error);
    return result;
  }
  opened_file opened;
  opened.fd = unique_fd(fd);
  if (::fstat(fd, &opened.status) != 0) {
    result.refusal = "fstat: " + errno_text(errno);
    return result;
  }
  if (!S_ISREG(opened.status.st_mode)) {
    result.refusal = "not a regular file; refused";
    return result;
  }
  const std::vector<uid_t>& owners = policy.expected_uids;
  if (!owners.empty() &&
      std::find(owners.begin(), owners.end(), opened.status.st_uid) == owners.end()) {
    std::string expected;
    for (const uid_t uid : owners) {
      expected += (expected.empty() ? "uid " : " or ") + std::to_string(uid);
    }
    result.refusal = "owned by uid " + std::to_string(opened.status.st_uid) + ", expected " +
                     expected + " (" + policy.owner_rule + "); refused";
    return result;
  }
  if ((opened.status.st_mode & S_IWOTH) != 0) opened.warning = "world-writable";
  if (opened.status.st_nlink > 1) {
    if (!opened.warning.empty()) opened.warning += ", ";
    opened.warning += std::to_string(opened.status.st_nlink) + " hard links";
  }
  if (policy.probe_lock) {
    const bool busy = writer_holds_lock(fd) || dotlock_present(dir_fd, name);
    // The size read after the probe is the one a quiescent file had (a writer that starts now
    // only appends after it).
    if (::fstat(fd, &opened.status) != 0) {
      result.refusal = "fstat: " + errno_text(errno);
      return result;
    }
    opened.quiescent = !busy;
  } else {
    opened.quiescent = true;
  }
  result.file = std::move(opened);
  return result;
}

unique_fd open_directory_at(int dir_fd, const char* name, std::string& refusal) {
  const int fd = ::openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    const int error = errno;
    refusal = error == ELOOP ? "is a symbolic link; refused" : "open: " + errno_text(error);
  }
  return unique_fd(fd);
}

std::optional<uid_t> local_user_uid(const std::string& name) {
  struct passwd entry {};
  struct passwd* found = nullptr;
  long size = ::sysconf(_SC_GETPW_R_SIZE_MAX);
  std::vector<char> buffer(size > 0 ? static_cast<std::size_t>(size) : 16384);
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return std::nullopt;
  }
  return found->pw_uid;
}

std::optional<uid_t> owner_uid(const std::string& name_or_uid) {
  const char* first = name_or_uid.data();
  const char* last = first + name_or_uid.size();
  if (!name_or_uid.empty() &&
      std::all_of(first, last, [](char c) { return c >= '0' && c <= '9'; })) {
    uid_t uid = 0;
    const auto [end, error] = std::from_chars(first, last, uid);
    // (uid_t)-1 means "no uid" to chown(2) and setreuid(2); no file is owned by it.
    if (error != std::errc{} || end != last || uid == std::numeric_limits<uid_t>::max()) {
      return std::nullopt;
    }
    return uid;
  }
  return local_user_uid(name_or_uid);
}

}  // namespace rcptguard::scanner
