// Opening a mailbox the way a careful reader must: never through a symlink, only a regular
// file owned by whom it should be, read-only, without blocking on a FIFO or on a delivering
// agent's lock, and without touching the access time where the kernel allows.
//
// Locking convention. Postfix local(8) on Linux locks a mailbox with `fcntl, dotlock`
// (mailbox_delivery_lock), mutt and other clients likewise take an fcntl write lock plus
// <mailbox>.lock while they rewrite it. A reader needs no lock for safety: appends only add
// bytes after the ones it reads, and a rewrite is detected afterwards (scan_state). The scanner
// therefore never waits for a lock and never holds one while reading. It only *probes*: a
// non-blocking shared fcntl lock (F_SETLK, F_RDLCK) taken and released around one fstat, plus a
// check for <mailbox>.lock. When the probe succeeds, no writer was inside the file at that
// instant, so the size it saw ends a complete message. When a writer holds the file, the last
// message is treated as possibly partial and is read on the next scan instead.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace rcptguard::scanner {

/// A file descriptor closed on destruction.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd();
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept;
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

struct open_policy {
  /// The owners the file may have. Empty: any owner (a local spool file named after no local
  /// user has no expected owner; the refusal of symlinks still holds).
  std::vector<uid_t> expected_uids;
  /// Who those uids are, quoted in a refusal so that it says which rule the file broke, e.g.
  /// "the local user it is named after".
  std::string owner_rule;
  /// Probe the writer's fcntl lock and dotlock (see the file comment).
  bool probe_lock = true;
};

struct opened_file {
  unique_fd fd;
  struct stat status {};
  /// Nobody was writing at open time: the size in `status` ends a complete message.
  bool quiescent = false;
  /// Odd but not refused (world-writable, several hard links); worth a log line.
  std::string warning;
};

struct open_result {
  std::optional<opened_file> file;
  std::string refusal;  ///< why the file was not opened, when `file` is empty
};

/// Opens `name` relative to the directory `dir_fd`; see the file comment.
open_result safe_open_at(int dir_fd, const char* name, const open_policy& policy);

/// Opens a directory without following a symlink in its last component.
unique_fd open_directory_at(int dir_fd, const char* name, std::string& refusal);

/// The uid of a local user name, if there is one (getpwnam_r; thread-safe).
std::optional<uid_t> local_user_uid(const std::string& name);

/// A configured owner: a numeric uid as it is, else the uid of that user name; empty when it is
/// neither. User names are never all digits (useradd refuses them), so a number is a uid.
std::optional<uid_t> owner_uid(const std::string& name_or_uid);

}  // namespace rcptguard::scanner
