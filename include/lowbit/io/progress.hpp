// A one-line progress bar for epochs: bar, step count, running loss and accuracy,
// images/s and ETA. On a terminal it redraws in place; into a file or pipe it prints a
// line at every 10% so logs stay short.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

#include "../core/platform.hpp"

#if LOWBIT_POSIX
#include <unistd.h>
#elif defined(_WIN32)
#include <io.h>
#endif

namespace lowbit {
namespace io {

// Whether `out` is a terminal (the bar redraws in place) or a file or pipe (log lines).
inline bool is_terminal(FILE* out) {
#if LOWBIT_POSIX
  return isatty(fileno(out)) != 0;
#elif defined(_WIN32)
  return _isatty(_fileno(out)) != 0;
#else
  (void)out;
  return false;  // no way to ask: log lines, which read well on a terminal too
#endif
}

class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, FILE* out = stdout)
      : label_(std::move(label)), total_(total), out_(out), tty_(is_terminal(out)),
        start_(std::chrono::steady_clock::now()) {}

  // The second figure: "acc" as a percentage (classification, the default), or another
  // name with a unit (train_sr: "psnr", " dB").
  ProgressBar& metric(std::string name, std::string unit) {
    metric_ = std::move(name), unit_ = std::move(unit), percent_ = false;
    return *this;
  }
  // done: steps finished; images: images seen so far in this epoch.
  void update(int64_t done, double loss, double acc, int64_t images) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double ips = secs > 0 ? static_cast<double>(images) / secs : 0.0;
    const double eta = done > 0 ? secs * static_cast<double>(total_ - done) / static_cast<double>(done) : 0.0;
    const int decile = total_ > 0 ? static_cast<int>(10 * done / total_) : 10;
    if (!tty_ && decile == last_decile_ && done != total_) return;
    last_decile_ = decile;
    const int width = 24;
    const int filled = total_ > 0 ? static_cast<int>(width * done / total_) : width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(out_, "%s%s [%s] %lld/%lld  loss %.4f  %s %5.*f%s  %6.0f img/s  ETA %3.0fs%s",
                 tty_ ? "\r" : "", label_.c_str(), bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), loss, metric_.c_str(), percent_ ? 1 : 2, percent_ ? 100.0 * acc : acc,
                 unit_.c_str(), ips, eta, tty_ ? "" : "\n");
    if (tty_ && done == total_) std::fputc('\n', out_);
    std::fflush(out_);
  }

 private:
  std::string label_;
  int64_t total_;
  FILE* out_;
  bool tty_;
  int last_decile_ = -1;
  std::string metric_ = "acc", unit_ = "%";
  bool percent_ = true;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace io
}  // namespace lowbit
