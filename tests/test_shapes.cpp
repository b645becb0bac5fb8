// Run-time image shapes (issue 25): augmentation and normalization of any C x H x W, the
// data set's own statistics, the models built for the data (LeNet5, ResNet-20/32/44/56, VGG
// on other sizes), the validation split of a run, metrics.csv, and the config keys that
// choose a data set. The readers (MNIST, CIFAR-100, image folders) are in test_datasets.cpp.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <lowbit/lowbit.hpp>
#include <string>
#include <vector>

using namespace lowbit;
using Catch::Contains;
using json = nlohmann::json;

namespace {
// n images of c x h x w whose pixel (i, c, y, x) is a known function; labels i % classes.
data::Dataset synthetic(int64_t n, int64_t c, int64_t h, int64_t w, int64_t classes) {
  data::Dataset ds;
  ds.channels = c, ds.height = h, ds.width = w;
  for (int64_t k = 0; k < classes; ++k) ds.class_names.push_back("c" + std::to_string(k));
  ds.source = "synthetic";
  for (int64_t i = 0; i < n; ++i) {
    ds.labels.push_back(i % classes);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) ds.images.push_back(static_cast<uint8_t>((i * 31 + ch * 50 + y * 7 + x) % 256));
  }
  return ds;
}
int64_t count_params(nn::Module& m) {
  int64_t n = 0;
  for (auto& p : m.parameters()) n += p.numel();
  return n;
}
}  // namespace

TEST_CASE("shapes: a 1 x 28 x 28 image is cropped, flipped and normalized at its own size", "[data][shapes]") {
  const data::Dataset ds = synthetic(2, 1, 28, 28, 2);
  ds.check();
  const data::NormalizeTable raw(data::Normalize::identity(1));
  const data::ImageShape shape = data::ImageShape::of(ds);
  std::vector<float> out(28 * 28);
  // Crop corner (dy, dx) = (1, 6) with pad 4: output (y, x) reads source (y - 3, x + 2); flipped, x -> 27 - x first.
  data::augment_image(ds.image(1), {1, 6, false}, 4, raw, out.data(), shape);
  CHECK(out[0] == 0.0f);                                                      // row -3: padding
  CHECK(out[3 * 28 + 0] == Approx(ds.pixel(1, 0, 0, 2) / 255.0f).epsilon(0)); // (3, 0) <- (0, 2)
  CHECK(out[27 * 28 + 25] == Approx(ds.pixel(1, 0, 24, 27) / 255.0f).epsilon(0));
  CHECK(out[27 * 28 + 26] == 0.0f);                                           // column 28: padding
  data::augment_image(ds.image(1), {4, 4, true}, 4, raw, out.data(), shape);
  for (int y = 0; y < 28; y += 9)
    for (int x = 0; x < 28; x += 5) CHECK(out[y * 28 + x] == Approx(ds.pixel(1, 0, y, 27 - x) / 255.0f).epsilon(0));
  // The Cutout square is clipped to 28 x 28, never to CIFAR's 32.
  data::AugmentConfig cut;
  cut.cutout = 16;
  Generator g(5);
  for (int k = 0; k < 200; ++k) {
    const data::AugmentParams p = data::draw_augment_params(g, cut, 28, 28);
    CHECK(p.cut_y1 <= 28);
    CHECK(p.cut_x1 <= 28);
  }
  // A loader batch has the data set's shape; a normalization for 3 channels is refused.
  data::LoaderOptions lo;
  lo.batch_size = 2;
  lo.normalize = data::Normalize::mnist();
  data::DataLoader loader(ds, lo);
  data::Batch b;
  REQUIRE(loader.next(b));
  CHECK(b.images.shape() == std::vector<int64_t>{2, 1, 28, 28});
  lo.normalize = data::Normalize::cifar10();
  CHECK_THROWS_WITH(data::DataLoader(ds, lo), Contains("3 channels") && Contains("1x28x28"));
}

TEST_CASE("shapes: Normalize::of is the per-channel mean and std of v / 255", "[data][shapes]") {
  data::Dataset ds = synthetic(1, 2, 1, 2, 2);
  ds.images = {0, 255, 51, 51};  // channel 0: {0, 1}, channel 1: {0.2, 0.2} (constant)
  const data::Normalize n = data::Normalize::of(ds);
  REQUIRE(n.channels() == 2);
  CHECK(n.mean[0] == Approx(0.5));
  CHECK(n.std[0] == Approx(0.5));
  CHECK(n.mean[1] == Approx(0.2));
  CHECK(n.std[1] == 1.0f);  // a constant channel: no division by 0
  CHECK_THROWS_WITH(data::NormalizeTable(data::Normalize{{0.5f}, {0.1f, 0.2f}}), Contains("1 means and 2 stds"));
  ds.height = 0;
  CHECK_THROWS_WITH(ds.check(), Contains("2x0x2"));
}

TEST_CASE("shapes: models take the data's channels, size and classes", "[nn][shapes]") {
  Generator gen(1);
  // ALQ's LeNet5 on MNIST: 430,500 weights + 580 biases (docs/alq.md, Table 2's 1,720 KB).
  auto lenet = nn::lenet5(gen);
  CHECK(count_params(*lenet) == 430500 + 580);
  CHECK((*lenet)(Tensor<float>::zeros({2, 1, 28, 28})).shape() == std::vector<int64_t>{2, 10});
  auto lenet_rgb = nn::lenet5(gen, nn::LayerFactory::fp32(), 3, 32, 32, 100);
  CHECK((*lenet_rgb)(Tensor<float>::zeros({1, 3, 32, 32})).shape() == std::vector<int64_t>{1, 100});
  CHECK_THROWS_WITH(nn::lenet5(gen, nn::LayerFactory::fp32(), 1, 12, 12, 10), Contains("1x12x12") && Contains("16 x 16"));
  // ResNet-6n+2 (He et al. Table 6: 0.27M, 0.46M, 0.66M, 0.85M parameters with option A).
  const int depths[4] = {20, 32, 44, 56};
  const int64_t expect[4] = {269722, 464154, 658586, 853018};
  for (int k = 0; k < 4; ++k) CHECK(count_params(*nn::resnet_cifar(depths[k], gen)) == expect[k]);
  auto r1 = nn::resnet_cifar(20, gen, nn::Shortcut::A, nn::LayerFactory::fp32(), 7, 1);
  CHECK((*r1)(Tensor<float>::zeros({2, 1, 40, 24})).shape() == std::vector<int64_t>{2, 7});
  // VGG's classifier input follows the image size: 64 x 64 -> 512 x 8 x 8.
  nn::VggSmall v(10, nn::LayerFactory::fp32(), gen, 3, 64, 64);
  CHECK(v.fc->parameters()[0].shape() == std::vector<int64_t>{10, 512 * 8 * 8});
  CHECK_THROWS_WITH(nn::VggSmall(10, nn::LayerFactory::fp32(), gen, 3, 4, 4), Contains("4x4"));
}

TEST_CASE("shapes: config keys of the data set are checked; a model that cannot take the data says so", "[train][shapes][config]") {
  CHECK_THROWS_WITH(train::resolve_config({{"dataset", "folder"}}), Contains("'data'") && Contains("folder"));
  CHECK_THROWS_WITH(train::resolve_config({{"image_size", 64}}), Contains("'image_size' = 64") && Contains("'folder' only"));
  CHECK_THROWS_WITH(train::resolve_config({{"dataset", "mnist"}, {"norm_mean", {0.1}}, {"norm_std", {0.3}}}),
                    Contains("'normalize' = \"given\""));
  CHECK_THROWS_WITH(train::resolve_config({{"dataset", "mnist"}, {"normalize", "given"}, {"norm_mean", {0.1}}, {"norm_std", {0.3, 1}}}),
                    Contains("one value per channel"));
  CHECK_THROWS_WITH(train::resolve_config({{"norm_std", {0.0}}}), Contains("norm_std"));
  CHECK_THROWS_WITH(train::resolve_config({{"channels", 2}, {"dataset", "folder"}, {"data", "x"}}), Contains("'channels' = 2"));
  const json mnist = train::resolve_config({{"dataset", "mnist"}, {"model", "lenet5"}});
  CHECK(train::named_data_info(mnist).to_json() ==
        json{{"channels", 1}, {"height", 28}, {"width", 28}, {"classes", 10}, {"norm_mean", {0.1307f}}, {"norm_std", {0.3081f}}});
  CHECK(count_params(*train::build_model(mnist)) == 431080);
  train::DataInfo tiny;
  tiny.channels = 1, tiny.height = 8, tiny.width = 8, tiny.normalize = data::Normalize::identity(1);
  CHECK_THROWS_WITH(train::build_model(mnist, tiny), Contains("config key 'model' = \"lenet5\" on 1x8x8 images"));
  CHECK_THROWS_WITH(train::DataInfo::from_json({{"channels", 3}}, "'f.bin'"), Contains("'f.bin'") && Contains("malformed"));
  json huge = train::named_data_info(mnist).to_json();
  huge["height"] = 1e82;  // a number, not an integer: refused before any conversion (io/json_int.hpp)
  CHECK_THROWS_WITH(train::DataInfo::from_json(huge, "'f.bin'"),
                    Contains("'f.bin': data_info.height = 1e+82: expected an integer"));
  const data::Dataset ds = synthetic(6, 3, 4, 4, 2);
  CHECK_THROWS_WITH(train::run_normalize(train::resolve_config({{"normalize", "given"}, {"norm_mean", {0.5}}, {"norm_std", {0.5}}}), ds),
                    Contains("3 channel"));
  const data::Normalize own = train::run_normalize(train::resolve_config({{"normalize", "dataset"}}), ds);
  CHECK(own.mean == data::Normalize::of(ds).mean);
  CHECK(train::run_normalize(train::resolve_config(json::object()), ds).mean == data::Normalize::cifar10().mean);
}

TEST_CASE("metrics.csv: columns in first-seen order, later keys appended, quoting", "[io][csv]") {
  const std::string jsonl =
      "{\"epoch\": 1, \"test_acc\": 0.5, \"name\": \"a,b\"}\n"
      "{\"epoch\": 2, \"test_acc\": 0.25, \"name\": \"say \\\"hi\\\"\", \"val_acc\": 0.75, \"v\": [1, 2]}\n";
  CHECK(io::jsonl_to_csv(jsonl, "m") ==
        "epoch,name,test_acc,v,val_acc\n"
        "1,\"a,b\",0.5,,\n"
        "2,\"say \"\"hi\"\"\",0.25,\"[1,2]\",0.75\n");
  CHECK(io::csv_cell(json(0.1)) == "0.1");  // round-trips: the shortest exact text, as in metrics.jsonl
  CHECK_THROWS_WITH(io::jsonl_to_csv("{\"a\": 1}\nnot json\n", "'m.jsonl'"), Contains("'m.jsonl': line 2"));
}
