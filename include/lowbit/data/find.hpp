// Where is CIFAR-10? The lookup order the trainer uses (documented in data/README.md):
//   1. the --data DIR given on the command line (if non-empty),
//   2. $LOWBIT_DATA (if set),
//   3. data/cifar-10-batches-bin relative to the working directory, to its parent (running
//      from build/), and to the repository root when LOWBIT_SOURCE_DIR is defined,
//   4. ../shared/data/cifar10-jpg relative to the same three bases (the layout where the
//      repository and a shared data folder are siblings).
// A directory qualifies if it holds the binary format (data_batch_1.bin or test_batch.bin,
// directly or in a cifar-10-batches-bin subfolder) or the image-folder layout
// (train/<class>/ and test/<class>/, directly or in a cifar10-jpg subfolder).
// An explicit --data or $LOWBIT_DATA that does not qualify is an error on its own: silently
// training on some other copy of the data would hide the mistake.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../core/error.hpp"
#include "cifar10_binary.hpp"
#include "dataset.hpp"
#include "image_folder.hpp"

namespace lowbit {
namespace data {

enum class DataFormat { Binary, ImageFolders };

inline const char* format_name(DataFormat f) {
  return f == DataFormat::Binary ? "CIFAR-10 binary format" : "CIFAR-10 image folders";
}

struct DataLocation {
  std::string dir;          // the directory to load from (after descending into a subfolder)
  DataFormat format = DataFormat::Binary;
  std::string description;  // e.g. "CIFAR-10 image folders in '/x/cifar10-jpg' (found via ...)"
  std::vector<std::string> searched;  // every place looked at, in order, with the outcome
};

namespace detail {
inline bool is_dir(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_directory(p, ec);
}
inline bool is_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}
inline bool has_subdir(const std::filesystem::path& p) {
  std::error_code ec;
  for (std::filesystem::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code e2;
    if (it->is_directory(e2)) return true;
  }
  return false;
}
inline std::optional<DataFormat> format_of_exact(const std::filesystem::path& p) {
  if (is_file(p / "data_batch_1.bin") || is_file(p / "test_batch.bin")) return DataFormat::Binary;
  if (is_dir(p / "train") && is_dir(p / "test") && has_subdir(p / "train") && has_subdir(p / "test"))
    return DataFormat::ImageFolders;
  return std::nullopt;
}
}  // namespace detail

// If `dir` (or its cifar-10-batches-bin / cifar10-jpg subfolder) holds CIFAR-10, returns
// where and in which format; the description says why a directory does not qualify.
inline std::optional<DataLocation> detect_cifar10(const std::string& dir, std::string* why_not = nullptr) {
  namespace fs = std::filesystem;
  const fs::path p(dir);
  if (!detail::is_dir(p)) {
    if (why_not) *why_not = "does not exist or is not a directory";
    return std::nullopt;
  }
  for (const fs::path& cand : {p, p / "cifar-10-batches-bin", p / "cifar10-jpg"}) {
    if (auto f = detail::format_of_exact(cand)) {
      DataLocation loc;
      loc.dir = cand.lexically_normal().string();
      loc.format = *f;
      return loc;
    }
  }
  if (why_not)
    *why_not = "exists but holds neither data_batch_1.bin/test_batch.bin nor train/<class>/ + "
               "test/<class>/ folders";
  return std::nullopt;
}

// The search with explicit inputs (testable): cli_dir and env_dir may be empty; repo_roots
// are extra bases (e.g. the source tree) tried after the working directory and its parent.
inline DataLocation find_cifar10_in(const std::string& cli_dir, const std::string& env_dir,
                                    const std::vector<std::string>& repo_roots) {
  namespace fs = std::filesystem;
  std::vector<std::string> searched;
  const char* hint =
      "Run data/download_cifar10.sh (downloads the binary version into "
      "data/cifar-10-batches-bin), or pass --data DIR (or set LOWBIT_DATA) pointing at a "
      "cifar-10-batches-bin folder or at a folder with train/<class>/*.jpg and "
      "test/<class>/*.jpg.";

  auto found = [&](DataLocation loc, const std::string& via) {
    loc.description = std::string(format_name(loc.format)) + " in '" + loc.dir + "' (found via " + via + ")";
    searched.push_back(loc.dir + " (" + via + "): found " + format_name(loc.format));
    loc.searched = searched;
    return loc;
  };

  // Explicit choices: use them or fail, never fall through.
  for (const auto& [value, via] : {std::pair<std::string, std::string>{cli_dir, "--data"},
                                   std::pair<std::string, std::string>{env_dir, "$LOWBIT_DATA"}}) {
    if (value.empty()) {
      searched.push_back(via + ": not given");
      continue;
    }
    std::string why;
    if (auto loc = detect_cifar10(value, &why)) return found(*loc, via);
    lowbit::detail::fail("CIFAR-10 not found in ", via, " directory '", value, "': it ", why,
                         ". Expected a folder with data_batch_1..5.bin and test_batch.bin "
                         "(or a cifar-10-batches-bin subfolder), or train/<class>/ and "
                         "test/<class>/ image folders. ", hint);
  }

  std::vector<std::pair<fs::path, std::string>> bases;
  std::error_code ec;
  const fs::path cwd = fs::current_path(ec);
  if (!ec) {
    bases.emplace_back(cwd, "the working directory");
    bases.emplace_back(cwd.parent_path(), "the parent of the working directory");
  }
  for (const auto& r : repo_roots)
    if (!r.empty()) bases.emplace_back(fs::path(r), "the repository root");

  std::vector<std::pair<fs::path, std::string>> candidates;
  for (const auto& [base, name] : bases)
    candidates.emplace_back(base / "data" / "cifar-10-batches-bin", "data/cifar-10-batches-bin relative to " + name);
  for (const auto& [base, name] : bases)
    candidates.emplace_back(base / ".." / "shared" / "data" / "cifar10-jpg", "../shared/data/cifar10-jpg relative to " + name);

  std::vector<std::string> seen;
  for (const auto& [path, via] : candidates) {
    const std::string norm = fs::weakly_canonical(path, ec).string();
    const std::string shown = ec ? path.lexically_normal().string() : norm;
    if (std::find(seen.begin(), seen.end(), shown) != seen.end()) continue;  // same place twice
    seen.push_back(shown);
    std::string why;
    if (auto loc = detect_cifar10(shown, &why)) return found(*loc, via);
    searched.push_back(shown + " (" + via + "): " + why);
  }

  std::string list;
  for (size_t i = 0; i < searched.size(); ++i)
    list += "\n  " + std::to_string(i + 1) + ". " + searched[i];
  lowbit::detail::fail("CIFAR-10 not found. Looked in:", list, "\n", hint);
}

// The trainer's lookup: --data DIR, then $LOWBIT_DATA, then the default places (see the top
// of this file). `static` on purpose: LOWBIT_SOURCE_DIR is a per-target compile definition,
// so each translation unit must get its own copy of this function (an inline function would
// have to be identical everywhere).
static inline DataLocation find_cifar10(const std::string& cli_dir) {
  const char* env = std::getenv("LOWBIT_DATA");
  std::vector<std::string> roots;
#ifdef LOWBIT_SOURCE_DIR
  roots.push_back(LOWBIT_SOURCE_DIR);
#endif
  return find_cifar10_in(cli_dir, env ? env : "", roots);
}

// Loads one split from a location found by find_cifar10 / detect_cifar10.
inline Dataset load_cifar10(const DataLocation& loc, Split split) {
  return loc.format == DataFormat::Binary ? load_cifar10_binary(loc.dir, split)
                                          : load_cifar10_image_folders(loc.dir, split);
}

}  // namespace data
}  // namespace lowbit
