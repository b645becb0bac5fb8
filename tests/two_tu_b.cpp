// two_tu test, translation unit B: see two_tu_a.cpp.
#include <lowbit/lowbit.hpp>

int two_tu_b() {
  return LOWBIT_VERSION_MAJOR * 10000 + LOWBIT_VERSION_MINOR * 100 + LOWBIT_VERSION_PATCH;
}
