// Checkpoint file: everything a bit-exact resume needs (parameters, buffers, optimizer
// state, the run's config, epoch/step, RNG and data-loader state) in one versioned file.
// Framing (magic "LOWBITCK", version, atomic tmp + rename, truncation trailer):
// io/framed_file.hpp. Header: {"meta": {...}, "tensors": [{"name", "shape", "offset"}, ...]};
// the data section holds each tensor's float32 values at its offset.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "../core/tensor.hpp"
#include "framed_file.hpp"

namespace lowbit {
namespace io {

constexpr char kCheckpointMagic[8] = {'L', 'O', 'W', 'B', 'I', 'T', 'C', 'K'};
constexpr uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  nlohmann::json meta = nlohmann::json::object();
  std::map<std::string, Tensor<float>> tensors;
};

inline void save_checkpoint(const std::string& path, const Checkpoint& ck) {
  nlohmann::json table = nlohmann::json::array();
  std::string data;
  for (auto& [name, t] : ck.tensors) {
    table.push_back({{"name", name}, {"shape", t.shape()}, {"offset", data.size()}});
    data.append(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  write_framed(path, kCheckpointMagic, kCheckpointVersion, {{"meta", ck.meta}, {"tensors", table}}, data,
               "save_checkpoint");
}

inline Checkpoint load_checkpoint(const std::string& path) {
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
    detail::fail("load_checkpoint: '", path, "' has a corrupt header: ", e.what());
  }
  return ck;
}

}  // namespace io
}  // namespace lowbit
