// A fresh random 64-bit value from the operating system (std::random_device): the key of every
// hash over attacker-chosen data, so a sender cannot craft colliding recipients offline.
#pragma once

#include <cstdint>
#include <random>

namespace rcptguard {

inline std::uint64_t random_hash_seed() {
  std::random_device device;
  return (std::uint64_t{device()} << 32U) ^ device();
}

}  // namespace rcptguard
