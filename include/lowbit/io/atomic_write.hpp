// Writing a file so that a crash or a full disk never leaves it torn: the bytes go to
// "<path>.tmp", which is flushed and fsync'ed, then renamed over <path>, and the folder is
// fsync'ed so the rename itself survives a power cut (the SQLite / PostgreSQL practice).
// Until the rename the previous file is untouched. Every file lowbit writes goes through
// write_file_atomic: checkpoints and exports (io/framed_file.hpp), JSON results, trimmed logs.
#pragma once
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/platform.hpp"

#if LOWBIT_POSIX
#include <fcntl.h>
#include <unistd.h>
#endif

namespace lowbit {
namespace io {

// fsync of a file or folder by path; best effort where the platform has none. Without POSIX
// the data is flushed to the operating system but not forced to the disk: a crash still
// cannot tear the file (the rename is what publishes it), a power cut may lose the write.
inline void sync_path(const std::string& path, bool folder) {
#if LOWBIT_POSIX
  const int fd = ::open(path.c_str(), folder ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
#else
  (void)path, (void)folder;
#endif
}
inline std::string parent_folder(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// `who` prefixes error messages (e.g. "save_checkpoint").
inline void write_file_atomic(const std::string& path, const std::string& bytes, const std::string& who) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    LOWBIT_CHECK(f.good(), who, ": cannot open '", tmp, "' for writing");
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    LOWBIT_CHECK(f.good(), who, ": writing '", tmp, "' failed (disk full?); '", path, "' was left untouched");
  }
  sync_path(tmp, false);
  // std::filesystem::rename replaces an existing file (rename(2) on POSIX; std::rename would
  // refuse to on Windows).
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  LOWBIT_CHECK(!ec, who, ": cannot rename '", tmp, "' to '", path, "': ", ec.message());
  sync_path(parent_folder(path), true);
}

inline void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  write_file_atomic(path, j.dump(2) + "\n", "write_json_atomic");
}

// Keeps the first n lines of a text file (a resumed run drops the log lines written after
// its checkpoint), rewritten atomically.
inline void keep_lines(const std::string& path, int64_t n) {
  std::string kept, line;
  std::ifstream in(path);
  for (int64_t k = 0; k < n && std::getline(in, line); ++k) kept += line + "\n";
  in.close();
  write_file_atomic(path, kept, "keep_lines");
}

}  // namespace io
}  // namespace lowbit
