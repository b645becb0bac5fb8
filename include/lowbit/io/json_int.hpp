// An integer read from JSON that came from a file (a model's header, a stored spec, a saved
// loader state). nlohmann's get<int64_t>() of a number that is not an integer (2.5, or 1e82,
// which a long run of digits parses to) converts the double, and out of range that is
// undefined behaviour (fuzz_export_lbq found it, docs/fuzzing.md): this checks the type and
// the range first and names the key and the value otherwise.
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "../core/error.hpp"

namespace lowbit {
namespace io {

// v as an integer in [lo, hi]; `what` names the key in the error.
inline int64_t json_int(const nlohmann::json& v, const std::string& what,
                        int64_t lo = std::numeric_limits<int64_t>::min(),
                        int64_t hi = std::numeric_limits<int64_t>::max()) {
  const bool fits = v.is_number_integer() &&
                    (!v.is_number_unsigned() || v.get<uint64_t>() <= uint64_t(std::numeric_limits<int64_t>::max()));
  LOWBIT_CHECK(fits && v.get<int64_t>() >= lo && v.get<int64_t>() <= hi, what, " = ", v.dump(),
               ": expected an integer in [", lo, ", ", hi, "]");
  return v.get<int64_t>();
}

// v as an unsigned 64-bit integer (a seed).
inline uint64_t json_uint64(const nlohmann::json& v, const std::string& what) {
  LOWBIT_CHECK(v.is_number_unsigned() || (v.is_number_integer() && v.get<int64_t>() >= 0), what, " = ", v.dump(),
               ": expected an integer in [0, 2^64)");
  return v.get<uint64_t>();
}

}  // namespace io
}  // namespace lowbit
