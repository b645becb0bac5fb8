#!/usr/bin/env python3
"""Prints docs/apot.md's text version of the APoT paper's Fig. 2 and the APoT magnitude sets
M(B), B = 1..5, as exact fractions. An independent transcription of Eqs. 2, 3 (the authors'
PoT set), 5 and 6 (k = 2); the C++ sets (include/lowbit/quant/apot/levels.hpp) are checked
against the same values in tests/test_apot.cpp.

    python3 scripts/apot_levels_figure.py
"""
from fractions import Fraction as F


def apot(B):
    n, odd = B // 2, B % 2
    bases = [[F(0), F(1, 2**i), F(1, 2**(i + n)), F(1, 2**(i + 2 * n + odd))] for i in range(n)]
    if odd:
        bases.append([F(0), F(1, 2**(2 * n))])
    sums = {F(0)}
    for b in bases:
        sums = {s + t for s in sums for t in b}
    s = sorted(sums)
    return [v / s[-1] for v in s]


def pot(B):
    return [F(0)] + [F(1, 2**j) for j in range(2**B - 2, -1, -1)]


def uniform(B):
    n = 2**B - 1
    return [F(k, n) for k in range(n + 1)]


def line(values, width=64):
    c = ["-"] * (width + 1)
    for v in values:
        c[round(float(v) * width)] = "|"
    return "".join(c)


for b in (3, 4):
    print(f"unsigned {b}-bit")
    for name, f in (("uniform", uniform), ("PoT", pot), ("APoT", apot)):
        print(f"  {name:8s} {line(f(b))}")
    print()
for B in range(1, 6):
    print(f"M({B}) = " + ", ".join(str(v) for v in apot(B)))
