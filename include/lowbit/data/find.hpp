// Where is the data? The lookup order the trainer uses for each named data set
// (documented in data/README.md):
//   1. the --data DIR given on the command line (if non-empty),
//   2. $LOWBIT_DATA (if set),
//   3. the data set's folder under data/ relative to the working directory, to its parent
//      (running from build/), and to the repository root when LOWBIT_SOURCE_DIR is defined:
//      data/cifar-10-batches-bin, data/cifar-100-binary, data/mnist,
//   4. its folder under ../shared/data relative to the same three bases (the layout where
//      the repository and a shared data folder are siblings): cifar10-jpg, mnist.
// A directory qualifies if it holds the data set directly or in that data set's usual
// subfolder (so one $LOWBIT_DATA pointing at a folder of data sets serves all of them):
//   cifar10:  data_batch_1.bin or test_batch.bin (binary format; or a cifar-10-batches-bin
//             subfolder), or train/<class>/ and test/<class>/ (image folders; or cifar10-jpg/)
//   cifar100: train.bin or test.bin (or a cifar-100-binary subfolder)
//   mnist:    train-images-idx3-ubyte or t10k-images-idx3-ubyte, or their .gz names (or mnist/)
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
#include "cifar100_binary.hpp"
#include "image_folder.hpp"
#include "mnist_idx.hpp"

namespace lowbit {
namespace data {

// Binary and ImageFolders are CIFAR-10's two layouts.
enum class DataFormat { Binary, ImageFolders, Cifar100Binary, MnistIdx };

inline const char* format_name(DataFormat f) {
  switch (f) {
    case DataFormat::Binary: return "CIFAR-10 binary format";
    case DataFormat::ImageFolders: return "CIFAR-10 image folders";
    case DataFormat::Cifar100Binary: return "CIFAR-100 binary format";
    case DataFormat::MnistIdx: return "MNIST IDX files";
  }
  return "?";
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

// What one named data set looks like on disk and where it is usually kept.
struct DatasetPlaces {
  std::string title;                    // "CIFAR-10"
  std::vector<std::string> subfolders;  // tried inside a given directory, after the directory itself
  std::vector<std::string> local;       // relative to data/ of a base
  std::vector<std::string> shared;      // relative to ../shared/data of a base
  std::string expected;                 // what a qualifying folder holds
  std::string hint;                     // how to get the data
};

inline DatasetPlaces places_of(const std::string& dataset) {
  if (dataset == "cifar10")
    return {"CIFAR-10", {"cifar-10-batches-bin", "cifar10-jpg"}, {"cifar-10-batches-bin"}, {"cifar10-jpg"},
            "data_batch_1.bin/test_batch.bin nor train/<class>/ + test/<class>/ folders",
            "Run data/download_cifar10.sh (downloads the binary version into data/cifar-10-batches-bin), or pass "
            "--data DIR (or set LOWBIT_DATA) pointing at a cifar-10-batches-bin folder or at a folder with "
            "train/<class>/*.jpg and test/<class>/*.jpg."};
  if (dataset == "cifar100")
    return {"CIFAR-100", {"cifar-100-binary"}, {"cifar-100-binary"}, {},
            "train.bin/test.bin (the CIFAR-100 binary version)",
            "Put the CIFAR-100 binary version (cifar-100-binary/ with train.bin and test.bin) in data/, or pass "
            "--data DIR (or set LOWBIT_DATA) pointing at it."};
  LOWBIT_CHECK(dataset == "mnist", "data set '", dataset, "' has no search places (expected cifar10, cifar100 or mnist)");
  return {"MNIST", {"mnist"}, {"mnist"}, {"mnist"},
          "train-images-idx3-ubyte/t10k-images-idx3-ubyte (MNIST's IDX files)",
          "Put MNIST's four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
          "t10k-labels-idx1-ubyte) in data/mnist, or pass --data DIR (or set LOWBIT_DATA) pointing at them."};
}

inline std::optional<DataFormat> format_of_exact(const std::string& dataset, const std::filesystem::path& p) {
  if (dataset == "cifar10") return format_of_exact(p);
  if (dataset == "cifar100" && (is_file(p / "train.bin") || is_file(p / "test.bin"))) return DataFormat::Cifar100Binary;
  if (dataset == "mnist")
    for (const char* f : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
      if (is_file(p / f) || is_file(p / (std::string(f) + ".gz"))) return DataFormat::MnistIdx;
  return std::nullopt;
}
}  // namespace detail

// If `dir` (or the data set's usual subfolder of it) holds `dataset` (cifar10, cifar100,
// mnist), returns where and in which format; the description says why a directory does not
// qualify.
inline std::optional<DataLocation> detect_dataset(const std::string& dataset, const std::string& dir,
                                                  std::string* why_not = nullptr) {
  namespace fs = std::filesystem;
  const detail::DatasetPlaces places = detail::places_of(dataset);
  const fs::path p(dir);
  if (!detail::is_dir(p)) {
    if (why_not) *why_not = "does not exist or is not a directory";
    return std::nullopt;
  }
  std::vector<fs::path> cands{p};
  for (auto& sub : places.subfolders) cands.push_back(p / sub);
  for (const fs::path& cand : cands) {
    if (auto f = detail::format_of_exact(dataset, cand)) {
      DataLocation loc;
      loc.dir = cand.lexically_normal().string();
      loc.format = *f;
      return loc;
    }
  }
  if (why_not) *why_not = "exists but holds neither " + places.expected;
  return std::nullopt;
}

// CIFAR-10's detection (detect_dataset("cifar10", ...)).
inline std::optional<DataLocation> detect_cifar10(const std::string& dir, std::string* why_not = nullptr) {
  return detect_dataset("cifar10", dir, why_not);
}

// The search with explicit inputs (testable): cli_dir and env_dir may be empty; repo_roots
// are extra bases (e.g. the source tree) tried after the working directory and its parent.
inline DataLocation find_dataset_in(const std::string& dataset, const std::string& cli_dir, const std::string& env_dir,
                                    const std::vector<std::string>& repo_roots) {
  namespace fs = std::filesystem;
  const detail::DatasetPlaces places = detail::places_of(dataset);
  const std::string& title = places.title;
  std::vector<std::string> searched;
  const std::string& hint = places.hint;

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
    if (auto loc = detect_dataset(dataset, value, &why)) return found(*loc, via);
    lowbit::detail::fail(title, " not found in ", via, " directory '", value, "': it ", why, ". ", hint);
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
  for (auto& sub : places.local)
    for (const auto& [base, name] : bases)
      candidates.emplace_back(base / "data" / sub, "data/" + sub + " relative to " + name);
  for (auto& sub : places.shared)
    for (const auto& [base, name] : bases)
      candidates.emplace_back(base / ".." / "shared" / "data" / sub, "../shared/data/" + sub + " relative to " + name);

  std::vector<std::string> seen;
  for (const auto& [path, via] : candidates) {
    const std::string norm = fs::weakly_canonical(path, ec).string();
    const std::string shown = ec ? path.lexically_normal().string() : norm;
    if (std::find(seen.begin(), seen.end(), shown) != seen.end()) continue;  // same place twice
    seen.push_back(shown);
    std::string why;
    if (auto loc = detect_dataset(dataset, shown, &why)) return found(*loc, via);
    searched.push_back(shown + " (" + via + "): " + why);
  }

  std::string list;
  for (size_t i = 0; i < searched.size(); ++i)
    list += "\n  " + std::to_string(i + 1) + ". " + searched[i];
  lowbit::detail::fail(title, " not found. Looked in:", list, "\n", hint);
}

inline DataLocation find_cifar10_in(const std::string& cli_dir, const std::string& env_dir,
                                    const std::vector<std::string>& repo_roots) {
  return find_dataset_in("cifar10", cli_dir, env_dir, repo_roots);
}

// The trainer's lookup: --data DIR, then $LOWBIT_DATA, then the default places (see the top
// of this file). `static` on purpose: LOWBIT_SOURCE_DIR is a per-target compile definition,
// so each translation unit must get its own copy of this function (an inline function would
// have to be identical everywhere).
static inline DataLocation find_dataset(const std::string& dataset, const std::string& cli_dir) {
  const char* env = std::getenv("LOWBIT_DATA");
  std::vector<std::string> roots;
#ifdef LOWBIT_SOURCE_DIR
  roots.push_back(LOWBIT_SOURCE_DIR);
#endif
  return find_dataset_in(dataset, cli_dir, env ? env : "", roots);
}
static inline DataLocation find_cifar10(const std::string& cli_dir) { return find_dataset("cifar10", cli_dir); }

// Loads one split from a location found by find_dataset / detect_dataset.
inline Dataset load_dataset(const DataLocation& loc, Split split) {
  switch (loc.format) {
    case DataFormat::Binary: return load_cifar10_binary(loc.dir, split);
    case DataFormat::ImageFolders: return load_cifar10_image_folders(loc.dir, split);
    case DataFormat::Cifar100Binary: return load_cifar100_binary(loc.dir, split);
    case DataFormat::MnistIdx: return load_mnist(loc.dir, split);
  }
  lowbit::detail::fail("load_dataset: unknown data format");
}
// CIFAR-10 (a location found by find_cifar10).
inline Dataset load_cifar10(const DataLocation& loc, Split split) {
  LOWBIT_CHECK(loc.format == DataFormat::Binary || loc.format == DataFormat::ImageFolders, "load_cifar10: '", loc.dir,
               "' holds ", format_name(loc.format), ", not CIFAR-10");
  return load_dataset(loc, split);
}

}  // namespace data
}  // namespace lowbit
