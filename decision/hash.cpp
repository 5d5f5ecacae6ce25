// SipHash-2-4 (Aumasson and Bernstein, 2012) and the small mixers built on top of it.
#include "decision/hash.hpp"

#include <bit>

namespace rcptguard::decision {

namespace {

struct sip_state {
  std::uint64_t v0, v1, v2, v3;

  void round() {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  }

  void absorb(std::uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

std::uint64_t load_le(const char* p, std::size_t n) {
  std::uint64_t m = 0;
  for (std::size_t i = 0; i < n; ++i) {
    m |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  }
  return m;
}

}  // namespace

keyed_hash::keyed_hash(std::uint64_t seed) {
  k0_ = splitmix64(seed);
  k1_ = splitmix64(seed);
}

std::uint64_t keyed_hash::operator()(std::string_view bytes) const {
  sip_state s{k0_ ^ 0x736f6d6570736575ULL, k1_ ^ 0x646f72616e646f6dULL, k0_ ^ 0x6c7967656e657261ULL,
              k1_ ^ 0x7465646279746573ULL};
  const std::size_t full = bytes.size() / 8 * 8;
  for (std::size_t i = 0; i < full; i += 8) s.absorb(load_le(bytes.data() + i, 8));
  const std::uint64_t last =
      (std::uint64_t{bytes.size()} << 56) | load_le(bytes.data() + full, bytes.size() - full);
  s.absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

std::uint64_t mix(std::uint64_t keyed, std::uint64_t other) {
  std::uint64_t state = keyed ^ std::rotl(other * 0x9e3779b97f4a7c15ULL, 31);
  return splitmix64(state);
}

std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace rcptguard::decision
