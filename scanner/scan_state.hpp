// What the scanner remembers between scans, per mailbox: the identity and read position of an
// mbox file (so a rescan reads only new bytes and notices truncation or a rewrite), the Maildir
// files already read, and the recent message and attachment records that evidence is computed
// from. Plain data: store/spool.hpp saves and loads it, so a restart does not rescan everything.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "common/time.hpp"

namespace rcptguard::scanner {

/// Bytes at the start of an mbox (and before its read position) whose hash identifies it.
inline constexpr std::uint32_t identity_bytes = 4096;

struct attachment_record {
  std::string mailbox;    ///< path of the mbox file or Maildir folder
  std::string recipient;  ///< the mailbox's first mapped address
  std::string sha256;     ///< hex, of the decoded content
  std::string filename;
  std::string content_type;
  std::uint64_t size = 0;
  time_point stored_at;  ///< when the message was stored (see message_record)
  time_point scanned_at;
  std::string message_id;
  std::uint64_t origin = 0;  ///< Maildir: inode of the message file; mbox: 0
};

struct message_record {
  /// Delivery time: first Received header (our MTA's), else the From_ line, else (Maildir)
  /// the file's mtime, else the Date header, else the scan time.
  time_point stored_at;
  time_point scanned_at;
  std::uint64_t bytes = 0;
  std::uint64_t origin = 0;
};

/// An mbox file as last read.
struct file_state {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;  ///< 0: never read
  std::uint64_t size = 0;
  std::uint64_t offset = 0;         ///< end of the last complete message read
  std::uint32_t prefix_length = 0;  ///< bytes hashed at offset 0
  std::string prefix_sha256;
  std::uint32_t anchor_length = 0;  ///< bytes hashed just before `offset`
  std::string anchor_sha256;
  time_point scanned_at;
};

enum class mailbox_kind : std::uint8_t { mbox, maildir };

struct mailbox_state {
  mailbox_kind kind = mailbox_kind::mbox;
  file_state mbox;
  /// Maildir: inode -> size of each message file already read.
  std::map<std::uint64_t, std::uint64_t> maildir_files;
  std::deque<message_record> messages;        ///< oldest first
  std::deque<attachment_record> attachments;  ///< oldest first
};

struct scan_state {
  std::map<std::string, mailbox_state> mailboxes;  ///< by path
};

}  // namespace rcptguard::scanner
