// Quantization: the framework (codes, quantizer interfaces, quantized layers, spec ->
// LayerFactory, summary, export), the STE baselines (DoReFa, BWN, PACT), SLB, APoT and ALQ.
// docs/quantization.md explains all of it.
#pragma once
#include "alq.hpp"
#include "alq_act.hpp"
#include "apot.hpp"  // with apot_levels.hpp; apot_hooks.hpp comes through spec.hpp
#include "bwn.hpp"
#include "codes.hpp"
#include "dorefa.hpp"
#include "export.hpp"
#include "integer_conv.hpp"
#include "layers.hpp"
#include "method.hpp"
#include "pact.hpp"
#include "quantizer.hpp"
#include "requant_conv.hpp"
#include "slb.hpp"  // SLB (issue 6); slb_hooks.hpp comes through spec.hpp
#include "spec.hpp"
#include "summary.hpp"
