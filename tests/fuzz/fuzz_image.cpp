// Image decoding as the image-folder reader does it (data/image_folder.hpp): the checks before
// decoding (data/image_check.hpp, the header's size), stb_image's decode, the resize. The
// input's first byte picks the folder's options; the rest is the file (JPEG, PNG or BMP):
//   0: the CIFAR-10 folder reader (32x32, converted to RGB)
//   1: image_size = 0, channels = 3: the first image's size (read from this file's header)
//   2: image_size = 24, channels = 1 (resized to 24x24, converted to grey)
//   3: image_size = 40, channels = 3 (resized to 40x40)
// Inputs whose header declares more than 512 x 512 pixels are checked (inspect_image, the
// decode budget included) but not decoded: an image at the budget of 4096 x 4096 takes about
// a second to decode under ASan, and mutations of the size fields made the fuzzer 10x slower
// with no code that small images do not reach. test_hardening_images.cpp decodes at the budget.
#include <lowbit/data/image_folder.hpp>

#include "fuzz_common.hpp"

namespace ld = lowbit::data;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int mode = data[0] % 4;
  const uint8_t* file = data + 1;
  const size_t len = size - 1;
  const std::string name = "fuzz-input";
  ld::detail::FolderShape s;
  std::vector<uint8_t> tmp, out;
  fuzz::expect_clean([&] {
    const ld::detail::ImageHeader hd = ld::detail::inspect_image(file, len, name);
    if (int64_t(hd.w) * hd.h > 512 * 512) return;
    if (mode == 0) {
      s.cifar32 = true;
    } else if (mode == 1) {  // as resolve_folder_shape sets it from the first image
      s.channels = 3, s.width = hd.w, s.height = hd.h, s.first = name;
    } else {
      s.resize = true;
      s.channels = mode == 2 ? 1 : 3;
      s.width = s.height = mode == 2 ? 24 : 40;
    }
    out.resize(static_cast<size_t>(s.channels * s.height * s.width));
    ld::detail::decode_image_to(file, len, name, s, tmp, out.data());
  });
  return 0;
}
