// Out-of-tree consumer: everything must come from find_package(lowbit) alone.
#include <lowbit/lowbit.hpp>

#include <Eigen/Core>          // via Eigen3::Eigen
#include <nlohmann/json.hpp>   // via nlohmann_json::nlohmann_json
#include <stb_image.h>         // via lowbit::stb (include dir found by lowbitConfig.cmake)

#include <cstdio>

int main() {
  nlohmann::json j = {{"major", LOWBIT_VERSION_MAJOR},
                      {"minor", LOWBIT_VERSION_MINOR},
                      {"patch", LOWBIT_VERSION_PATCH}};
  Eigen::Vector2f v(1.0f, 2.0f);
  std::printf("lowbit consumer: version %s, eigen sum %g, openmp %s, avx2 %s\n",
              j.dump().c_str(), static_cast<double>(v.sum()),
#ifdef _OPENMP
              "on",
#else
              "off",
#endif
#ifdef __AVX2__
              "on"
#else
              "off"
#endif
  );
  return (j["major"] == 0 && v.sum() == 3.0f) ? 0 : 1;
}
