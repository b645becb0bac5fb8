// Quantization: the framework (codes, quantizer interfaces, quantized layers, spec ->
// LayerFactory, summary, export) and the STE baselines (DoReFa, BWN, PACT).
// docs/quantization.md explains all of it.
#pragma once
#include "alq.hpp"
#include "alq_act.hpp"
#include "bwn.hpp"
#include "codes.hpp"
#include "dorefa.hpp"
#include "export.hpp"
#include "layers.hpp"
#include "method.hpp"
#include "pact.hpp"
#include "quantizer.hpp"
#include "spec.hpp"
#include "summary.hpp"
