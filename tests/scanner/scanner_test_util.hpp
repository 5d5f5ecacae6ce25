// Shared by the scanner tests: a private temporary directory, file helpers, and generated
// messages with a base64 attachment.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "tests/common/temp_dir.hpp"

namespace rcptguard::scanner::testing {

inline const std::filesystem::path corpus_dir{RCPTGUARD_CORPUS_DIR};

using rcptguard::test_support::temp_dir;

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& bytes,
                       bool append = false) {
  std::ofstream out(p, std::ios::binary | (append ? std::ios::app : std::ios::trunc));
  out << bytes;
}

inline std::string base64(const std::string& in) {
  static constexpr char table[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t line = 0;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    const auto b = [&](std::size_t k) {
      return k < in.size() ? static_cast<unsigned>(static_cast<unsigned char>(in[k])) : 0u;
    };
    const unsigned v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out.push_back(table[(v >> 18) & 63]);
    out.push_back(table[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? table[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < in.size() ? table[v & 63] : '=');
    if (++line == 19) {
      out.push_back('\n');
      line = 0;
    }
  }
  if (line != 0) out.push_back('\n');
  return out;
}

/// One mbox entry as local(8) writes it: From_ line, headers, body, empty line.
inline std::string mbox_message(const std::string& to, int n, const std::string& filename,
                                const std::string& payload) {
  std::ostringstream m;
  m << "From bomber@remote.example  Fri Nov 27 01:07:0" << (n % 10) << " 2026\n"
    << "Return-Path: <bomber@remote.example>\n"
    << "Delivered-To: " << to << "\n"
    << "Received: from client.example.test (localhost [127.0.0.1])\n"
    << "\tby mx.example.test (Postfix) with ESMTP id ABC" << n << "\n"
    << "\tfor <" << to << ">; Fri, 27 Nov 2026 01:07:0" << (n % 10) << " +0000 (UTC)\n"
    << "Date: Fri, 27 Nov 2026 01:07:00 +0000\n"
    << "From: bomber@remote.example\n"
    << "Subject: bomb " << n << "\n"
    << "Message-Id: <bomb-" << n << "@remote.example>\n"
    << "MIME-Version: 1.0\n"
    << "Content-Type: multipart/mixed; boundary=\"b1\"\n"
    << "\n"
    << "--b1\nContent-Type: text/plain\n\nhello " << n << "\n"
    << "From the body, escaped\n"
    << "--b1\nContent-Type: application/octet-stream; name=\"" << filename << "\"\n"
    << "Content-Disposition: attachment; filename=\"" << filename << "\"\n"
    << "Content-Transfer-Encoding: base64\n\n"
    << base64(payload) << "--b1--\n"
    << "\n";
  std::string text = m.str();
  // local(8) quotes body lines that start with "From ".
  const std::string needle = "\nFrom the body";
  text.replace(text.find(needle), needle.size(), "\n>From the body");
  return text;
}

}  // namespace rcptguard::scanner::testing
