// The one way the commands include cxxopts: an -o or --map value may itself hold commas (a TOML
// list), so repeated option values are split on NUL, which never occurs in an argument.
#pragma once

#define CXXOPTS_VECTOR_DELIMITER '\0'
#include <cxxopts.hpp>
