"""Small numerical tools, written with the standard library so the example needs no numpy."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def binomial(rng: random.Random, n: int, p: float) -> int:
    """One draw from Binomial(n, p), reproducible for a given ``rng`` state on every Python version.

    Small means use Devroye's waiting-time method (exact); large means use the normal approximation,
    which is accurate to well under one person when n*p*(1-p) > 30.
    """
    if n <= 0 or p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1.0 - p)
    mean = n * p
    if mean < 30.0:
        limit = -math.log1p(-p)
        total, drawn = 0.0, 0
        while drawn < n:
            total += rng.expovariate(1.0) / (n - drawn)
            if total > limit:
                break
            drawn += 1
        return drawn
    draw = round(rng.gauss(mean, math.sqrt(mean * (1.0 - p))))
    return min(max(draw, 0), n)


def dominant_eigenvalue(matrix: Matrix, iterations: int = 200, tolerance: float = 1e-12) -> float:
    """Spectral radius of a non-negative square matrix, by power iteration."""
    size = len(matrix)
    vector = [1.0] * size
    value = 0.0
    for _ in range(iterations):
        product = [sum(matrix[i][j] * vector[j] for j in range(size)) for i in range(size)]
        norm = max(abs(x) for x in product)
        if norm == 0.0:
            return 0.0
        vector = [x / norm for x in product]
        if abs(norm - value) < tolerance * norm:
            return norm
        value = norm
    return value


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Split an integer ``total`` in proportion to ``weights`` (largest remainder; sums to ``total``)."""
    weight_sum = float(sum(weights))
    shares = [total * w / weight_sum for w in weights]
    counts = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts
