// two_tu test, translation unit A: includes the umbrella header and calls into
// translation unit B. Linking fails if a header defines a non-inline function or
// variable (ODR violation); running fails if the two TUs disagree.
#include <lowbit/lowbit.hpp>

int two_tu_b();            // defined in two_tu_b.cpp
double two_tu_b_grad();    // defined in two_tu_b.cpp

static int two_tu_a() {
  return LOWBIT_VERSION_MAJOR * 10000 + LOWBIT_VERSION_MINOR * 100 + LOWBIT_VERSION_PATCH;
}

int main() {
  lowbit::NoGradGuard guard;  // the thread-local flag must be one object across TUs
  const bool shared_flag = !lowbit::is_grad_enabled();
  lowbit::EnableGradGuard on;
  auto x = lowbit::Tensor<double>::full({2}, 3.0).set_requires_grad();
  lowbit::sum(lowbit::square(x)).backward();
  const bool grads_agree = x.grad().at({0}) == 6.0 && two_tu_b_grad() == 4.0;
  return (two_tu_a() == two_tu_b() && shared_flag && grads_agree) ? 0 : 1;
}
