# One place for warning flags, applied per target so third-party headers stay quiet (SYSTEM includes).
function(rcptguard_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                                           -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
                                           -Wdouble-promotion -Wformat=2
                                           # GCC 12 false positive on std::string concatenation (GCC bug 105329).
                                           -Wno-restrict)
  if(RCPTGUARD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
