// Maildir: one message per file in new/ and cur/ (Postfix local(8) writes one when the spool
// path or home_mailbox ends in '/'). Files are never rewritten in place, only renamed from new/
// to cur/ (same inode) or deleted, so "already read" is a set of inodes. Maildir++ subfolders
// (.Folder/) are not read: deliveries land in the top folder.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace rcptguard::scanner {

struct maildir_file {
  std::string subdir;  ///< "new" or "cur"
  std::string name;
  std::uint64_t inode = 0;
};

struct maildir_listing {
  std::vector<maildir_file> files;
  /// False when max_entries cut the listing short, or a subdirectory could not be read; then
  /// a file missing from the listing may still exist.
  bool complete = true;
};

/// True when the directory `dir_fd` has a new/ or cur/ subdirectory.
bool looks_like_maildir(int dir_fd);

/// Regular-looking entries (no dot-files) of new/ and cur/, by inode as readdir reports it.
/// Symlinks are listed too: opening them is refused later, with a reason.
maildir_listing list_maildir(int maildir_fd, std::size_t max_entries);

}  // namespace rcptguard::scanner
