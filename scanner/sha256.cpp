// SHA-256 through OpenSSL EVP (which picks the SHA-NI / ARMv8 code paths at run time).
#include "scanner/sha256.hpp"

#include <openssl/evp.h>

#include <new>
#include <stdexcept>

namespace rcptguard::scanner {

struct sha256::context {
  EVP_MD_CTX* ctx = nullptr;
};

namespace {

void start(EVP_MD_CTX* ctx) {
  if (EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("EVP_DigestInit_ex(sha256) failed");
  }
}

}  // namespace

sha256::sha256() : context_(std::make_unique<context>()) {
  context_->ctx = EVP_MD_CTX_new();
  if (context_->ctx == nullptr) throw std::bad_alloc();
  start(context_->ctx);
}

sha256::~sha256() {
  EVP_MD_CTX_free(context_->ctx);
}

void sha256::update(const void* data, std::size_t size) {
  if (size == 0) return;
  // Only fails on a corrupted context; hashing has no input-dependent failure.
  if (EVP_DigestUpdate(context_->ctx, data, size) != 1) {
    throw std::runtime_error("EVP_DigestUpdate failed");
  }
}

sha256_digest sha256::finish() {
  sha256_digest digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(context_->ctx, digest.data(), &length) != 1 || length != digest.size()) {
    throw std::runtime_error("EVP_DigestFinal_ex failed");
  }
  start(context_->ctx);
  return digest;
}

sha256_digest sha256_of(std::string_view bytes) {
  sha256 hasher;
  hasher.update(bytes);
  return hasher.finish();
}

std::string to_hex(const sha256_digest& digest) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (const std::uint8_t b : digest) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

}  // namespace rcptguard::scanner
