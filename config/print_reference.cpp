// Writes render_reference() to the file named on the command line (or stdout): how
// etc/rcptguard.toml is regenerated after the settings table changes.
#include <fstream>
#include <iostream>
#include <string>

#include "config/config.hpp"

int main(int argc, char** argv) {
  const std::string text = rcptguard::render_reference();
  if (argc < 2) {
    std::cout << text;
    return std::cout ? 0 : 1;
  }
  std::ofstream out{argv[1], std::ios::binary | std::ios::trunc};
  out << text;
  out.close();
  if (!out) {
    std::cerr << argv[1] << ": cannot write\n";
    return 1;
  }
  return 0;
}
