"""SLB and ALQ in PyTorch, written the way their authors' code writes them, for
benchmarks/pytorch_quant_train.py (issue 35: quantized training speed against lowbit).

Each method computes the same forward as lowbit on the same weights (the module, parameter
and buffer names are lowbit's, so lowbit's `bench_train --dump-forward` state dict loads
into the PyTorch model) and does the same work per training step:

SLB (Yang et al., NeurIPS 2020; lowbit include/lowbit/quant/slb/*.hpp, docs/slb.md). There is
no public PyTorch code; the style is Huawei's MindSpore port (golden-stick, method notes §3).
  weight    `latent` A [2^b, *weight shape] (lowbit's layout: the value axis first).
            training  W_c = sum_i softmax_i(A T) v_i              (Eqs. 5-6, T = 1/tau)
                      plain autograd through torch.softmax, no STE;
            eval, and state BN's discrete pass   W_q = v_argmax A  (Eq. 7).
  step      begin_step: T from lowbit's schedule (quant/slb/schedule.hpp) at the step; with
            state BN (slb.sbn, on by default) the continuous BN statistics are swapped into
            the BN buffers for the training forward (Alg. 1 line 4). end_step (after the
            optimizer step): the continuous statistics are kept, the discrete ones put back
            and updated by a no-grad forward of the whole network with W_q in training mode
            (Alg. 1 line 5, Eq. 14; lowbit quant/slb/sbn.hpp).
  acts      DoReFa k-bit (DoReFa-Net Eq. 11) or PACT (slb.a_quant), lowbit's quant/ste.
  optimizer the trainer's (SGD; A is decayed like any rank >= 2 parameter); PACT's alphas in
            their own group with slb.pact_weight_decay, as lowbit's ste::pact_group.

ALQ (Qu et al., CVPR 2020; lowbit include/lowbit/quant/alq/*.hpp, docs/alq.md; the authors'
zqu1992/ALQ binarynet.py / myoptimizer.py, method notes §2).
  weight    per-group binary bases and coordinates, w_hat_g = sum_i alpha_gi beta_gi (Eq. 2).
            lowbit's state: parameter `w_hat` (what the layer convolves), buffers `alpha`
            [G, I_max], `mask` [G, I_max], `signs` (weight-shaped integer codes, bit s = sign
            of basis s) and `w_fp` (the float copy of the STE phase). Groups: first conv
            channel-wise, other convs pixel-wise, linear sub-channel-wise (alq.*_grouping).
  step      the trainer's forward and backward give dL/dw_hat; AlqOptimizer.step then runs,
            per quantized layer, the authors' ALQ_optimizer.step in the phase of the epoch
            (lowbit alq/pipeline.hpp plan_epoch):
              AMSGrad moments in the w-domain, pseudo-gradient g = lr m_hat and pseudo-Hessian
              H = (sqrt(v_max) + eps) / sqrt(1 - b2^t)  (Eqs. 8-10);
              basis       target w* = w_hat - g / H (Eq. 19), every weight takes the nearest
                          of the 2^I sign patterns from a look-up table (Eqs. 17-20), then the
                          "speedup" alpha = (B H B^T + ridge)^-1 B H w* (Eqs. 22-23);
              coordinate  alpha-domain moments from g_alpha = B g_w (Eq. 14), alpha -= g/H
                          (Eq. 21);
              prune       alpha-domain moments, no step; the smallest increments
                          -g alpha + H alpha^2 / 2 are removed (Eqs. 11-15);
              ste         w_fp -= g/H, bases and coordinates refitted to w_fp as in basis
                          (the authors' Alg. 6);
              negative coordinates flipped with their bases, w_hat rebuilt, and after a
              basis / STE step the alpha-domain moments re-derived from the w-domain ones
              (alq.alpha_moments = derived, the authors' rule).
            Every other parameter (BN) by torch.optim.Adam at the pipeline's lr, no decay.
  acts      a_bits < 32: lowbit's alq/activation.hpp, {-1,+1} bases around a reference
            x_ref (paper Eqs. 24-26; not in the authors' code).

Where lowbit and the authors' code differ, this file follows lowbit's math, so that both sides
compute the same thing and do the same work (marked "lowbit:" in the comments):
  SLB  the temperature is lowbit's per-step schedule (default exp, the paper's), not the
       MindSpore port's per-epoch rule with its switch to one-hot weights; state BN is the
       paper's two statistics sets (one extra no-grad W_q forward per step), not the authors'
       per-epoch BN calibration (slb.calibrate_batches, an end-of-epoch hook, is not part of a
       step and not implemented here); activations are lowbit's DoReFa / PACT, not the port's
       learned-bound floor quantizer; A is [m, *S] (the port: [*S, m]).
  ALQ  negative coordinates are flipped in coordinate steps too (the authors flip only after
       basis / STE steps); the speedup's normal equations are solved in double (the authors:
       float32 torch.inverse); a group whose next sketched basis is linearly dependent stops
       there; pruning follows alq.prune_rule (default the paper's rule counted in bits; the
       authors' rule without their ranking bug, with Python's RNG instead of lowbit's) and
       runs in training mode; v_alpha = sum_group v_w is written as that sum (the authors
       form diag(B diag(v) B^T)); the nearest pattern of the basis search is found as lowbit
       does, in the sorted table of the 2^I pattern values by binary search (torch.searchsorted;
       the authors' exhaustive argmin over the table, ALQ_BASIS_SEARCH=lut, picks the same
       patterns but does 2^I distances per weight, 5-8x slower on CPU). Kept as the authors
       write it: B as a dense [G, I, n] +-1/0 tensor for the batched matmuls (looked up from
       lowbit's codes once per step; lowbit reads the codes in its loops).
  ALQ activations have no authors' code; lowbit's quantizer is written with torch.bucketize
       (nearest level) and torch.bincount (the per-level sums of Eq. 25), several passes over
       the activation where lowbit's kernel makes one.
"""
import math
import os
import random
import weakref

import torch
import torch.nn as nn

from pytorch_quant_train import Method, move_params


# ======================================================================================
# Activation quantizers with a straight-through estimator (lowbit quant/ste/dorefa.hpp and
# pact.hpp). Custom autograd functions, as the APoT / PACT PyTorch code writes them, so the
# forward value is exactly the quantized one.
# ======================================================================================

class _DoReFaActivationFn(torch.autograd.Function):
    """y = round(n clip(x, 0, 1)) / n (DoReFa-Net Eq. 11); dy/dx = 1 on [0, 1], 0 outside."""

    @staticmethod
    def forward(ctx, x, n):
        ctx.save_for_backward(x)
        return torch.round(x.clamp(0.0, 1.0) * n) / n  # torch.round: half to even, as std::rint

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x >= 0) & (x <= 1)), None


class _PactFn(torch.autograd.Function):
    """PACT (Choi et al. 2018) Eqs. 1-3: y = round(clip(x, 0, a) / s) s, s = a / n.
    dy/dx = 1 for 0 <= x < a; dy/da = 1 for x >= a (STE through the rounding)."""

    @staticmethod
    def forward(ctx, x, alpha, n):
        a = float(alpha)
        if not a > 0:
            raise ValueError("PACT alpha = %g, expected > 0" % a)
        ctx.save_for_backward(x, alpha)
        s = alpha / n
        return torch.round(x.clamp(0.0, a) / s) * s

    @staticmethod
    def backward(ctx, g):
        x, alpha = ctx.saved_tensors
        above = x >= alpha
        gx = g * ((x >= 0) & ~above)
        galpha = g[above].sum().reshape(alpha.shape)
        return gx, galpha, None


class DoReFaActivation(nn.Module):
    """lowbit's DoReFaActivation (quant/ste/dorefa.hpp); no parameters."""

    def __init__(self, bits):
        super().__init__()
        self.bits, self.n = bits, float((1 << bits) - 1)

    def forward(self, x):
        return _DoReFaActivationFn.apply(x, self.n)


class PactActivation(nn.Module):
    """lowbit's PactActivation (quant/ste/pact.hpp): parameter `alpha` [1]."""

    def __init__(self, bits, alpha_init=10.0):
        super().__init__()
        self.bits, self.n = bits, float((1 << bits) - 1)
        self.alpha = nn.Parameter(torch.full((1,), float(alpha_init)))

    def forward(self, x):
        return _PactFn.apply(x, self.alpha, self.n)


def make_ste_activation(bits, opts):
    """lowbit ste::make_activation: a_quant = dorefa | pact (options of the method's block)."""
    if opts.get("a_quant", "dorefa") == "pact":
        return PactActivation(bits, opts.get("pact_alpha", 10.0))
    return DoReFaActivation(bits)


def pact_param_groups(model, opts, base_groups):
    """lowbit ste::pact_group: PACT's alphas in their own group with pact_weight_decay."""
    alphas = {id(m.alpha) for m in model.modules() if isinstance(m, PactActivation)}
    if not alphas:
        return base_groups
    return move_params(base_groups, lambda name, p: id(p) in alphas,
                       weight_decay=float(opts["pact_weight_decay"]), lr_scale=1.0)


# ======================================================================================
# SLB
# ======================================================================================

def slb_values(bits):
    """V = {v_i = -1 + 2 i / (m - 1)}, m = 2^bits (SLB Sec. 4; lowbit slb_values: computed in
    double, rounded once to float, as lowbit does; MindSpore: linspace(-1, 1, 2^b))."""
    m = 1 << bits
    return torch.tensor([-1.0 + 2.0 * i / (m - 1) for i in range(m)], dtype=torch.float32)


def slb_temperature(opts, step, total_steps, steps_per_epoch):
    """T = 1/tau for the 0-based `step` (lowbit quant/slb/schedule.hpp; Alg. 1 updates it at
    the start of iteration i = step + 1, so the last step trains at exactly T_e)."""
    kind, ts, te = opts["schedule"], float(opts["t_start"]), float(opts["t_end"])
    i, I = step + 1, total_steps
    if kind == "linear":
        return ts + i / I * (te - ts)
    if kind == "sin":
        return ts + math.sin(i * math.pi / (2.0 * I)) * (te - ts)
    if kind == "sgdr":  # exp restarted `periods` times
        periods = int(opts["periods"])
        length = I / periods
        p = max(0, min(int(math.ceil(i / length)) - 1, periods - 1))
        return ts * (te / ts) ** ((i - p * length) / length)
    if kind == "geometric":  # the MindSpore port's per-epoch rule (method notes §3.3)
        epochs = (total_steps + steps_per_epoch - 1) // steps_per_epoch
        e = step // steps_per_epoch + 1
        es, ee = int(epochs * float(opts["geo_start"])), int(epochs * float(opts["geo_end"]))
        return ts * float(opts["geo_factor"]) ** (min(e, ee) - es) if e > es else ts
    return ts * (te / ts) ** (i / I)  # exp, the paper's choice (Sec. 4.1)


class SlbWeight(nn.Module):
    """SLB's weight: logits A (`latent`, [m, *S]) over the m = 2^bits values of V.

    training: W_c = sum_i softmax(A T)_i v_i (Eqs. 5-6), exact autograd;
    eval or discrete mode (state BN's pass): W_q = v_argmax A (Eq. 7), no gradient.
    MindSpore's SlbFakeQuantizerPerLayer keeps A as [*S, m] and takes the softmax over the last
    axis; here A keeps lowbit's layout so lowbit's state dict loads, and the softmax runs over
    axis 0.
    """

    def __init__(self, init, bits, how="kaiming"):
        super().__init__()
        shape = tuple(init.shape)
        m = 1 << bits
        self.bits = bits
        v = slb_values(bits)
        self.register_buffer("v", v.view((m,) + (1,) * len(shape)), persistent=False)
        self.register_buffer("v_flat", v, persistent=False)
        if how == "weight":
            # lowbit SlbWeight::init_from_weight: A_i = -((w / max|w| - v_i) / s)^2, s = 2/(m-1)
            w = init.double()
            mx = w.abs().max().item()
            wn = w * (1.0 / mx if mx > 0 else 0.0)
            d = (wn.unsqueeze(0) - v.double().view((m,) + (1,) * len(shape))) / (2.0 / (m - 1))
            A = (-d * d).float()
        else:
            # "A is initialized by kaiming initialization" (Sec. 4.1): N(0, 2 / fan_in) with the
            # float weight's fan_in, as lowbit (it draws from its own generator, so the values
            # differ; the forward check loads lowbit's).
            fan_in = init.numel() // shape[0]
            A = torch.randn((m,) + shape) * math.sqrt(2.0 / fan_in)
        self.latent = nn.Parameter(A)
        self.inv_tau = 1.0  # T = 1/tau, set by SlbMethod.begin_step
        self.discrete = False

    def forward(self):
        if self.training and not self.discrete:
            p = torch.softmax(self.latent * self.inv_tau, dim=0)  # Eq. 5
            return (p * self.v).sum(0)                              # Eq. 6
        return self.v_flat[self.latent.argmax(dim=0)]               # Eq. 7 (ties: lowest index)


def _batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class SlbMethod(Method):
    """SLB: temperature per step, state batch-norm, DoReFa / PACT activations."""

    def __init__(self):
        # per model: the continuous BN statistics and the discrete ones held during a step
        self._sbn = weakref.WeakKeyDictionary()

    def make_weight(self, init, bits, role, cfg):
        return SlbWeight(init, bits, cfg["slb"].get("init", "kaiming"))

    def make_activation(self, bits, role, cfg):
        return None if bits >= 32 else make_ste_activation(bits, cfg["slb"])

    def param_groups(self, model, cfg, base_groups):
        return pact_param_groups(model, cfg["slb"], base_groups)

    @torch.no_grad()
    def begin_step(self, model, ctx, cfg):
        opts = cfg["slb"]
        T = slb_temperature(opts, ctx["step"], ctx["total_steps"], ctx["steps_per_epoch"])
        tau = 1.0 / T
        for m in model.modules():  # Algorithm 1, line 2
            if isinstance(m, SlbWeight):
                m.inv_tau = 1.0 / tau
        if opts.get("sbn", True):
            # lowbit StateBatchNorm::begin_step: the continuous set (Eq. 13) goes into the BN
            # buffers for the training forward; the discrete set is held.
            bns = _batch_norms(model)
            st = self._sbn.setdefault(model, {"cont": None, "held": None})
            if st["cont"] is None:  # first step: both sets start from the layers' values
                st["cont"] = [(b.running_mean.clone(), b.running_var.clone()) for b in bns]
            if st["held"] is None:
                st["held"] = [(b.running_mean.clone(), b.running_var.clone()) for b in bns]
                for b, (mean, var) in zip(bns, st["cont"]):
                    b.running_mean.copy_(mean)
                    b.running_var.copy_(var)

    @torch.no_grad()
    def end_step(self, model, x, ctx, cfg):
        if not cfg["slb"].get("sbn", True):
            return
        # lowbit StateBatchNorm::end_step: keep the updated continuous statistics, put the
        # discrete ones back ...
        bns = _batch_norms(model)
        st = self._sbn[model]
        for b, (cm, cv), (hm, hv) in zip(bns, st["cont"], st["held"]):
            cm.copy_(b.running_mean)
            cv.copy_(b.running_var)
            b.running_mean.copy_(hm)
            b.running_var.copy_(hv)
        st["held"] = None
        # ... and update them with a no-grad forward of the discrete network (W_q) in training
        # mode, so every BN normalises with and records the statistics of y_q (Eq. 14).
        # lowbit runs this pass's convs on integer codes where it can (slb.integer_pass); this
        # side uses the float conv.
        weights = [m for m in model.modules() if isinstance(m, SlbWeight)]
        was_training = model.training
        try:
            for w in weights:
                w.discrete = True
            model.train()
            model(x)
        finally:
            for w in weights:
                w.discrete = False
            model.train(was_training)


# ======================================================================================
# ALQ
# ======================================================================================

RIDGE = 1e-6             # lambda of Eq. 23 (the authors' speedup: 1e-6 on the diagonal)
SKETCH_TOLERANCE = 1e-6  # REL_NORM_THRES of binarynet.transform_bin_basis
LUT_CHUNK = 1 << 25      # elements of |w* - table alpha| evaluated at once (ALQ_BASIS_SEARCH=lut)
BASIS_SEARCH = os.environ.get("ALQ_BASIS_SEARCH", "sorted")  # sorted (lowbit's) | lut (the authors')
if BASIS_SEARCH not in ("sorted", "lut"):
    raise ValueError("ALQ_BASIS_SEARCH = %r: expected sorted or lut" % BASIS_SEARCH)


def construct_bit_table(bits):
    """The authors' look-up table of all 2^bits sign patterns (binarynet.construct_bit_table):
    row p has +1 in column s where bit s of p is set, else -1. Float, [2^bits, bits]."""
    p = torch.arange(1 << bits).unsqueeze(1)
    return ((p >> torch.arange(bits)) & 1).float() * 2 - 1


def alq_layout(shape, grouping, fc_group_size):
    """(n, k, G): group size, interleave and group count of lowbit alq::make_layout. Group g
    holds the elements (g // k) * n k + j k + g % k, j < n."""
    N = 1
    for s in shape:
        N *= s
    if len(shape) == 4:
        C, kk = shape[1], shape[2] * shape[3]
        n, k = {"channel": (C * kk, 1), "pixel": (C, kk), "kernel": (kk, 1)}[grouping]
    elif len(shape) == 2:
        I = shape[1]
        if grouping == "channel":
            n, k = I, 1
        else:  # subchannel: the largest divisor of I not above fc_group_size
            n, k = min(I, int(fc_group_size)), 1
            while I % n:
                n -= 1
    else:
        raise ValueError("alq: weight shape %s is neither conv nor linear" % (shape,))
    return n, k, N // n


def sketch(wg, max_bases):
    """Structured sketching (ALQ Sec. 5.1; binarynet.transform_bin_basis) of every group at
    once. wg: [G, n] float64. Greedy residual signs (sign(0) = +1), all coordinates so far
    re-solved by least squares after each new basis; a group stops when ||r||^2 / ||w||^2 <
    1e-6 or (lowbit) when the new basis is linearly dependent on the others. Then negative
    coordinates are flipped with their bases, zero ones dropped and the bases sorted by
    ascending coordinate. Returns B [G, I, n] (+-1, 0 on empty slots) and alpha [G, I]."""
    G, n = wg.shape
    I = max_bases
    B = torch.zeros(G, I, n, dtype=torch.float64)
    alpha = torch.zeros(G, I, dtype=torch.float64)
    ww = (wg * wg).sum(1)
    live = ww > 0
    r = wg.clone()
    eye = torch.eye(I, dtype=torch.float64)
    for i in range(I):
        live &= (r * r).sum(1) / torch.where(live, ww, torch.ones_like(ww)) >= SKETCH_TOLERANCE
        if not bool(live.any()):
            break
        col = torch.where(r >= 0, 1.0, -1.0).to(torch.float64)
        Bi = B[:, :i + 1].clone()
        Bi[:, i] = col
        BtB = Bi @ Bi.transpose(1, 2)
        live &= torch.linalg.matrix_rank(BtB) == i + 1  # dependent basis: stop (lowbit)
        BtB = torch.where(live[:, None, None], BtB, eye[:i + 1, :i + 1])
        x = torch.linalg.solve(BtB, Bi @ wg.unsqueeze(-1)).squeeze(-1)
        B[live, i] = col[live]
        alpha[live, :i + 1] = x[live]
        r = torch.where(live[:, None], wg - (alpha.unsqueeze(-1) * B).sum(1), r)
    neg = alpha < 0
    alpha = alpha.abs()
    B[neg] = -B[neg]
    keep = alpha > 0
    order = torch.sort(torch.where(keep, alpha, torch.full_like(alpha, math.inf)), dim=1, stable=True).indices
    alpha = torch.gather(alpha, 1, order)
    B = torch.gather(B, 1, order.unsqueeze(-1).expand_as(B))
    keep = torch.gather(keep, 1, order)
    return B * keep.unsqueeze(-1), alpha * keep


class AlqWeight(nn.Module):
    """One ALQ-quantized weight under lowbit's names (quant/alq/basis.hpp AlqWeight).

    w_hat  parameter, the reconstruction the layer uses (its .grad is dL/dw_hat, the one input
           of the ALQ optimizer, Sec. 3.1); forward() returns it.
    alpha  [G, I_max] coordinates (0 on an empty slot), mask [G, I_max] active slots;
    signs  weight-shaped integer codes, bit s = sign of basis s (lowbit's storage; the authors
           keep B as an int8 [.., I_max, n] tensor: here B is looked up from the codes when a
           step needs it, bases());
    w_fp   the float copy: the sketched weight, then the STE phase's w_FP.
    """

    def __init__(self, init, n, k, max_bits):
        super().__init__()
        self.shape, self.n, self.k, self.I = tuple(init.shape), n, k, max_bits
        self.G = init.numel() // n
        self.w_hat = nn.Parameter(torch.zeros(self.shape))
        self.register_buffer("alpha", torch.zeros(self.G, max_bits))
        self.register_buffer("mask", torch.zeros(self.G, max_bits))
        self.register_buffer("signs", torch.zeros(self.shape))
        self.register_buffer("w_fp", torch.zeros(self.shape))
        self.register_buffer("table", construct_bit_table(max_bits), persistent=False)
        self.shift = torch.arange(max_bits)
        self.initialize(init)

    # group views: [*shape] <-> [G, n]
    def group(self, t):
        return t.reshape(self.G // self.k, self.n, self.k).transpose(1, 2).reshape(self.G, self.n)

    def ungroup(self, tg):
        return tg.reshape(self.G // self.k, self.k, self.n).transpose(1, 2).reshape(self.shape)

    @torch.no_grad()
    def initialize(self, w):
        B, alpha = sketch(self.group(w.detach().double()), self.I)
        self.w_fp.copy_(w)
        self.alpha.copy_(alpha)
        self.mask.copy_(alpha > 0)
        self.store_codes(((B > 0).long() << self.shift.view(1, -1, 1)).sum(1))
        self.rebuild(self.bases(self.codes()))

    def codes(self):
        """[G, n] int64 pattern codes (bit s = sign of basis s; 0 on empty slots)."""
        return self.group(self.signs).long()

    def store_codes(self, codes):
        self.signs.copy_(self.ungroup(codes.to(self.signs.dtype)))

    def active_bits(self):
        """[G, 1] the active slots of each group as a bit mask."""
        return (self.mask.long() << self.shift).sum(1, keepdim=True)

    def bases(self, codes):
        """B [G, I, n]: +-1 on active slots, 0 on empty ones (the authors' B * mask), looked up
        from the sign-pattern table (construct_bit_table)."""
        return self.table[codes].transpose(1, 2) * self.mask.unsqueeze(-1)

    def rebuild(self, B):
        """w_hat = B alpha (binarynet reconstruct_w: sum(B * alpha, over the slots))."""
        self.w_hat.data.copy_(self.ungroup((B * self.alpha.unsqueeze(-1)).sum(1)))

    def fit(self, target, h):
        """Basis step on every group (binarynet optimize_bin_basis + speedup) towards the
        per-element target w* with Hessian weights h; sets alpha, returns (B, codes)."""
        tg, hg = self.group(target), self.group(h)
        mask = self.mask
        # Eqs. 17-20: with alpha fixed every weight takes the pattern whose value b^T alpha is
        # nearest to w*; empty slots have alpha 0, so their bit does not matter and is cleared.
        values = (self.alpha * mask) @ self.table.t()        # all_disc_w, [G, 2^I]
        codes = nearest_pattern(values, tg) & self.active_bits()
        B = self.bases(codes)                                  # [G, I, n]
        # Eqs. 22-23, the authors' speedup: alpha = (B H B^T + ridge)^-1 B H w*, ridge 1e-6 on
        # active slots and 1 + 1e-6 on empty ones (whose rows of B are 0, so alpha = 0 there;
        # lowbit solves the active slots alone: the same alpha). lowbit: accumulated and solved
        # in double (the authors: float32 torch.inverse, which moves alpha by up to ~5e-5
        # relative on 4-bit groups of 8 weights, where B H B^T is nearly singular).
        Bd = B.double()
        BH = Bd * hg.double().unsqueeze(1)
        hess = BH @ Bd.transpose(1, 2) + torch.diag_embed(1 + RIDGE - mask.double())
        rhs = BH @ tg.double().unsqueeze(-1)
        self.alpha.copy_(torch.linalg.solve(hess, rhs).squeeze(-1) * mask)
        return B, codes

    def forward(self):
        return self.w_hat


def nearest_pattern(values, target):
    """For every target t [G, n], the index p of the pattern value values[g, p] [G, P] nearest
    to it (ALQ Eq. 20). ALQ_BASIS_SEARCH=sorted (default): lowbit's search_bases, the P values
    of the group sorted and each t placed between the midpoints of neighbours by a binary
    search (torch.searchsorted), O(log P) per weight; on a midpoint the smaller value wins.
    ALQ_BASIS_SEARCH=lut: the authors' optimize_bin_basis, argmin over all P of |t - value|,
    O(P) per weight; on CPU its strided argmin costs 350-530 ms per step on VGG-Small's
    2.36M-weight conv at I = 2-4, against 45-75 ms sorted. Same choice but on exact ties."""
    if BASIS_SEARCH == "lut":
        G, n = target.shape
        ind = torch.empty(target.shape, dtype=torch.long)
        rows = max(1, LUT_CHUNK // (values.shape[1] * n))
        for g0 in range(0, G, rows):
            d = (target[g0:g0 + rows].unsqueeze(1) - values[g0:g0 + rows].unsqueeze(-1)).abs_()
            ind[g0:g0 + rows] = d.argmin(dim=1)
        return ind
    sorted_v, order = torch.sort(values, dim=1, stable=True)
    pick = torch.searchsorted((sorted_v[:, 1:] + sorted_v[:, :-1]) * 0.5, target.contiguous())
    return order.gather(1, pick)


def _alq_refit(pick, order, x, dprime):
    """Eq. 25 (lowbit refit_activation): gamma'_new = (D'^T D' + ridge)^-1 D'^T x with D' =
    [1, D] given by each element's pattern order[pick]; the count and the input sum of every
    level are accumulated (in double) and then assigned to their patterns."""
    P = dprime.shape[0]
    flat = pick.reshape(-1)
    cnt = torch.zeros(P, dtype=torch.float64).index_copy_(0, order, torch.bincount(flat, minlength=P).double())
    sx = torch.zeros(P, dtype=torch.float64).index_copy_(
        0, order, torch.bincount(flat, weights=x.reshape(-1).double(), minlength=P))
    A = dprime.t() @ (cnt.unsqueeze(1) * dprime) + RIDGE * torch.eye(dprime.shape[1], dtype=torch.float64)
    return torch.linalg.solve(A, dprime.t() @ sx)


class _AlqActivationFn(torch.autograd.Function):
    """Forward: the quantized value (AlqActivation.quantize); backward: dL/dx = dL/dy where
    x_ref - sum gamma <= x <= x_ref + sum gamma, 0 outside (PACT's clipped STE, as lowbit's
    alq_activation; gamma' gets no gradient, it is fitted)."""

    @staticmethod
    def forward(ctx, x, module):
        y, lo, hi = module.quantize(x)
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        return y

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x >= ctx.lo) & (x <= ctx.hi)), None


class AlqActivation(nn.Module):
    """ALQ activation quantization (paper Sec. 4, Eqs. 24-26), from lowbit's
    quant/alq/activation.hpp (the authors' code has none): x ~ x_ref + D gamma with {-1,+1}
    bases; each element takes the nearest of the 2^I levels; in training gamma' = [x_ref,
    gamma] is refitted to the batch by least squares (Eq. 25) and smoothed (Eq. 26, momentum
    0.9) after the batch is quantized; initialised from the first training batch."""

    def __init__(self, bits, momentum=0.9):
        super().__init__()
        self.bits, self.momentum = bits, momentum
        self.register_buffer("gamma", torch.zeros(bits + 1))       # [x_ref, gamma_1..I]
        self.register_buffer("initialized", torch.zeros(1))
        self.register_buffer("table", construct_bit_table(bits), persistent=False)
        # D' = [1, D] of every pattern, for Eq. 25 (kept in double whatever the module's dtype)
        self.dprime = torch.cat([torch.ones(1 << bits, 1), construct_bit_table(bits)], 1).double()

    def levels(self, g):
        """b^T gamma of every pattern, summed in slot order in float (lowbit pattern_values)."""
        v = torch.zeros(self.table.shape[0])
        for s in range(self.bits):
            v = v + g[s] * self.table[:, s]
        return v

    def nearest(self, g, t):
        """(pick, sorted levels, order): each t's position among the levels sorted ascending
        (order[pick] is its pattern), found by bucketing t between the midpoints of neighbouring
        levels (torch.bucketize; t on a midpoint takes the smaller level, as lowbit). lowbit
        (SortedPatterns) compares the two distances instead of the midpoint; the two differ
        only for t within float rounding of a midpoint."""
        sorted_v, order = torch.sort(self.levels(g), stable=True)
        return torch.bucketize(t, (sorted_v[1:] + sorted_v[:-1]) * 0.5), sorted_v, order

    def _set_gamma(self, gp):
        self.gamma[0] = float(gp[0])
        self.gamma[1:] = gp[1:].abs().float()  # a negative gamma_i flips its basis: same levels

    @torch.no_grad()
    def _init_from(self, x):
        m = x.double().mean()
        s = math.sqrt(float(((x.double() - m) ** 2).mean()))
        s = 1.0 if s == 0 else s
        self.gamma[0] = float(m)
        self.gamma[1:] = torch.tensor([s * 0.5 ** i for i in range(self.bits)])
        pick, _, order = self.nearest(self.gamma[1:].clone(), x - self.gamma[0])
        self._set_gamma(_alq_refit(pick, order, x, self.dprime))
        self.initialized.fill_(1)

    @torch.no_grad()
    def quantize(self, x):
        """(y, lo, hi): x quantized with gamma' as it is (the levels that choose the patterns),
        then, in training, gamma' refitted to the batch; lo, hi the clipping range of the STE."""
        if self.training and self.initialized.item() == 0:
            self._init_from(x)
        g, xref = self.gamma[1:].clone(), self.gamma[0].clone()
        pick, sorted_v, order = self.nearest(g, x - xref)
        y = (xref + sorted_v)[pick]  # x_ref + b^T gamma of the chosen pattern (Eq. 24)
        if self.training:
            fresh = _alq_refit(pick, order, x, self.dprime)                              # Eq. 25
            self._set_gamma(self.momentum * self.gamma.double() + (1 - self.momentum) * fresh)  # Eq. 26
        span = torch.zeros((), dtype=torch.float32)
        for s in range(self.bits):  # in float, slot order, as lowbit
            span = span + g[s]
        return y, float(xref - span), float(xref + span)

    def forward(self, x):
        return _AlqActivationFn.apply(x, self)


# ---- the pipeline (lowbit alq/pipeline.hpp plan_epoch) -----------------------------------

def alq_total_epochs(o):
    return int(o["rounds"]) * (int(o["epoch_basis"]) + int(o["epoch_coord"]) + int(o["epoch_prune"])) + \
        int(o["ste_epochs"]) + int(o["final_coord_epochs"])


def alq_plan_epoch(o, e):
    """(phase, lr, pruning epochs before, first STE epoch) of 0-based epoch e: R rounds of
    basis / coordinate / prune epochs (lr reset to alq.lr each round, x ld_basis before each
    basis epoch, then x ld_coord), then STE epochs (ste_lr x ld_ste each) and final coordinate
    epochs (x ld_final_coord); the authors' train.py schedule (method notes §2.7-2.8)."""
    eb, ec, ep = int(o["epoch_basis"]), int(o["epoch_coord"]), int(o["epoch_prune"])
    R, rounds = eb + ec + ep, int(o["rounds"])
    main = rounds * R
    lr = float(o["lr"])
    if e < main:
        r, k = divmod(e, R)
        after_basis = lr * float(o["ld_basis"]) ** eb
        if k < eb:
            return "basis", lr * float(o["ld_basis"]) ** (k + 1), r * ep, False
        if k < eb + ec:
            return "coordinate", after_basis * float(o["ld_coord"]) ** (k - eb + 1), r * ep, False
        return "prune", after_basis * float(o["ld_coord"]) ** ec, r * ep + k - eb - ec, False
    ste, fin = int(o["ste_epochs"]), int(o["final_coord_epochs"])
    if ste + fin == 0:
        return alq_plan_epoch(o, main - 1)
    k = min(e - main, ste + fin - 1)
    ste_lr = float(o["ste_lr"])
    if k < ste:
        return "ste", ste_lr * float(o["ld_ste"]) ** (k + 1), rounds * ep, e - main == 0
    return ("coordinate", ste_lr * float(o["ld_ste"]) ** ste * float(o["ld_final_coord"]) ** (k - ste + 1),
            rounds * ep, False)


class AlqControl:
    """What begin_step tells the optimizer (lowbit alq::Control)."""

    def __init__(self, o):
        self.phase, self.lr, self.ste_start = "basis", float(o["lr"]), False
        self.prune_rule, self.target_bits = o["prune_rule"], float(o["target_bits"])
        self.top_k, self.mp = float(o["top_k"]), 1.0
        self.prune_iter, self.prune_iters, self.bits0 = 0, 1, -1.0


class AlqOptimizer(torch.optim.Adam):
    """The authors' ALQ_optimizer (myoptimizer.py) over the ALQ layers plus plain Adam over
    every other parameter (BN), as lowbit's AlqOptimizer (alq/optim.hpp). The learning rate is
    the pipeline's: whatever the trainer writes into param_groups is overwritten in step()."""

    def __init__(self, others, layers, o, ctl, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(others, lr=ctl.lr, betas=betas, eps=eps, weight_decay=0.0)
        self.layers, self.ctl, self.eps, self.betas = layers, ctl, eps, betas
        self.wd = float(o["weight_decay"])
        self.derived = o["alpha_moments"] == "derived"
        self.from_pretrained = o["first_basis_target"] == "pretrained"
        self.alq_state = {}  # per layer name (not in self.state: those keys are not in param_groups)

    def _rederives(self):
        return self.derived and self.ctl.phase in ("basis", "ste")

    @torch.no_grad()
    def step(self, closure=None):
        for g in self.param_groups:
            g["lr"], g["weight_decay"] = self.ctl.lr, 0.0
        super().step()
        moments = [self._moments(name, q) for name, q in self.layers]
        if self.ctl.phase == "prune":
            self._prune(moments)
        else:
            for (name, q), mo in zip(self.layers, moments):
                if mo is not None:
                    self._update_layer(name, q, mo)
        if self.ctl.phase == "ste":
            self.ctl.ste_start = False
        for _, q in self.layers:  # consumed here: the next backward starts from zero
            q.w_hat.grad = None

    def _amsgrad(self, st, prefix, grad, t):
        """One AMSGrad moment update; returns (pseudo-gradient lr m_hat, pseudo-Hessian
        (sqrt(v_max) + eps) / sqrt(1 - b2^t)) (myoptimizer.py; ALQ Eqs. 8-10)."""
        b1, b2 = self.betas
        m, v, vmax = st[prefix + "exp_avg"], st[prefix + "exp_avg_sq"], st[prefix + "max_exp_avg_sq"]
        m.mul_(b1).add_(grad, alpha=1 - b1)
        v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        torch.max(vmax, v, out=vmax)
        pseudo_grad = m * (self.ctl.lr / (1 - b1 ** t))
        pseudo_hess = (vmax.sqrt() + self.eps).div_(math.sqrt(1 - b2 ** t))
        return pseudo_grad, pseudo_hess

    def _moments(self, name, q):
        grad = q.w_hat.grad
        if grad is None:
            return None
        st = self.alq_state.get(name)
        if st is None:
            st = self.alq_state[name] = {"step": 0}
            for what in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                st["w_" + what] = torch.zeros_like(q.w_hat)
                st["a_" + what] = torch.zeros_like(q.alpha)
        st["step"] += 1
        t = st["step"]
        mo = {"t": t, "B": None, "codes": None}
        mo["g"], mo["h"] = self._amsgrad(st, "w_", grad, t)
        if not self._rederives():
            # the current bases (a basis / STE step under the derived rule replaces them
            # without reading them)
            mo["codes"] = q.codes()
            mo["B"] = q.bases(mo["codes"])
            # g_alpha = B g_w (Eq. 14; construct_grad_alpha), 0 on empty slots; L2 on alpha in
            # coordinate steps only.
            galpha = (mo["B"] @ q.group(grad).unsqueeze(-1)).squeeze(-1)
            if self.ctl.phase == "coordinate" and self.wd != 0:
                galpha = galpha + self.wd * q.alpha * q.mask
            mo["ga"], mo["ha"] = self._amsgrad(st, "a_", galpha, t)
        return mo

    def _update_layer(self, name, q, mo):
        st, phase, B, codes = self.alq_state[name], self.ctl.phase, mo["B"], mo["codes"]
        if phase == "basis":
            # Eq. 19: one AMSGrad step from w_hat (first_basis_target = pretrained: at the run's
            # first step from the FP32 weight sketched from, as the authors' w_FP).
            start = q.w_fp if self.from_pretrained and mo["t"] == 1 else q.w_hat
            B, codes = q.fit(start - mo["g"] / mo["h"], mo["h"])
        elif phase == "coordinate":
            q.alpha.sub_(mo["ga"] / mo["ha"] * q.mask)  # Eq. 21
        elif phase == "ste":
            if self.ctl.ste_start:
                q.w_fp.copy_(q.w_hat)
            q.w_fp.sub_(mo["g"] / mo["h"])  # w_FP <- w_FP - g/H, then the bases follow it
            B, codes = q.fit(q.w_fp, mo["h"])
        # alpha >= 0 (Sec. 3.3): a negative coordinate is flipped with its basis. lowbit does
        # it in every mode; the authors' coordinate mode does not.
        neg = q.alpha < 0
        flipped = bool(neg.any())
        if flipped:
            q.alpha.abs_()
            B[neg] = -B[neg]
            codes = codes ^ (neg.long() << q.shift).sum(1, keepdim=True)
            st["a_exp_avg"][neg] = -st["a_exp_avg"][neg]
        q.rebuild(B)
        if phase in ("basis", "ste") or flipped:
            q.store_codes(codes)
        if self._rederives():
            # The authors' approximate alpha-domain moments for the new bases: m_alpha = B m_w
            # (construct_grad_alpha), v_alpha = sum over the group of v_w (construct_hessian_alpha
            # takes diag(B diag(v) B^T), which is that sum; written here as the sum, as lowbit).
            mask = q.mask
            st["a_exp_avg"] = (B @ q.group(st["w_exp_avg"]).unsqueeze(-1)).squeeze(-1)
            st["a_exp_avg_sq"] = q.group(st["w_exp_avg_sq"]).sum(1, keepdim=True) * mask
            st["a_max_exp_avg_sq"] = q.group(st["w_max_exp_avg_sq"]).sum(1, keepdim=True) * mask

    def _prune(self, moments):
        """Step 1 (Eqs. 11-15, lowbit alq/prune.hpp): the increments f = -g alpha + H alpha^2 / 2
        of the active coordinates, ranked across layers."""
        ctl = self.ctl
        total_bits, total_weights = 0, 0
        cands = []  # per layer: (f [K] float64, flat slot index [K])
        for (name, q), mo in zip(self.layers, moments):
            total_bits += int(q.mask.sum().item()) * q.n
            total_weights += q.w_hat.numel()
            if mo is None:
                cands.append(None)
                continue
            idx = q.mask.reshape(-1).nonzero().squeeze(1)
            a = q.alpha.reshape(-1)[idx].double()
            f = -mo["ga"].reshape(-1)[idx].double() * a + 0.5 * mo["ha"].reshape(-1)[idx].double() * a * a
            cands.append((f, idx))
        chosen = []  # (layer, flat index)
        if ctl.prune_rule == "authors":
            # each layer proposes stochastic_round(top_k * active) smallest; the smallest
            # int(#proposals * M_p) of all proposals are removed (myoptimizer.py prune)
            props = []
            for l, c in enumerate(cands):
                if c is None or c[0].numel() == 0:
                    continue
                f, idx = c
                order = torch.sort(f, stable=True).indices
                want = ctl.top_k * f.numel()
                k = int(math.floor(want)) + (random.random() < want - math.floor(want))
                k = min(k, f.numel())
                props += [(float(f[i]), l, int(idx[i])) for i in order[:k].tolist()]
            props.sort()
            chosen = [(l, i) for _, l, i in props[:max(0, int(len(props) * ctl.mp))]]
        else:
            # the paper's rule counted in bits (lowbit select_paper / paper_budget)
            if ctl.bits0 < 0:
                ctl.bits0 = float(total_bits)
            target = ctl.target_bits * total_weights
            budget = ctl.bits0 if ctl.bits0 <= target else \
                ctl.bits0 - (ctl.bits0 - target) * (ctl.prune_iter + 1) / ctl.prune_iters
            fs, ls, ids, bits = [], [], [], []
            for l, c in enumerate(cands):
                if c is None:
                    continue
                fs.append(c[0])
                ls.append(torch.full_like(c[1], l))
                ids.append(c[1])
                bits.append(torch.full((c[1].numel(),), self.layers[l][1].n, dtype=torch.float64))
            if fs and total_bits > budget:
                f, l_, i_, b_ = torch.cat(fs), torch.cat(ls), torch.cat(ids), torch.cat(bits)
                order = torch.sort(f, stable=True).indices  # ties: (layer, group, slot) order
                left = total_bits - torch.cumsum(b_[order], 0)
                count = int((left > budget).sum().item()) + 1  # remove until total <= budget
                sel = order[:count]
                chosen = list(zip(l_[sel].tolist(), i_[sel].tolist()))
        by_layer = {}
        for l, i in chosen:
            by_layer.setdefault(l, []).append(i)
        for l, idx in by_layer.items():
            name, q = self.layers[l]
            idx = torch.tensor(idx)
            q.mask.view(-1)[idx] = 0
            q.alpha.view(-1)[idx] = 0
            for what in ("a_exp_avg", "a_exp_avg_sq", "a_max_exp_avg_sq"):
                self.alq_state[name][what].view(-1)[idx] = 0
            codes = q.codes() & q.active_bits()  # a pruned slot's basis goes with it
            q.store_codes(codes)
            q.rebuild(q.bases(codes))


class AlqMethod(Method):
    """ALQ: every layer quantized (first and last included, as the authors), the ALQ
    optimizer, the epoch plan, {-1,+1}-basis activations."""

    def __init__(self):
        self._ctl = weakref.WeakKeyDictionary()  # per model: the AlqControl its optimizer reads

    def default_policy(self, role):
        return "same"

    def make_weight(self, init, bits, role, cfg):
        o = cfg["alq"]
        if init.dim() == 4:
            grouping = o["first_grouping"] if role == "first" else o["conv_grouping"]
        else:
            grouping = o["fc_grouping"]
        n, k, _ = alq_layout(tuple(init.shape), grouping, o["fc_group_size"])
        return AlqWeight(init, n, k, bits)

    def make_activation(self, bits, role, cfg):
        return None if bits >= 32 else AlqActivation(bits)

    def _control(self, model, cfg):
        if model not in self._ctl:
            self._ctl[model] = AlqControl(cfg["alq"])
        return self._ctl[model]

    def make_optimizer(self, model, cfg, groups):
        layers = [(name, m) for name, m in model.named_modules() if isinstance(m, AlqWeight)]
        if not layers:
            raise ValueError("alq: the model has no ALQ-quantized layer")
        # every parameter that is not an ALQ w_hat (BN): plain Adam, no weight decay
        alq_params = {id(m.w_hat) for _, m in layers}
        others = []
        for g in groups:
            kept = [(n, p) for n, p in zip(g["names"], g["params"]) if id(p) not in alq_params]
            if kept:
                others.append(dict(g, names=[n for n, _ in kept], params=[p for _, p in kept], weight_decay=0.0))
        return AlqOptimizer(others, layers, cfg["alq"], self._control(model, cfg))

    def begin_step(self, model, ctx, cfg):
        """lowbit AlqHooks::begin_step: the phase and lr of the epoch, the pruning counters."""
        o, ctl = cfg["alq"], self._control(model, cfg)
        phase, lr, prune_before, first_ste = alq_plan_epoch(o, ctx["epoch"])
        spe = ctx["steps_per_epoch"]
        in_epoch = ctx["step"] - ctx["epoch"] * spe
        ctl.phase, ctl.lr = phase, lr
        ctl.ste_start = first_ste and in_epoch == 0
        ctl.prune_iter = prune_before * spe + in_epoch
        prune_steps = int(o["epoch_prune"]) * spe
        ctl.prune_iters = max(1, int(o["rounds"]) * prune_steps)
        ctl.mp = (float(o["prune_rate"]) / float(o["top_k"])) / max(1, prune_steps)
        if o["prune_rule"] == "authors" and int(o["rounds"]) * int(o["epoch_prune"]) > 0 and ctl.mp > 1:
            raise ValueError("alq.top_k = %g: with %d steps per epoch the authors' pruning rule needs "
                             "top_k >= %g" % (float(o["top_k"]), spe, float(o["prune_rate"]) / max(1, prune_steps)))


METHODS = {"slb": SlbMethod(), "alq": AlqMethod()}
