"""`uniform`: the baseline. A random sample of the pool, so skills come in their natural proportions.

Ignores the profile entirely: whatever gain it brings is what "more data of this kind" buys,
the yardstick the targeted strategies must beat.
"""

from __future__ import annotations

import random

from skillgap.target import Mixture, Request, draw


def uniform(req: Request) -> Mixture:
    rng = random.Random(f"uniform/{req.seed}")
    items = draw(req.pool, req.budget, rng)
    return Mixture("uniform", items, notes={"pool": len(req.pool), "repeats": max(0, req.budget - len(req.pool))})
