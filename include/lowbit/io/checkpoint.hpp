// Checkpoint file: everything a bit-exact resume needs (parameters, buffers, optimizer
// state, the run's config, epoch/step, RNG and data-loader state) in one file.
//
// Written as safetensors (io/safetensors.hpp, docs/safetensors.md), so any safetensors
// reader opens it:
//   every tensor           F32, under its name ("model/conv1.weight", "optim/...")
//   __metadata__           "lowbit.format": "lowbit.checkpoint"
//                          "lowbit.meta":   the meta object as JSON text
//                          "lowbit.crc32c", "lowbit.header_crc32c": the writer's checksums
// The reader requires both checksums: a lowbit checkpoint without them was not written by
// lowbit's writer, and a flipped byte anywhere in the data or the header is refused naming
// the file instead of loading a silently different model.
//
// Files of the earlier framed format (magic "LOWBITCK", version 1, io/framed_file.hpp:
// {"meta", "tensors": [{"name", "shape", "offset"}]} + float32 data, no checksum) are still
// read, so runs and models saved before the change resume and evaluate; they are never
// written.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/tensor.hpp"
#include "framed_file.hpp"
#include "safetensors.hpp"

namespace lowbit {
namespace io {

// The safetensors metadata key naming what a lowbit file is, and its value for checkpoints.
constexpr const char* kFormatKey = "lowbit.format";
constexpr const char* kMetaKey = "lowbit.meta";
constexpr const char* kCheckpointFormat = "lowbit.checkpoint";
// The earlier framed format, read only.
constexpr char kCheckpointMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'C', 'K'};
constexpr uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  nlohmann::json meta = nlohmann::json::object();
  std::map<std::string, Tensor<float>> tensors;
};

inline void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  std::vector<SafetensorsTensor> tensors;
  tensors.reserve(ck.tensors.size());
  for (auto& [name, t] : ck.tensors) tensors.push_back(SafetensorsTensor::from_float(name, t));
  write_safetensors(path, tensors, {{kFormatKey, kCheckpointFormat}, {kMetaKey, ck.meta.dump()}});
}

// The "lowbit.format" of a file: "" for a safetensors file without one (e.g. PyTorch's), the
// format for lowbit's. Only the header is read. A file that is no safetensors file throws.
inline std::string lowbit_format_of(const std::string& path) {
  const auto meta = read_safetensors_metadata(path);
  const auto it = meta.find(kFormatKey);
  return it == meta.end() ? std::string() : it->second;
}

// A lowbit safetensors file of format `format`, checked: the format key, both checksums and
// the meta JSON (an object). `who` and `kind` word the errors ("load_checkpoint", "checkpoint").
inline SafetensorsFile read_lowbit_safetensors(const std::string& path, const char* format, const char* who,
                                               const char* kind, nlohmann::json& meta) {
  SafetensorsFile file = read_safetensors(path);
  const auto fmt = file.metadata.find(kFormatKey);
  LOWBIT_CHECK(fmt != file.metadata.end() && fmt->second == format, who, ": '", path, "' is not a lowbit ", kind,
               ": its safetensors metadata has ", kFormatKey, " = '",
               fmt == file.metadata.end() ? std::string("(none)") : fmt->second, "', expected '", format, "'");
  LOWBIT_CHECK(file.checksum_verified && file.metadata.count(kSafetensorsHeaderChecksumKey), who, ": '", path,
               "' has no ", kSafetensorsChecksumKey, " and ", kSafetensorsHeaderChecksumKey,
               " (lowbit writes both; the file was edited or written by another tool)");
  const auto m = file.metadata.find(kMetaKey);
  LOWBIT_CHECK(m != file.metadata.end(), who, ": '", path, "' has no ", kMetaKey, " metadata entry");
  try {
    meta = nlohmann::json::parse(m->second);
  } catch (const nlohmann::json::exception& e) {
    ::lowbit::detail::fail(who, ": '", path, "': its ", kMetaKey, " entry is not JSON: ", e.what());
  }
  LOWBIT_CHECK(meta.is_object(), who, ": '", path, "': its ", kMetaKey, " entry is ", detail::short_dump(meta),
               ", expected a JSON object");
  return file;
}

namespace detail {
// The framed checkpoint of lowbit before safetensors (read only).
inline Checkpoint load_framed_checkpoint(const std::string& path) {
  const FramedFile file = read_framed(path, kCheckpointMagic, kCheckpointVersion, "checkpoint", "load_checkpoint");
  Checkpoint ck;
  try {
    ck.meta = file.header.at("meta");
    for (auto& e : file.header.at("tensors")) {
      const std::string name = e.at("name");
      const std::string what = "load_checkpoint: '" + path + "' is corrupt: tensor '" + name + "'";
      const uint64_t n = checked_numel(e.at("shape"), sizeof(float), file.data.size(), what) * sizeof(float);
      const uint64_t off = checked_offset(e.at("offset"), n, file.data.size(), what);
      auto t = Tensor<float>::empty(e.at("shape").get<Shape>());
      if (n) std::memcpy(t.data(), file.data.data() + off, n);
      ck.tensors.emplace(name, t);
    }
  } catch (const nlohmann::json::exception& e) {
    ::lowbit::detail::fail("load_checkpoint: '", path, "' has a corrupt header: ", e.what());
  }
  return ck;
}
}  // namespace detail

inline Checkpoint load_checkpoint(const std::string& path) {
  if (has_magic(path, kCheckpointMagic)) return detail::load_framed_checkpoint(path);
  Checkpoint ck;
  const SafetensorsFile file = read_lowbit_safetensors(path, kCheckpointFormat, "load_checkpoint", "checkpoint", ck.meta);
  for (const SafetensorsTensor& t : file.tensors) {
    LOWBIT_CHECK(t.dtype == "F32", "load_checkpoint: '", path, "': tensor '", t.name, "' is ", t.dtype,
                 "; a lowbit checkpoint holds F32 tensors only");
    ck.tensors.emplace(t.name, t.to_float());
  }
  return ck;
}

}  // namespace io
}  // namespace lowbit
