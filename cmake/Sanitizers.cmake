# ASan + UBSan for the whole tree (tests included); UBSan findings abort so ctest sees them as failures.
if(RCPTGUARD_SANITIZE AND RCPTGUARD_TSAN)
  message(FATAL_ERROR "RCPTGUARD_SANITIZE (ASan + UBSan) and RCPTGUARD_TSAN (ThreadSanitizer) "
                      "cannot be combined: the runtimes are incompatible. Use one build directory "
                      "for each (contrib/test.sh: build-asan and build-tsan).")
endif()
if(RCPTGUARD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
# ThreadSanitizer for the whole tree, so the daemon binary the process tests start is instrumented
# too. A report makes a process exit with TSAN_OPTIONS exitcode (66 by default); contrib/test.sh
# runs the `threaded` ctest label with halt_on_error=1 and collects every process's reports.
if(RCPTGUARD_TSAN)
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
  # GCC warns that TSan does not model the std::atomic_thread_fence in Asio's completion handlers
  # (detail/std_fenced_block.hpp). Handlers posted from another thread are ordered by the
  # scheduler's mutex, which TSan does see. The warning, once per handler type, would fail a
  # RCPTGUARD_WERROR build.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-tsan)
  endif()
endif()
