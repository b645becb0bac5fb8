// two_tu test, translation unit A: includes the umbrella header and calls into
// translation unit B. Linking fails if a header defines a non-inline function or
// variable (ODR violation); running fails if the two TUs disagree.
#include <lowbit/lowbit.hpp>

int two_tu_b();  // defined in two_tu_b.cpp

static int two_tu_a() {
  return LOWBIT_VERSION_MAJOR * 10000 + LOWBIT_VERSION_MINOR * 100 + LOWBIT_VERSION_PATCH;
}

int main() {
  return two_tu_a() == two_tu_b() ? 0 : 1;
}
