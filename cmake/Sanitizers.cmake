# ASan + UBSan for the whole tree (tests included); UBSan findings abort so ctest sees them as failures.
if(RCPTGUARD_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
