// two_tu test, translation unit B: see two_tu_a.cpp.
#include <lowbit/lowbit.hpp>

int two_tu_b() {
  return LOWBIT_VERSION_MAJOR * 10000 + LOWBIT_VERSION_MINOR * 100 + LOWBIT_VERSION_PATCH;
}

// Exercises templates and inline functions from this TU too, so both TUs emit them.
double two_tu_b_grad() {
  lowbit::Generator gen(1);
  auto x = lowbit::Tensor<double>::full({3}, 2.0).set_requires_grad();
  lowbit::sum(lowbit::square(x)).backward();
  (void)gen.normal();
  return x.grad().at({0});  // d(x^2)/dx at 2 = 4
}
