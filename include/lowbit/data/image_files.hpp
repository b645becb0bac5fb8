// Images to classify, not a labelled set (the predict tool, examples/predict.cpp): one image
// file, or a folder whose .jpg/.jpeg/.png/.bmp files are read in name order (subfolders,
// hidden and other files are ignored). Each passes the checks of image_folder.hpp before stb
// decodes it, and is decoded to the shape a model takes: channels (stb converts grey and
// RGB), height x width. An image of another size is an error naming it and both sizes,
// unless `resize` (stretched to the size, as image_folder.hpp's image_size does). The result
// has one class, "unlabelled" (label 0), and `files` says which file each image is.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "dataset.hpp"
#include "image_folder.hpp"

namespace lowbit {
namespace data {

inline Dataset load_image_files(const std::string& path, int64_t channels, int64_t height, int64_t width, bool resize,
                                std::vector<std::string>& files) {
  namespace fs = std::filesystem;
  LOWBIT_CHECK(channels == 1 || channels == 3, "load_image_files: channels = ", channels, ", expected 1 or 3");
  std::error_code ec;
  LOWBIT_CHECK(fs::exists(path, ec), "'", path, "': no such file or folder (expected an image or a folder of images)");
  files.clear();
  std::string dir = path;
  if (fs::is_directory(path, ec)) {
    for (const std::string& name : detail::sorted_entries(path, [](const fs::directory_entry& e) {
           std::error_code e2;
           return e.is_regular_file(e2) && is_image_file_name(e.path().filename().string());
         }))
      files.push_back((fs::path(path) / name).string());
    LOWBIT_CHECK(!files.empty(), "'", path, "' holds no .jpg/.jpeg/.png/.bmp files");
  } else {
    const std::string special = detail::special_file_kind(fs::path(path));
    LOWBIT_CHECK(special.empty(), "'", path, "' is ", special, ", not an image file (never opened)");
    files.push_back(path);
    dir = fs::path(path).parent_path().string();
  }
  detail::FolderShape s;
  s.channels = channels, s.height = height, s.width = width, s.resize = resize;
  Dataset ds;
  ds.channels = channels, ds.height = height, ds.width = width;
  ds.class_names = {"unlabelled"};
  ds.labels.assign(files.size(), 0);
  ds.images.resize(files.size() * static_cast<size_t>(ds.image_bytes()));
  detail::for_each_image_file(dir, files, files.size(), [&](size_t k, const std::vector<uint8_t>& buf, std::vector<uint8_t>& tmp) {
    const detail::ImageHeader hd = detail::inspect_image(buf.data(), buf.size(), files[k]);
    LOWBIT_CHECK(resize || (hd.w == width && hd.h == height), "image '", files[k], "' is ", hd.w, "x", hd.h,
                 " (width x height), the model takes ", width, "x", height, " (resize it, or pass --resize)");
    detail::decode_image_to(buf.data(), buf.size(), files[k], s, tmp, ds.images.data() + k * ds.image_bytes());
  });
  ds.source = path + " (" + std::to_string(files.size()) + " images)";
  return ds;
}

}  // namespace data
}  // namespace lowbit
