// Everything of lowbit's quantization layer: the framework (quantizers, layers, spec,
// registry, factory, parameter groups, init-from, summary, export) and every built-in
// method, each in its own folder ending in a descriptor that registers it
// (quant/<method>/method.hpp). Including this header is what makes the methods known to the
// registry (quant/registry.hpp).
#pragma once
// The framework: names no method.
#include "binary_weights.hpp"
#include "codes.hpp"
#include "export.hpp"
#include "factory.hpp"
#include "init_from.hpp"
#include "integer_conv.hpp"
#include "layers.hpp"
#include "method.hpp"
#include "param_groups.hpp"
#include "quantizer.hpp"
#include "registry.hpp"
#include "requant_conv.hpp"
#include "spec.hpp"
#include "summary.hpp"
// The methods.
#include "alq/method.hpp"
#include "apot/method.hpp"
#include "fp32/method.hpp"
#include "slb/method.hpp"
#include "ste/method.hpp"
