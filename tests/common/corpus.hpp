// Tests that read the reference corpus (../shared/corpus beside the checkout, as CI lays it out).
// A user's clone has none: such a test skips and says what is missing. Where the corpus must be
// there (CI sets RCPTGUARD_REQUIRE_CORPUS=1), its absence fails the test instead.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#define RCPTGUARD_NEEDS_CORPUS()                                                                \
  do {                                                                                          \
    if (!std::filesystem::exists(RCPTGUARD_CORPUS_DIR)) {                                       \
      if (std::getenv("RCPTGUARD_REQUIRE_CORPUS") != nullptr) {                                 \
        FAIL() << "corpus missing: " RCPTGUARD_CORPUS_DIR " (RCPTGUARD_REQUIRE_CORPUS is set)"; \
      }                                                                                         \
      GTEST_SKIP() << "corpus missing: " RCPTGUARD_CORPUS_DIR                                   \
                      " (the shared corpus beside the checkout)";                               \
    }                                                                                           \
  } while (false)
