// Kernel benchmark: wall time and GFLOP/s of the raw kernels on the layer shapes of the nets
// we train (CIFAR ResNet-20 and VGG-Small, 32x32 inputs).
//
//   bench_kernels [--threads N] [--quick] [--json] [--reps R] [--filter SUBSTR]
//
//   --threads N   OpenMP threads (default: all cores)
//   --quick       batch 32 and 3 reps instead of batch 128 and 5
//   --json        also print one JSON object per row (prefixed by nothing, one per line)
//   --filter S    only rows whose "group/name/pass" contains S
//
// Each row is a closure timed as the median of R runs after one warm-up run. To add rows
// (batch norm, softmax-CE, ...), append Row{...} entries in main() — see add_conv_rows().
#include <lowbit/lowbit.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using lowbit::kernels::ConvShape;

struct Row {
  std::string group;  // e.g. "resnet20", "vgg_small"
  std::string name;   // layer description
  std::string pass;   // "fwd", "bwd_input", "bwd_weight", ...
  double flops;       // useful floating-point operations per call (0: report ms only)
  std::function<void()> run;
};

struct Options {
  int threads = 0;
  bool quick = false, json = false;
  int reps = 0;
  std::string filter;
};

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

struct Timing {
  double ms;      // median wall time
  double cpu_ms;  // median process CPU time (all threads): robust to other load on a shared box
};

Timing median_ms(const std::function<void()>& f, int reps) {
  f();  // warm-up: page-faults buffers in, grows per-thread scratch
  std::vector<double> t, c;
  for (int r = 0; r < reps; ++r) {
    const double c0 = cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    c.push_back((cpu_seconds() - c0) * 1e3);
    t.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(t.begin(), t.end());
  std::sort(c.begin(), c.end());
  return {t[t.size() / 2], c[c.size() / 2]};
}

std::vector<float> random_buffer(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& e : v) e = d(rng);
  return v;
}

// Buffers for one conv layer, shared by its three rows (kept alive by the closures).
struct ConvBuffers {
  ConvShape s;
  std::vector<float> x, w, b, y, dy, dx, dw, db;
  explicit ConvBuffers(const ConvShape& sh) : s(sh) {
    const int64_t xs = s.N * s.C * s.H * s.W, ws = s.O * s.C * s.KH * s.KW;
    const int64_t ys = s.N * s.O * s.OH() * s.OW();
    x = random_buffer(xs, 1);
    w = random_buffer(ws, 2);
    b = random_buffer(s.O, 3);
    dy = random_buffer(ys, 4);
    y.assign(ys, 0.f);
    dx.assign(xs, 0.f);
    dw.assign(ws, 0.f);
    db.assign(s.O, 0.f);
  }
};

ConvShape conv(int64_t N, int64_t C, int64_t HW, int64_t O, int64_t k, int64_t stride, int64_t pad) {
  ConvShape s{N, C, HW, HW, O, k, k};
  s.SH = s.SW = stride;
  s.PH = s.PW = pad;
  return s;
}

void add_conv_rows(std::vector<Row>& rows, const std::string& group, const ConvShape& s) {
  auto buf = std::make_shared<ConvBuffers>(s);
  char name[96];
  std::snprintf(name, sizeof name, "%lld->%lld %lldx%lld s%lld @%lld", (long long)s.C, (long long)s.O,
                (long long)s.KH, (long long)s.KW, (long long)s.SH, (long long)s.H);
  const double flops = 2.0 * s.N * s.O * s.C * s.KH * s.KW * s.OH() * s.OW();
  namespace k = lowbit::kernels;
  rows.push_back({group, name, "fwd", flops, [buf] {
                    k::conv2d_forward(buf->s, buf->x.data(), buf->w.data(), buf->b.data(), buf->y.data());
                  }});
  rows.push_back({group, name, "bwd_input", flops, [buf] {
                    k::conv2d_backward_input(buf->s, buf->dy.data(), buf->w.data(), buf->dx.data());
                  }});
  rows.push_back({group, name, "bwd_weight", flops, [buf] {
                    k::conv2d_backward_weight(buf->s, buf->x.data(), buf->dy.data(), buf->dw.data(),
                                              buf->db.data());
                  }});
  // The integer forward of SLB's discrete pass (4-bit activation codes x 4-bit weights,
  // kernels/conv_int8.hpp), where this build has it; its "GFLOP/s" counts integer multiply-adds
  // as 2 operations, like the float rows.
  if (k::int8_conv_supported(s, 15)) {
    auto wb = std::make_shared<std::vector<int8_t>>(buf->w.size());
    for (size_t i = 0; i < wb->size(); ++i) (*wb)[i] = static_cast<int8_t>(2 * static_cast<int>(i % 16) - 15);
    rows.push_back({group, name, "fwd_int8", flops, [buf, wb] {
                      k::conv2d_forward_int8(buf->s, buf->x.data(), 15, wb->data(), 1.0f / 15, buf->b.data(),
                                             buf->y.data());
                    }});
  }
}

// The 1-bit x 1-bit forward of the same shape (kernels/binary_conv.hpp; DoReFa's {0,1}
// activations, weights +-1): "fwd_binary" from activations already packed (as the previous
// binary layer would leave them; the best tile built: AVX-512 VPOPCNTQ, else AVX2),
// "fwd_binary_avx2" the AVX2 tile where the best is another, "fwd_binary_scalar" the
// portable scalar-popcount tile, "fwd_binary_pack" with the packing of the float input
// included. Its "GFLOP/s" counts each binary multiply-add as 2 operations, like the float
// rows, so the ratio to "fwd" is the speedup on the layer.
void add_binary_rows(std::vector<Row>& rows, const std::string& group, const ConvShape& s) {
  namespace k = lowbit::kernels;
  auto buf = std::make_shared<ConvBuffers>(s);
  struct Packed {
    k::BinaryActivations x;
    k::BinaryWeights w;
    std::vector<int32_t> y;
  };
  auto p = std::make_shared<Packed>();
  k::pack_binary_activations(s, buf->x.data(), p->x);
  p->w = k::pack_binary_weights(s, buf->w.data());
  p->y.resize(static_cast<size_t>(s.N * s.O * s.OH() * s.OW()));
  char name[96];
  std::snprintf(name, sizeof name, "%lld->%lld %lldx%lld s%lld @%lld", (long long)s.C, (long long)s.O,
                (long long)s.KH, (long long)s.KW, (long long)s.SH, (long long)s.H);
  const double flops = 2.0 * s.N * s.O * s.C * s.KH * s.KW * s.OH() * s.OW();
  rows.push_back({group, name, "fwd_binary", flops,
                  [buf, p] { k::binary_conv2d_forward(buf->s, p->x, p->w, k::BinaryActs::ZeroOne, p->y.data()); }});
  const std::vector<k::BinaryKernel> built = k::binary_kernels_built();
  for (size_t i = 1; i < built.size(); ++i) {  // the slower tiles, for comparison
    const k::BinaryKernel kernel = built[i];
    const std::string op = kernel == k::BinaryKernel::Portable ? "fwd_binary_scalar"
                                                               : std::string("fwd_binary_") + k::binary_kernel_name(kernel);
    rows.push_back({group, name, op, flops, [buf, p, kernel] {
                      k::binary_conv2d_forward(buf->s, p->x, p->w, k::BinaryActs::ZeroOne, p->y.data(), kernel);
                    }});
  }
  rows.push_back({group, name, "fwd_binary_pack", flops, [buf, p] {
                    k::pack_binary_activations(buf->s, buf->x.data(), p->x);
                    k::binary_conv2d_forward(buf->s, p->x, p->w, k::BinaryActs::ZeroOne, p->y.data());
                  }});
}

// Batch-norm with fused ReLU on an activation [N, C, HW]: forward (statistics + apply) and
// backward (ReLU mask + BN gradient), the two passes a training step runs per BN layer.
void add_bn_rows(std::vector<Row>& rows, const std::string& group, int64_t N, int64_t C, int64_t HW) {
  struct Buf {
    lowbit::kernels::BnShape s;
    std::vector<float> x, y, dy, dx, mean, var, istd, gamma, beta, dg, db;
  };
  auto b = std::make_shared<Buf>();
  b->s = {N, C, HW * HW};
  const size_t n = static_cast<size_t>(N * C * HW * HW);
  lowbit::Generator g(3);
  b->x.resize(n), b->y.resize(n), b->dy.resize(n), b->dx.resize(n);
  for (size_t i = 0; i < n; ++i) b->x[i] = static_cast<float>(g.normal()), b->dy[i] = static_cast<float>(g.normal());
  b->mean.assign(C, 0.f), b->var.assign(C, 1.f), b->istd.assign(C, 1.f), b->gamma.assign(C, 1.f);
  b->beta.assign(C, 0.f), b->dg.assign(C, 0.f), b->db.assign(C, 0.f);
  char name[96];
  std::snprintf(name, sizeof name, "bn+relu %lldx%lld @%lld", (long long)N, (long long)C, (long long)HW);
  namespace k = lowbit::kernels;
  rows.push_back({group, name, "fwd", 0.0, [b] {
                    k::bn_stats(b->s, b->x.data(), b->mean.data(), b->var.data());
                    for (int64_t c = 0; c < b->s.C; ++c) b->istd[c] = 1.0f / std::sqrt(b->var[c] + 1e-5f);
                    k::bn_apply(b->s, b->x.data(), b->mean.data(), b->istd.data(), b->gamma.data(), b->beta.data(),
                                b->y.data(), true);
                  }});
  rows.push_back({group, name, "bwd", 0.0, [b] {
                    k::bn_backward(b->s, b->x.data(), b->dy.data(), b->mean.data(), b->istd.data(), b->gamma.data(),
                                   true, b->dx.data(), b->dg.data(), b->db.data(), b->y.data());
                  }});
}

// Softmax cross-entropy over [N, 10] logits, forward and fused backward (the op, with autograd).
void add_softmax_ce_rows(std::vector<Row>& rows, int64_t N) {
  lowbit::Generator g(4);
  auto logits = std::make_shared<lowbit::Tensor<float>>(lowbit::Tensor<float>::randn({N, 10}, g));
  auto labels = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(N));
  for (auto& l : *labels) l = static_cast<int64_t>(g.randint(10));
  char name[96];
  std::snprintf(name, sizeof name, "softmax-CE %lldx10", (long long)N);
  rows.push_back({"both", name, "fwd+bwd", 0.0, [logits, labels] {
                    auto z = logits->detach().set_requires_grad();
                    lowbit::cross_entropy(z, *labels).backward();
                  }});
}

// A flag's whole-number value >= lo, or one line naming the flag and exit 2 (atoi read "x" as 0).
int parse_int(const std::string& flag, const char* v, int lo) {
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  if (!*v || *end || errno || x < lo || x > 100000) {
    std::fprintf(stderr, "bench_kernels: %s expects a whole number >= %d, got '%s'\n", flag.c_str(), lo, v);
    std::exit(2);
  }
  return static_cast<int>(x);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) o.threads = parse_int(a, argv[++i], 1);
    else if (a == "--reps" && i + 1 < argc) o.reps = parse_int(a, argv[++i], 1);
    else if (a == "--filter" && i + 1 < argc) o.filter = argv[++i];
    else if (a == "--quick") o.quick = true;
    else if (a == "--json") o.json = true;
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--quick] [--json] [--reps R] [--filter S]\n", argv[0]);
      std::exit(a == "--help" || a == "-h" ? 0 : 2);
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (opt.threads > 0) lowbit::set_num_threads(opt.threads);
  const int threads = lowbit::max_threads();
  const int64_t N = opt.quick ? 32 : 128;
  const int reps = opt.reps > 0 ? opt.reps : (opt.quick ? 3 : 5);

  std::vector<Row> rows;
  // ResNet-20 (He et al. 2016, CIFAR): 3x3 pad 1 everywhere; option-B shortcuts are 1x1/2.
  add_conv_rows(rows, "resnet20", conv(N, 3, 32, 16, 3, 1, 1));
  add_conv_rows(rows, "resnet20", conv(N, 16, 32, 16, 3, 1, 1));
  add_conv_rows(rows, "resnet20", conv(N, 16, 32, 32, 3, 2, 1));
  add_conv_rows(rows, "resnet20", conv(N, 32, 16, 32, 3, 1, 1));
  add_conv_rows(rows, "resnet20", conv(N, 32, 16, 64, 3, 2, 1));
  add_conv_rows(rows, "resnet20", conv(N, 64, 8, 64, 3, 1, 1));
  add_conv_rows(rows, "resnet20", conv(N, 16, 32, 32, 1, 2, 0));
  add_conv_rows(rows, "resnet20", conv(N, 32, 16, 64, 1, 2, 0));
  // VGG-Small: 3x3 pad 1 stride 1.
  add_conv_rows(rows, "vgg_small", conv(N, 3, 32, 128, 3, 1, 1));
  add_conv_rows(rows, "vgg_small", conv(N, 128, 32, 128, 3, 1, 1));
  add_conv_rows(rows, "vgg_small", conv(N, 128, 16, 256, 3, 1, 1));
  add_conv_rows(rows, "vgg_small", conv(N, 256, 16, 256, 3, 1, 1));
  add_conv_rows(rows, "vgg_small", conv(N, 256, 8, 512, 3, 1, 1));
  add_conv_rows(rows, "vgg_small", conv(N, 512, 8, 512, 3, 1, 1));
  // The binary forward on the layers a 1/1 network binarizes (all but the first).
  for (const ConvShape& s : {conv(N, 16, 32, 16, 3, 1, 1), conv(N, 16, 32, 32, 3, 2, 1), conv(N, 32, 16, 32, 3, 1, 1),
                             conv(N, 32, 16, 64, 3, 2, 1), conv(N, 64, 8, 64, 3, 1, 1)})
    add_binary_rows(rows, "resnet20", s);
  for (const ConvShape& s : {conv(N, 128, 32, 128, 3, 1, 1), conv(N, 128, 16, 256, 3, 1, 1), conv(N, 256, 16, 256, 3, 1, 1),
                             conv(N, 256, 8, 512, 3, 1, 1), conv(N, 512, 8, 512, 3, 1, 1)})
    add_binary_rows(rows, "vgg_small", s);
  // Batch-norm (fused ReLU) at the widest activation of each model, and the loss.
  add_bn_rows(rows, "resnet20", N, 16, 32);
  add_bn_rows(rows, "vgg_small", N, 128, 16);
  add_softmax_ce_rows(rows, N);

  std::printf("lowbit kernel benchmark: batch %lld, %d thread(s), median of %d after 1 warm-up\n",
              (long long)N, threads, reps);
#if defined(LOWBIT_HAVE_AVX2_FMA) && defined(__AVX512F__)
  std::printf("float conv path: AVX-512 (implicit GEMM 8x48 / 8-pixel x 32-channel for 8-wide outputs: stride 1 padded grid, strided phase grid)\n");
#elif defined(LOWBIT_HAVE_AVX2_FMA)
  std::printf("float conv path: AVX2+FMA (implicit GEMM 4x24: stride 1 padded grid, strided phase grid)\n");
#else
  std::printf("float conv path: portable im2col + Eigen (built without AVX2/FMA)\n");
#endif
  // GF/core-s divides by CPU time instead of wall time: per-core throughput while actually
  // running, which other processes on a shared machine distort much less than wall time (but
  // it also hides time threads spend waiting at barriers).
  std::printf("%-10s %-22s %-11s %10s %9s %10s\n", "group", "layer", "pass", "ms", "GFLOP/s", "GF/core-s");
  for (const Row& r : rows) {
    const std::string key = r.group + "/" + r.name + "/" + r.pass;
    if (!opt.filter.empty() && key.find(opt.filter) == std::string::npos) continue;
    const Timing tm = median_ms(r.run, reps);
    const double ms = tm.ms;
    const double gf = r.flops > 0 ? r.flops / (ms * 1e6) : 0.0;
    const double gf_core = r.flops > 0 ? r.flops / (tm.cpu_ms * 1e6) : 0.0;
    std::printf("%-10s %-22s %-11s %10.3f %9.1f %10.1f\n", r.group.c_str(), r.name.c_str(), r.pass.c_str(), ms,
                gf, gf_core);
    if (opt.json)
      std::printf("{\"bench\":\"kernels\",\"group\":\"%s\",\"layer\":\"%s\",\"pass\":\"%s\",\"batch\":%lld,"
                  "\"threads\":%d,\"ms\":%.4f,\"gflops\":%.2f,\"cpu_ms\":%.4f,\"gflops_per_core\":%.2f}\n",
                  r.group.c_str(), r.name.c_str(), r.pass.c_str(), (long long)N, threads, ms, gf, tm.cpu_ms,
                  gf_core);
    std::fflush(stdout);
  }
  return 0;
}
