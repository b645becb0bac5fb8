// Checkpoint file: everything a bit-exact resume needs (parameters, buffers, optimizer
// state, the run's config, epoch/step, RNG and data-loader state) in one versioned file.
//
//   bytes 0-7    magic "LOWBITCK"
//   bytes 8-11   format version (uint32, little-endian)
//   bytes 12-19  length L of the JSON header (uint64)
//   next L bytes JSON: {"meta": {...}, "tensors": [{"name", "shape", "offset"}, ...]}
//   then         the float32 data of every tensor, at its offset from the data start
//   last 8 bytes total file length (uint64), so a truncated file is detected
//
// save_checkpoint writes to "<path>.tmp", flushes and renames over <path>: a crash never
// leaves a torn checkpoint, and the previous one survives until the new one is complete.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../core/tensor.hpp"

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
  uint64_t offset = 0;
  for (auto& [name, t] : ck.tensors) {
    table.push_back({{"name", name}, {"shape", t.shape()}, {"offset", offset}});
    offset += static_cast<uint64_t>(t.numel()) * sizeof(float);
  }
  const std::string header = nlohmann::json{{"meta", ck.meta}, {"tensors", table}}.dump();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    LOWBIT_CHECK(f.good(), "save_checkpoint: cannot open '", tmp, "' for writing");
    const uint64_t hlen = header.size();
    f.write(kCheckpointMagic, 8);
    f.write(reinterpret_cast<const char*>(&kCheckpointVersion), 4);
    f.write(reinterpret_cast<const char*>(&hlen), 8);
    f.write(header.data(), static_cast<std::streamsize>(hlen));
    for (auto& [name, t] : ck.tensors)
      f.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.numel() * sizeof(float)));
    const uint64_t total = 8 + 4 + 8 + hlen + offset + 8;
    f.write(reinterpret_cast<const char*>(&total), 8);
    f.flush();
    LOWBIT_CHECK(f.good(), "save_checkpoint: writing '", tmp, "' failed (disk full?); '", path,
                 "' was left untouched");
  }
  LOWBIT_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "save_checkpoint: cannot rename '", tmp,
               "' to '", path, "'");
}

inline Checkpoint load_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  LOWBIT_CHECK(f.good(), "load_checkpoint: cannot open '", path, "' (no such file?)");
  const uint64_t size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  char magic[8] = {};
  uint32_t version = 0;
  uint64_t hlen = 0;
  f.read(magic, 8);
  LOWBIT_CHECK(f.good() && std::memcmp(magic, kCheckpointMagic, 8) == 0, "load_checkpoint: '", path,
               "' is not a lowbit checkpoint (bad magic bytes)");
  f.read(reinterpret_cast<char*>(&version), 4);
  f.read(reinterpret_cast<char*>(&hlen), 8);
  LOWBIT_CHECK(f.good() && version == kCheckpointVersion, "load_checkpoint: '", path, "' has format version ",
               version, ", this build reads version ", kCheckpointVersion);
  LOWBIT_CHECK(hlen < size, "load_checkpoint: '", path, "' is truncated (header of ", hlen,
               " bytes in a file of ", size, ")");
  std::string header(hlen, '\0');
  f.read(&header[0], static_cast<std::streamsize>(hlen));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(header);
  } catch (const std::exception& e) {
    detail::fail("load_checkpoint: '", path, "' has a corrupt header: ", e.what());
  }
  Checkpoint ck;
  ck.meta = j.at("meta");
  const uint64_t data_start = 8 + 4 + 8 + hlen;
  uint64_t expected = data_start + 8;
  for (auto& e : j.at("tensors")) expected += numel_of(e.at("shape").get<Shape>()) * sizeof(float);
  LOWBIT_CHECK(size == expected, "load_checkpoint: '", path, "' is truncated or corrupt: ", size,
               " bytes, expected ", expected, " from its header");
  for (auto& e : j.at("tensors")) {
    auto t = Tensor<float>::empty(e.at("shape").get<Shape>());
    f.seekg(static_cast<std::streamoff>(data_start + e.at("offset").get<uint64_t>()));
    f.read(reinterpret_cast<char*>(t.data()), static_cast<std::streamsize>(t.numel() * sizeof(float)));
    LOWBIT_CHECK(f.good(), "load_checkpoint: '", path, "': reading tensor '", e.at("name").get<std::string>(), "' failed");
    ck.tensors.emplace(e.at("name").get<std::string>(), t);
  }
  uint64_t total = 0;
  f.seekg(static_cast<std::streamoff>(size - 8));
  f.read(reinterpret_cast<char*>(&total), 8);
  LOWBIT_CHECK(f.good() && total == size, "load_checkpoint: '", path, "' is truncated (trailer says ", total,
               " bytes, file has ", size, ")");
  return ck;
}

}  // namespace io
}  // namespace lowbit
