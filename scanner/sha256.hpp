// SHA-256 through OpenSSL's EVP interface, fed incrementally so a decoded attachment is hashed
// as it streams out of the decoder.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace rcptguard::scanner {

using sha256_digest = std::array<std::uint8_t, 32>;

class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  /// The digest of everything fed since construction or the last finish(); starts over.
  sha256_digest finish();

 private:
  struct context;
  std::unique_ptr<context> context_;
};

sha256_digest sha256_of(std::string_view bytes);

/// Lower-case hex, 64 characters.
std::string to_hex(const sha256_digest& digest);

}  // namespace rcptguard::scanner
