// Listing a Maildir's new/ and cur/ through directory file descriptors (no path re-resolution,
// so a directory swapped for a symlink between calls is not followed).
#include "scanner/maildir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace rcptguard::scanner {

bool looks_like_maildir(int dir_fd) {
  struct stat st {};
  for (const char* sub : {"new", "cur"}) {
    if (::fstatat(dir_fd, sub, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) return true;
  }
  return false;
}

maildir_listing list_maildir(int maildir_fd, std::size_t max_entries) {
  maildir_listing out;
  for (const char* sub : {"new", "cur"}) {
    const int fd = ::openat(maildir_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno != ENOENT) out.complete = false;
      continue;
    }
    DIR* dir = ::fdopendir(fd);  // owns fd from here on
    if (dir == nullptr) {
      ::close(fd);
      out.complete = false;
      continue;
    }
    while (const dirent* entry = ::readdir(dir)) {
      if (entry->d_name[0] == '.') continue;
      if (out.files.size() >= max_entries) {
        out.complete = false;
        break;
      }
      out.files.push_back(
          maildir_file{sub, entry->d_name, static_cast<std::uint64_t>(entry->d_ino)});
    }
    ::closedir(dir);
  }
  return out;
}

}  // namespace rcptguard::scanner
