// What the command tests share: running a command in-process with its output captured, and a
// time zone set for one scope.
#pragma once

#include <cstdio>  // open_memstream (POSIX)
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace rcptguard::cli::testing {

struct captured {
  int code = -1;
  std::string out;
  std::string err;
};

/// Runs `call(argc, argv, out, err)` with argv = {name, args...} and both streams captured.
template <class Call>
captured run_captured(const std::string& name, const std::vector<std::string>& args, Call call) {
  std::vector<std::string> storage{name};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* out_buf = nullptr;
  std::size_t out_len = 0;
  char* err_buf = nullptr;
  std::size_t err_len = 0;
  std::FILE* out = ::open_memstream(&out_buf, &out_len);
  std::FILE* err = ::open_memstream(&err_buf, &err_len);
  captured r;
  r.code = call(static_cast<int>(storage.size()), argv.data(), out, err);
  std::fclose(out);
  std::fclose(err);
  r.out.assign(out_buf, out_len);
  r.err.assign(err_buf, err_len);
  std::free(out_buf);
  std::free(err_buf);
  return r;
}

/// Sets TZ for one scope and restores the previous value.
class time_zone {
 public:
  explicit time_zone(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  time_zone(const time_zone&) = delete;
  time_zone& operator=(const time_zone&) = delete;
  ~time_zone() {
    if (old_) {
      ::setenv("TZ", old_->c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }

 private:
  std::optional<std::string> old_;
};

}  // namespace rcptguard::cli::testing
