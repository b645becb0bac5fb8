// data/jpeg_entropy_check.hpp's scan replay on files a real encoder wrote with restart
// intervals (issue 34): the replay must follow stb through every restart marker, or it stops
// without a word and checks nothing after it (it stops where it loses its place, as stb fails
// there). The three files were written by libjpeg-turbo 2.1.5's cjpeg (Debian 12,
// libjpeg-turbo-progs) from one 48x32 synthetic RGB image (a sine in red, a cosine in green, x y
// in blue), quality 75:
//   kGrayRestart1         cjpeg -optimize -grayscale -restart 1B   one component, 24 blocks
//   kColorRestart2        cjpeg -optimize -restart 2B              4:2:0, 6 interleaved MCUs
//   kProgressiveRestart1  cjpeg -progressive -restart 1B           10 scans
// and are kept here as hex (a few hundred bytes each) rather than as binary files.
#include <catch2/catch.hpp>

#include <lowbit/data/image_check.hpp>
#include <lowbit/data/image_folder.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "temp_dir_for_tests.hpp"

namespace {

using Bytes = std::vector<uint8_t>;

const char* const kGrayRestart1 =  // s_gray_r1.jpg, 541 bytes
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e"
    "1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc0000b080020003001011100ffc4001700000301"
    "0000000000000000000000000005060704ffc4002e100001030107020503050000000000000001020411000305061221314151f0132261"
    "81a171b1d14291c1e1f1ffdd00040001ffda0008010100003f006fbb311582903cc2bfffd07a7b7eb616254b5a40f5afffd1d8fb10b42b"
    "390151e3815fffd2d8cb11350a1a59833075cdf02bffd37b63889aa6cd322ce3ac40f935ffd478bcb113623cb962381fed7fffd556b9de"
    "391639d455004d7fffd65c7af1d1b33696854547648affd797de0f5df8842ca898d520c01f5affd097307ce82c1cca89fd3e51fbee6bff"
    "d15b62edd78690014c8e047bf5afffd259bc1f3a28cda984efbfe7ef5fffd33775e0e496b66909d54768e3b8afffd4617b840642b09126"
    "424c6c0735ffd5c2fb0727314848cbc088f73e95ffd6c2c3078f141ca0ec2763fd57ffd73ecb07a4590011000d404f7d9affd03b786101"
    "949081d36faf7fc57fffd1a1dd97e360dd1aea13b8f5d057ffd2a4bebedb0b354911b7b0dfe6bfffd335785f6dfc454a86bbc0e47e2bff"
    "d432c2fb6b980046fd7bd7ed5fffd5a431bedba6cd2332474e206f5fffd6a2bfbe9b0b327300204f71df4e6bffd9";
const char* const kColorRestart2 =  // s_base_r2.jpg, 747 bytes
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e"
    "1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffdb0043010909090c0b0c180d0d1832211c213232"
    "323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232ffc00011080020"
    "003003012200021101031101ffc4001a000001050100000000000000000000000006000102030704ffc4002e1000010301070205030500"
    "00000000000001020411000305061221314151f013226181a171b1d14291c1e1f1ffc40018010003010100000000000000000000000005"
    "06070204ffc4002b11000101050507050000000000000000000104000211142103314151f0050612131681c17191b1d1f1ffdd00040002"
    "ffda000c03010002110311003f002fbb311582903cc2badedfad858952d6903d6b1cb9de391639d455004d5cf5e3a3666d2d0a8a8ec914"
    "291eec260ebafbe0126b5b80ccf818b350d82e4a5ec5efb10b42b390151e3814996226a1434b30660eb9be05647783d77e210b2a263548"
    "3007d69983e74160e6544fe9f28fdf734c7d3e9c59c200761fbec49cc069d74fd9ce5f8b7fffd03b63889aa6cd322ce3ac40f9350bcb11"
    "3623cb962381fed646c5dbaf0d2002991c08f7eb51bc1f3a28cda984efbfe7ef5ca760d871c0803556683bbf67277e0da0dd783925ad9a"
    "427551da38ee2ae7b840642b09126424c6c073445765f8d83746ba84ee3d741573ebedb0b354911b7b0dfe68658ab563861801f1f711ea"
    "41c1833ab56ca37fffd1e17d839398a42465e0447b9f4a4c3078f141ca0ec2763fd5145e17db7f1152a1aef0391f8a6617db5cc00237eb"
    "debf6ac054af97000886852b9d07614892973cb671ae6583d22c80088006a027becd46f0c203292103a6df5eff008a2b637db74d9a4664"
    "8e9c40dea0fefa6c2cc9cc00813dc77d39a10152be6e5e341a86f2e5b26dffd9";
const char* const kProgressiveRestart1 =  // s_prog_r1.jpg, 1263 bytes
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c1912130f141d1a1f1e"
    "1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffdb0043010909090c0b0c180d0d1832211c213232"
    "323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232323232ffc20011080020"
    "003003012200021101031101ffc4001a000001050100000000000000000000000001000203050604ffc400170100030100000000000000"
    "00000000000003040502ffdd00040001ffda000c03010002100310000001b79b1af52aff00ffd0996441d1ffd1bd19102a9fffd2ed7d8b"
    "d03fffd3815a0cc5ffd4ef16cd48ff00ffc4001c1001000301000301000000000000000000020003041101122122ffda00080101000105"
    "02af4789ffd0779e7fffd17a0cffd21a0cffd31a0f3fffd4b3419fffd5a5ae7fffd66d73ffd7b1aeff00ffd00d4fffd10973ffd2b1a9ff"
    "d3ab1fe7ffd47927ffd578e7ffd618feff00ffd718fe7fffd0b324ffd1aef3ebffd2771e7fffd3b2e3dfffd41719ffd5171e7fffd6771e"
    "7fffc4001a110002030101000000000000000000000000130102031514ffda0008010301013f01f0428fffd0e7d5c7ffd1e7d527ffd28d"
    "b651ffd37ece3fffd49df649ffc4001e11000201040301000000000000000000000003010211121305141521ffda0008010201013f014f"
    "18bb44c9ffd0f3d789ffd1e85173ffd2a1adf87fffd3dadc4fffd4dadc8fffc40017100101010100000000000000000000000000014111"
    "ffda0008010100063f027fffd07fffd17fffd2c7ffd3c7ffd47fffd57fffd6ed7fffd77fffd07fffd17fffd27fffd38fffd47fffd57fff"
    "d67fffd77fffd07fffd17fffd27fffd37fffd47fffd57fffd67fffc4001f10000202020203010000000000000000000011012131415171"
    "6181a1f1ffda0008010100013f219f193fffd0b19983ffd176acffd26ff47fffd38f01ffd4d647ffd5b1967fffd6c90f83ffd7c93e8fff"
    "d07f33ea8fffd15da3ffd24df83fffd3814b27ffd4a5ae8fffd589a547ffd6e21fffd7834f87ffd0a707ffd151d1ffd2787fffd36967ff"
    "d47cffd58d0b83ffd6de1fffda000c03010002000300000010bbffd017ffd183ffd2ff00ffd31bffd4d7ffc40017110101010100000000"
    "000000000000000000410151ffda0008010301013f10cadfffd0e8afffd1da23ffd23fffd32fffd417ffc4002311010001020504030000"
    "0000000000000001210011415181c1f031617191b1d1f1ffda0008010201013f101862b33d0337631affd0b1658343f7d2b9857fffd161"
    "a0726bffd21c300f8fbb9e51c2bfffd321025b844e706845d7ffd43b3db857ffc400251001000103030304030000000000000000011100"
    "21314151f06181b17191a1d1c1e1f1ffda0008010100013f102b657fffd03a18eb5fffd15b8ab4d0afffd220b0661bf815ffd390086f10"
    "7cb5ffd449a11a1fdaffd50ca804d7ffd66244b02bffd7961a62e180f5afffd0216c4f43df2d7fffd1840323423bef5fffd2466632cfdf"
    "9affd3502e588d3915ffd439912c8a301ad7ffd594036111dde95fffd628b0704e1fd57fffd721088170e38d7fffd01921db1ebcfc57ff"
    "d12ddb991d6c57ffd21c8918ec67e6bfffd3ba05f306a7d57fffd48c04cefcbf8affd510836d20cd7fffd62a60104f239b6b5fffd9";

Bytes from_hex(const char* hex) {
  Bytes out;
  for (const char* p = hex; p[0] && p[1]; p += 2) out.push_back(static_cast<uint8_t>(std::stoi(std::string(p, 2), nullptr, 16)));
  return out;
}

lowbit::data::detail::JpegEntropyReplay::Progress replay(const Bytes& file, std::string& problem) {
  lowbit::data::detail::JpegEntropyReplay r;
  problem = lowbit::data::detail::jpeg_problem(file.data(), file.size(), nullptr, &r);
  return r.progress();
}

}  // namespace

TEST_CASE("jpeg replay: real restart-interval files are replayed through every marker and decode",
          "[data][jpeg]") {
  struct Case {
    const char* name;
    const char* hex;
    int scans;
    int64_t units, restarts;
    int64_t channels;
  };
  // A scan of U units with a restart every R has (U - 1) / R markers: none after the last unit.
  // The progressive file has 10 scans (cjpeg's default script); its 4 AC refinement scans are
  // not replayed (the header of jpeg_entropy_check.hpp says why), the other 6 are: the DC first
  // pass and the DC refinement over 6 interleaved MCUs each, and 4 AC first passes over one
  // component (luma 1-5 and 6-63: 24 blocks each; each chroma 1-63: 6 blocks): 72 units.
  const Case cases[] = {{"gray, restart every block", kGrayRestart1, 1, 24, 23, 1},
                        {"4:2:0 colour, restart every 2 MCUs", kColorRestart2, 1, 6, 2, 3},
                        {"progressive, restart every unit", kProgressiveRestart1, 6, 72, 66, 3}};
  lowbit_tests::TempDir tmp;
  for (const Case& c : cases) {
    INFO(c.name);
    const Bytes file = from_hex(c.hex);
    std::string problem = "unset";
    const auto p = replay(file, problem);
    CHECK(problem.empty());
    CHECK_FALSE(p.stopped);
    CHECK(p.scans == c.scans);
    CHECK(p.units == c.units);
    CHECK(p.restarts == c.restarts);
    // Without its markers the replay loses its place: drop every RSTn (FF D0..D7) and the
    // first scan ends early (stb fails the same file), so fewer units are replayed.
    Bytes stripped;
    for (size_t i = 0; i < file.size(); ++i) {
      if (file[i] == 0xFF && i + 1 < file.size() && file[i + 1] >= 0xD0 && file[i + 1] <= 0xD7) {
        ++i;
        continue;
      }
      stripped.push_back(file[i]);
    }
    const auto q = replay(stripped, problem);
    CHECK(q.restarts == 0);
    CHECK(q.units < c.units);
    // And the image folder reader (the replay, then stb) decodes the real file.
    const std::string dir = tmp.str(std::string("f") + std::to_string(c.channels) + std::to_string(c.units));
    for (const char* cls : {"/a", "/b"}) {
      std::filesystem::create_directories(dir + cls);
      std::ofstream(dir + cls + "/0.jpg", std::ios::binary).write(reinterpret_cast<const char*>(file.data()),
                                                                  static_cast<std::streamsize>(file.size()));
    }
    const lowbit::data::Dataset ds = lowbit::data::load_image_folder(dir, lowbit::data::ImageFolderOptions{0, 0});
    CHECK(ds.images.size() == static_cast<size_t>(2 * 48 * 32 * c.channels));
  }
}
