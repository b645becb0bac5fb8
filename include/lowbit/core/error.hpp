// Errors. Every misuse throws lowbit::Error whose message names the op (or file, or
// argument), the offending value and what was expected — never an assert or a crash.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lowbit {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

using Shape = std::vector<int64_t>;

// "[2, 3, 4]" — the form every error message uses for shapes.
inline std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

namespace detail {
// Builds a message from any streamable pieces: fail("matmul: ", a, " vs ", b).
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  throw Error(os.str());
}
}  // namespace detail

}  // namespace lowbit

// LOWBIT_CHECK(cond, pieces...) throws lowbit::Error built from the pieces when cond is false.
#define LOWBIT_CHECK(cond, ...)                        \
  do {                                                 \
    if (!(cond)) ::lowbit::detail::fail(__VA_ARGS__);  \
  } while (0)
