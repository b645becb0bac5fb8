"""Methods fp32, ste (BWN / DoReFa weights, DoReFa / PACT activations) and apot for
benchmarks/pytorch_quant_train.py, written as the methods' authors write them in PyTorch
(elementwise torch ops with a straight-through rounding, a custom autograd.Function where the
authors use one), computing lowbit's forward (include/lowbit/quant/ste/*.hpp,
include/lowbit/quant/apot/*.hpp) bit for bit where the float operations allow. Where lowbit's
gradient rule differs from the authors' code, this file follows lowbit (the comparison is of
equal work and equal math) and says so. Not run on its own:

    /usr/bin/python3 benchmarks/pytorch_quant_train.py --config-json CFG.json --threads N

Methods (lowbit's config names):
  fp32  no quantizer (every layer a plain nn.Conv2d / nn.Linear).
  ste   w_bits 1: BWN, E(|W|) sign(W) (XNOR-Net Eq. 4 as DoReFa-Net uses it, tensorpack dorefa.py);
        w_bits 2..8: DoReFa Eq. 9 (tensorpack dorefa.py: tanh, / max|tanh|, * 0.5 + 0.5, round with
        an identity gradient, * 2 - 1); activations DoReFa (clip to [0, 1], round with STE) or, with
        ste.a_quant = pact, PACT (Choi et al. 2018, Eqs. 1-3; learned alpha "alpha" with its own
        weight decay ste.pact_weight_decay).
  apot  APoT (Li, Dong & Wang, ICLR 2020) as the authors' CIFAR code (yhhhli/APoT_Quantization,
        CIFAR10/models/quant_layer.py: weight_quantize_fn, weight_quantization._pq,
        act_quantization._uq), with lowbit's choices where lowbit differs (see ApotWeight).
"""
import torch
import torch.nn as nn

from pytorch_quant_train import Method, move_params


# ----------------------------------------------------------------------------------------------
# fp32

class Fp32Method(Method):
    """No quantization: the trainer's factory gives every role 32/32 bits, so the quantizer
    makers are never called (lowbit quant/fp32/method.hpp)."""

    def make_weight(self, init, bits, role, cfg):
        raise ValueError(f"method fp32 has no weight quantizer (asked for {bits} bits)")

    def make_activation(self, bits, role, cfg):
        raise ValueError(f"method fp32 has no activation quantizer (asked for {bits} bits)")


# ----------------------------------------------------------------------------------------------
# ste: BWN, DoReFa, PACT

class RoundSTE(torch.autograd.Function):
    """round() with the identity gradient: tensorpack's gradient_override_map({"Round":
    "Identity"}) (DoReFa-Net Eq. 5). torch.round rounds half to even, as tf.round and lowbit's
    std::rint."""

    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


class SignSTE(torch.autograd.Function):
    """sign() with the identity gradient (tensorpack's {"Sign": "Identity"}), with lowbit's
    sign(0) = +1 (quant/ste/bwn.hpp; tf.sign(0) = 0) so every weight has one of two codes."""

    @staticmethod
    def forward(ctx, x):
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        return g


class BwnWeight(nn.Module):
    """w = E sign(W), E = mean|W| a constant (tensorpack: E = stop_gradient(reduce_mean(abs(x))),
    tf.sign(x / E) * E with the identity gradient). E is summed in double and rounded to float
    once, as lowbit's detail::mean_abs, so both sides use the same float E."""

    def __init__(self, init):
        super().__init__()
        self.latent = nn.Parameter(init.clone())

    def forward(self):
        w = self.latent
        e = w.detach().double().abs().mean().to(w.dtype)
        return SignSTE.apply(w) * e


class DoReFaWeight(nn.Module):
    """DoReFa-Net Eq. 9 as tensorpack's dorefa.py fw(): x = tanh(W); x = x / max|x| * 0.5 + 0.5;
    w = 2 quantize_k(x) - 1, quantize_k(x) = round(x n) / n with the identity gradient. Gradients
    flow through tanh and max|tanh| by autograd (lowbit's rule too, quant/ste/dorefa.hpp). The
    float operations are lowbit's, in its order (lowbit also clips x to [0, 1], a no-op here)."""

    def __init__(self, init, bits):
        super().__init__()
        self.latent = nn.Parameter(init.clone())
        self.n = float(2 ** bits - 1)

    def forward(self):
        t = torch.tanh(self.latent)
        x = t / t.abs().max() * 0.5 + 0.5
        return RoundSTE.apply(x * self.n) / self.n * 2 - 1


class DoReFaActivation(nn.Module):
    """DoReFa-Net Eq. 11 as tensorpack's fa(): quantize_k(clip(x, 0, 1)); clamp's autograd passes
    the gradient on [0, 1] inclusive (lowbit's rule, quant/ste/dorefa.hpp)."""

    def __init__(self, bits):
        super().__init__()
        self.n = float(2 ** bits - 1)

    def forward(self, x):
        return RoundSTE.apply(torch.clamp(x, 0.0, 1.0) * self.n) / self.n


class PactActivation(nn.Module):
    """PACT (Choi et al. 2018): y = clip(x, 0, alpha) (Eq. 1), y_q = round(y / s) s with
    s = alpha / n (Eq. 2), the rounding straight-through. The clip is written with torch.where
    so alpha gets its Eq. 3 gradient (1 where x >= alpha) and x gets 1 on [0, alpha) -- lowbit's
    rule (quant/ste/pact.hpp). The scale s is detached: with it attached, autograd through
    round(y / s) * s would add an LSQ-like term (round(y/s) - y/s) to alpha's gradient, which
    neither the PACT paper's Eq. 3 nor lowbit has. The forward is lowbit's float ops
    (min(max(x, 0), alpha) / s, rint, * s); 0.5 (|x| - |x - alpha| + alpha), the paper's form,
    rounds differently in the last bit."""

    def __init__(self, bits, alpha):
        super().__init__()
        self.n = float(2 ** bits - 1)
        self.alpha = nn.Parameter(torch.full((1,), float(alpha)))

    def forward(self, x):
        y = torch.where(x < self.alpha, torch.clamp(x, min=0.0), self.alpha)
        s = (self.alpha / self.n).detach()
        return RoundSTE.apply(y / s) * s


class SteMethod(Method):
    """lowbit quant/ste/method.hpp: w_bits 1 -> BWN, 2..8 -> DoReFa (also the 8bit policy);
    activations DoReFa or PACT (ste.a_quant)."""

    def make_weight(self, init, bits, role, cfg):
        return BwnWeight(init) if bits == 1 else DoReFaWeight(init, bits)

    def make_activation(self, bits, role, cfg):
        o = cfg["ste"]
        if o["a_quant"] == "pact":
            return PactActivation(bits, o["pact_alpha"])
        return DoReFaActivation(bits)

    def param_groups(self, model, cfg, base_groups):
        # PACT's alphas in their own group with their own L2 decay (PACT Sec. 3.1; lowbit's
        # pact_group: the base lr, weight decay ste.pact_weight_decay).
        alphas = {id(m.alpha) for m in model.modules() if isinstance(m, PactActivation)}
        return move_params(base_groups, lambda n, p: id(p) in alphas,
                           weight_decay=float(cfg["ste"]["pact_weight_decay"]))


# ----------------------------------------------------------------------------------------------
# apot

def apot_magnitude_levels(kind, B):
    """lowbit's apot_magnitude_levels (quant/apot/levels.hpp) in double: the B-bit unsigned
    magnitude set, ascending, 0 .. 1. APoT (k = 2): the authors' build_power_value bases (up to
    their factor 2, which the normalization by the maximum removes)."""
    if kind == "uniform":
        n = 2 ** B - 1
        return [k / n for k in range(n + 1)]
    if kind == "pot":
        return [0.0] + [2.0 ** -j for j in range(2 ** B - 2, -1, -1)]
    n, odd = B // 2, B % 2 == 1
    bases = [[0.0, 2.0 ** -i, 2.0 ** -(i + n), 2.0 ** -(i + 2 * n + (1 if odd else 0))] for i in range(n)]
    if odd:
        bases.append([0.0, 2.0 ** -(2 * n)])
    sums = [0.0]
    for base in bases:
        sums = [s + t for s in sums for t in base]
    sums = sorted(set(sums))
    assert len(sums) == 2 ** B, (kind, B, sums)
    return [v / sums[-1] for v in sums]


class LevelSet:
    """The magnitude levels as float32 and the float32 midpoints (m_j + m_{j+1}) / 2 between
    neighbours, as lowbit's detail::NearestLevel. The nearest level of u is the number of
    midpoints strictly below u: torch.bucketize(u, mid) (right=False counts boundaries < u), so a
    tie goes to the smaller magnitude as in lowbit. The authors project with an argmin over
    |u - level| (broadcast over the levels: one [levels x numel] tensor); it picks the same level
    except at exact ties, whose winner there depends on a Python set's order."""

    def __init__(self, mags):
        self.levels = torch.tensor(mags, dtype=torch.float64).float()
        self.mid = (self.levels[:-1] + self.levels[1:]) / 2  # in float32, as lowbit

    def project(self, u):
        if u.dim() == 4 and not u.is_contiguous() and u.is_contiguous(memory_format=torch.channels_last):
            # --layout channels_last: bucketize wants a contiguous input; NHWC is, and the
            # permuted-back result keeps the channels_last layout
            return self.levels[torch.bucketize(u.permute(0, 2, 3, 1), self.mid)].permute(0, 3, 1, 2)
        return self.levels[torch.bucketize(u, self.mid)]


class _ApotWeightFn(torch.autograd.Function):
    """The authors' weight_quantization._pq (CIFAR code): x / alpha clipped to [-1, 1], projected
    to the signed level set, times alpha. Backward: the weight gradient passes unchanged ("grad
    for weights will not be clipped"; lowbit apot.grad_outside = pass, its default) or is zeroed
    where |x / alpha| > 1 (grad_outside = zero); alpha's gradient is Eq. 8: sign(r) where |r| > 1,
    q - r inside (rcf = pact: 0 inside, Eq. 11). Like lowbit (quant/apot/apot.hpp
    checked_alpha), a negative alpha acts as |alpha| with the gradient times sign(alpha); the
    authors divide by the signed alpha, which gives the same forward (the set is symmetric).
    2-bit weights: the authors' uniform ternary round(clamp(r)) (power=False), equal to the
    projection onto {0, 1} with ties to 0 (round half to even at 0.5)."""

    @staticmethod
    def forward(ctx, x, alpha, levels, ternary, grad_outside_pass, alpha_grad_inside):
        a = alpha.abs()
        r = x / a
        u = r.abs()
        q = torch.round(u.clamp(max=1.0)) if ternary else levels.project(u)
        q = torch.where(r < 0, -q, q)
        ctx.save_for_backward(r, q, alpha)
        ctx.flags = (grad_outside_pass, alpha_grad_inside)
        return q * a

    @staticmethod
    def backward(ctx, g):
        r, q, alpha = ctx.saved_tensors
        grad_outside_pass, alpha_grad_inside = ctx.flags
        outside = r.abs() > 1
        gx = g if grad_outside_pass else g.masked_fill(outside, 0.0)
        ga = None
        if ctx.needs_input_grad[1]:  # not with rcf = off (alpha = max|W~|, a constant)
            inside = (q - r) if alpha_grad_inside else torch.zeros_like(r)
            ga = (g * torch.where(outside, r.sign(), inside)).sum().reshape(1) * alpha.sign()
        return gx, ga, None, None, None, None


class _ApotActivationFn(torch.autograd.Function):
    """The authors' act_quantization._uq (CIFAR code): x / alpha clipped at the top only
    (inputs follow a ReLU), projected to the unsigned level set, times alpha. Backward: input
    gradient zero where x / alpha > 1; alpha's gradient 1 there, q - x / alpha elsewhere
    (lowbit's apot_activation_rcf, the same rule)."""

    @staticmethod
    def forward(ctx, x, alpha, levels):
        r = x / alpha
        q = levels.project(r)  # r <= 0 -> level 0, r > 1 -> the top level 1
        ctx.save_for_backward(r, q)
        return q * alpha

    @staticmethod
    def backward(ctx, g):
        r, q = ctx.saved_tensors
        above = r > 1
        ga = (g * torch.where(above, torch.ones_like(r), q - r)).sum().reshape(1)
        return g.masked_fill(above, 0.0), ga, None


APOT_EPS = float(torch.tensor(1e-5, dtype=torch.float32))  # lowbit's ApotConfig::eps is the float 1e-5f


def apot_weight_normalize(w, wn, eps=APOT_EPS):
    """APoT Eq. 9 as lowbit computes it (quant/apot/apot.hpp apot_weight_normalize):
    W~ = (W - mu) * float(1 / (sigma + eps)), mu and the POPULATION sigma summed in double and
    rounded to float once. The authors' CIFAR code writes (W - W.data.mean()) / W.data.std():
    unbiased std, no eps, statistics detached; lowbit follows the paper's Eq. 9 (eps, population
    sigma) and by default (apot.wn = on) differentiates through mu and sigma (Algorithm 1 step 8,
    as the authors' later ImageNet code does); wn = detached is the CIFAR code's constant
    statistics. Here autograd differentiates the same expression, which is lowbit's backward."""
    if wn == "off":
        return w
    src = w.detach() if wn == "detached" else w
    wd = src.double()
    mu = wd.mean()
    sigma = ((wd - mu) ** 2).mean().sqrt()
    return (w - mu.float()) * (1.0 / (sigma + eps)).float()


class ApotWeight(nn.Module):
    """lowbit's ApotWeight: parameters "latent" (W) and "alpha" (init apot.w_alpha, 3.0 in the
    authors' CIFAR code). Signed weights with b bits use the (b-1)-bit magnitude set plus a sign
    (the authors' B = b - 1); rcf = off: alpha = max|W~|, no parameter (the paper's Table 3)."""

    def __init__(self, init, bits, o):
        super().__init__()
        self.wn, self.rcf = o["wn"], o["rcf"]
        self.grad_outside_pass = o["grad_outside"] == "pass"
        self.levels = LevelSet(apot_magnitude_levels(o["levels"], bits - 1))
        self.ternary = bits == 2  # M(1) = {0, 1} for every level kind
        self.latent = nn.Parameter(init.clone())
        if self.rcf != "off":
            a0 = float(o["w_alpha"])
            if self.wn == "off":  # lowbit: in units of the initial weight's population std
                a0 = float(torch.as_tensor(a0 * init.double().std(unbiased=False)).float())
            self.alpha = nn.Parameter(torch.full((1,), a0))

    def forward(self):
        wt = apot_weight_normalize(self.latent, self.wn)
        alpha = self.alpha if self.rcf != "off" else wt.detach().abs().max().reshape(1)
        return _ApotWeightFn.apply(wt, alpha, self.levels, self.ternary, self.grad_outside_pass, self.rcf == "on")


class ApotActivation(nn.Module):
    """lowbit's ApotActivation: b-bit unsigned magnitude set, parameter "alpha" (init
    apot.a_alpha, 8.0 in the authors' CIFAR code); 2-bit activations are PoT {0, 1/4, 1/2, 1}."""

    def __init__(self, bits, o):
        super().__init__()
        self.levels = LevelSet(apot_magnitude_levels(o["levels"], bits))
        self.alpha = nn.Parameter(torch.full((1,), float(o["a_alpha"])))

    def forward(self, x):
        return _ApotActivationFn.apply(x, self.alpha, self.levels)


class Uniform8Weight(nn.Module):
    """The authors' first_conv / last_fc 8-bit weights (an "8bit"-policy layer of method apot):
    w = s round(W / s * 127) / 127 with an STE. s = max|W| as lowbit (the authors take the signed
    max(W) with no clamp, which leaves weights below -max(W) off the 8-bit grid)."""

    def __init__(self, init):
        super().__init__()
        self.latent = nn.Parameter(init.clone())

    def forward(self):
        w = self.latent
        s = w.detach().abs().max()
        return s * (RoundSTE.apply(torch.clamp(w / s, -1.0, 1.0) * 127.0) / 127.0)


class ApotMethod(Method):
    """lowbit quant/apot/method.hpp. The alphas train in their own SGD groups (the authors'
    CIFAR main.py: act alpha lr 0.1, weight alpha lr 0.02, both wd 1e-4; lowbit's apot.a_alpha_lr,
    apot.w_alpha_lr, apot.alpha_weight_decay), their learning rates scaled by the schedule like
    the base lr (lr_scale = alpha lr / base lr, as lowbit's ParamGroupRule)."""

    def make_weight(self, init, bits, role, cfg):
        if bits == 8:
            return Uniform8Weight(init)
        return ApotWeight(init, bits, cfg["apot"])

    def make_activation(self, bits, role, cfg):
        return ApotActivation(bits, cfg["apot"])

    def param_groups(self, model, cfg, base_groups):
        o, lr = cfg["apot"], float(cfg["lr"])
        wd = float(o["alpha_weight_decay"])
        w_alphas = {id(m.alpha) for m in model.modules() if isinstance(m, ApotWeight) and m.rcf != "off"}
        a_alphas = {id(m.alpha) for m in model.modules() if isinstance(m, ApotActivation)}
        move_params(base_groups, lambda n, p: id(p) in w_alphas, weight_decay=wd,
                    lr_scale=float(o["w_alpha_lr"]) / lr)
        return move_params(base_groups, lambda n, p: id(p) in a_alphas, weight_decay=wd,
                           lr_scale=float(o["a_alpha_lr"]) / lr)


METHODS = {"fp32": Fp32Method(), "ste": SteMethod(), "apot": ApotMethod()}
