"""`skill-it`: online data mixing over a skills graph.

Skill-it! (Chen, Roberts, Bhatia, Wang, Zhang, Sala, Ré; "A Data-Driven Skills Framework for
Understanding and Training Language Models", NeurIPS 2023), Algorithm 1, as its reference code
(`trainer/mw_trainer.py`) runs it:

    p_i  ∝  exp(η · Σ_j A[i,j] · Σ_{τ in the last w evaluations} L_j(τ))

Training on skill i is worth more while the skills it helps (A[i,j] > 0) still have high
validation loss L_j. Before any evaluation, p_i ∝ exp(η · Σ_j A[i,j]) (a unit loss per skill).
As in the reference, an off-diagonal 1 in a hand-given graph counts 0.5 (estimated graphs are used
as they are), and the
window `w` counts evaluations, not rounds: with evaluations every 50 steps and rounds of 1000,
an update sees the last 150 steps of loss history. The weights change once per round, i.e.
every `every` evaluations.

A pure object: `weights()` and `update(losses)`; the training loop decides when to evaluate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from skillgap.graph import SkillsGraph


@dataclass
class SkillIt:
    graph: SkillsGraph
    eta: float = 0.5  # the paper: 0.5 for LEGO, 0.1 for Addition
    window: int = 3  # evaluations summed per update
    every: int = 1  # evaluations per round: the weights change every `every` updates
    history: list[list[float]] = field(default_factory=list)  # one loss vector per evaluation
    _w: list[float] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.eta < 0 or self.window < 1 or self.every < 1:
            raise ValueError("Skill-it needs eta >= 0, window >= 1 and every >= 1.")
        n = len(self.graph.skills)
        hand = self.graph.source == "hand"
        self.A = [[0.5 if hand and i != j and x == 1 else x for j, x in enumerate(row)]
                  for i, row in enumerate(self.graph.matrix)]
        self._w = self._mix([1.0] * n)

    @property
    def skills(self) -> list[str]:
        return list(self.graph.skills)

    def _mix(self, loss: list[float]) -> list[float]:
        z = [self.eta * sum(a * l for a, l in zip(row, loss)) for row in self.A]
        top = max(z)
        e = [math.exp(x - top) for x in z]  # shifted: large losses must not overflow
        return [x / sum(e) for x in e]

    def weights(self) -> dict[str, float]:
        return dict(zip(self.graph.skills, self._w))

    def update(self, losses: dict[str, float]) -> None:
        """Record one evaluation (per-skill validation loss); at the end of a round, re-weight."""
        self.history.append([float(losses[s]) for s in self.graph.skills])
        if len(self.history) % self.every == 0:
            recent = self.history[-self.window:]
            self._w = self._mix([sum(col) for col in zip(*recent)])
