// bench_data: how fast the data pipeline is.
//   1. reading train + test into the in-memory uint8 Dataset: CIFAR-10 (60,000 JPEGs from
//      image folders, or the binary files), MNIST (the IDX files) or CIFAR-100 (--dataset);
//   2. CIFAR-10 only: the binary reader, on a copy of the decoded data written to a temp dir
//      (skipped with --no-bin; the copy is deleted afterwards);
//   3. DataLoader throughput (shuffle + crop/flip augmentation + normalization + batching
//      into [B, C, H, W] floats) in images/s, with augmentation on and off.
//
//   bench_data [--dataset cifar10|mnist|cifar100] [--data DIR] [--threads N] [--batch 128] [--epochs 2] [--no-bin]
// The data is found as the trainer finds it (--data, $LOWBIT_DATA, data/<folder>,
// ../shared/data/<folder>; see data/README.md).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <lowbit/data/find.hpp>
#include <lowbit/data/loader.hpp>
#include <lowbit/kernels/parallel.hpp>
#include <string>

using namespace lowbit;

namespace {
[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_data: %s\nusage: bench_data [--dataset cifar10|mnist|cifar100] [--data DIR] [--threads N] [--batch B] "
               "[--epochs E] [--no-bin]\n",
               why.c_str());
  std::exit(2);
}
int64_t parse_int(const char* flag, const char* v, int64_t lo) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (!*v || *end || x < lo) usage(std::string(flag) + " expects an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Writes `ds` as CIFAR-10 binary records, 10,000 per file, with the official names.
void write_binary(const data::Dataset& ds, const std::filesystem::path& dir, data::Split split) {
  const auto files = data::cifar10_binary_files(split);
  const int64_t per_file = (ds.size() + static_cast<int64_t>(files.size()) - 1) / static_cast<int64_t>(files.size());
  for (size_t f = 0; f < files.size(); ++f) {
    std::ofstream out(dir / files[f], std::ios::binary);
    for (int64_t i = static_cast<int64_t>(f) * per_file; i < std::min(ds.size(), (static_cast<int64_t>(f) + 1) * per_file); ++i) {
      out.put(static_cast<char>(ds.labels[static_cast<size_t>(i)]));
      out.write(reinterpret_cast<const char*>(ds.image(i)), data::kImageBytes);
    }
  }
}

void bench_loader(const data::Dataset& train, const data::Normalize& norm, int64_t batch, int64_t epochs, bool augment) {
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.augment = augment;
  lo.normalize = norm;
  lo.seed = 1;
  data::DataLoader loader(std::make_shared<const data::Dataset>(train), lo);
  data::Batch b;
  loader.next(b);  // warm-up: first-touch of the batch buffers, permutation of epoch 0
  int64_t images = 0;
  double checksum = 0.0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t e = 0; e < epochs; ++e) {
    while (loader.next(b)) {
      images += b.size();
      checksum += b.images.data()[0];  // keep the work observable
    }
  }
  const double s = seconds_since(t0);
  std::printf("loader (augment %-3s, batch %lld): %lld images in %.3f s = %.0f images/s  (checksum %.3f)\n",
              augment ? "on" : "off", static_cast<long long>(batch), static_cast<long long>(images), s,
              static_cast<double>(images) / s, checksum);
}
}  // namespace

int main(int argc, char** argv) {
  std::string data_dir, dataset = "cifar10";
  int64_t threads = max_threads(), batch = 128, epochs = 2;
  bool bin = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") data_dir = next();
    else if (a == "--dataset") dataset = next();
    else if (a == "--threads") threads = parse_int("--threads", next(), 1);
    else if (a == "--batch") batch = parse_int("--batch", next(), 1);
    else if (a == "--epochs") epochs = parse_int("--epochs", next(), 1);
    else if (a == "--no-bin") bin = false;
    else usage("unknown argument '" + a + "'");
  }
  set_num_threads(static_cast<int>(threads));
  if (dataset != "cifar10" && dataset != "mnist" && dataset != "cifar100")
    usage("--dataset expects cifar10, mnist or cifar100, got '" + dataset + "'");
  const data::Normalize norm = dataset == "mnist"      ? data::Normalize::mnist()
                               : dataset == "cifar100" ? data::Normalize::cifar100()
                                                       : data::Normalize::cifar10();

  try {
    const data::DataLocation loc = data::find_dataset(dataset, data_dir);
    std::printf("data: %s\nthreads: %d\n", loc.description.c_str(), max_threads());

    auto t0 = std::chrono::steady_clock::now();
    const data::Dataset train = data::load_dataset(loc, data::Split::Train);
    const double t_train = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    const data::Dataset test = data::load_dataset(loc, data::Split::Test);
    const double t_test = seconds_since(t0);
    const auto n = static_cast<double>(train.size() + test.size());
    std::printf("load train: %lld images in %.3f s\nload test:  %lld images in %.3f s\n",
                static_cast<long long>(train.size()), t_train, static_cast<long long>(test.size()), t_test);
    std::printf("load train+test (%s): %.3f s = %.0f images/s\n", data::format_name(loc.format),
                t_train + t_test, n / (t_train + t_test));

    if (bin && dataset == "cifar10") {
      const auto dir = std::filesystem::temp_directory_path() /
                       ("lowbit_bench_data_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
      std::filesystem::create_directories(dir);
      write_binary(train, dir, data::Split::Train);
      write_binary(test, dir, data::Split::Test);
      t0 = std::chrono::steady_clock::now();
      const data::Dataset tr2 = data::load_cifar10_binary(dir.string(), data::Split::Train);
      const data::Dataset te2 = data::load_cifar10_binary(dir.string(), data::Split::Test);
      const double t_bin = seconds_since(t0);
      const bool same = tr2.images == train.images && tr2.labels == train.labels &&
                        te2.images == test.images && te2.labels == test.labels;
      std::printf("binary format read train+test (from a temp copy, page cache warm): %.3f s = %.0f images/s%s\n",
                  t_bin, n / t_bin, same ? "" : "  [MISMATCH]");
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
    }

    bench_loader(train, norm, batch, epochs, true);
    bench_loader(train, norm, batch, epochs, false);
  } catch (const lowbit::Error& e) {  // bad input (a missing data folder, a corrupt file): exit 2
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_data: %s\n", e.what());
    return 1;
  }
  return 0;
}
