"""The skills graph of Skill-it! (Chen et al., 2023): which skills help learn which.

`A[i][j]` is how much training on skill i lowers the loss of skill j (rows: training skills,
columns: evaluated skills; the diagonal is the skill itself). A graph is either given by hand,
in the paper's row notation (`"10000/11110/00100/00010/00001"`: skill 1 helps skills 0-3), or
estimated from a model: for each skill i, train briefly on i alone and measure every skill's
validation loss before and after. With gain[i][j] = L_j(before) - L_j(after training on i),

    A[i][j] = gain[i][j] / max_k |gain[k][j]|

so every column lies in [-1, 1]: 1 for the skill whose training lowers j's loss most, negative
where training on i raises it. Dividing by j's own gain instead (diagonal 1) explodes when a
skill barely moves on its own data, which is exactly when it is not learned yet. A column whose
loss moves by less than `tol` whatever is trained carries no signal: it is all zero, and named
in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skillgap.errors import ConfigError, DataError
from skillgap.io import read_json, write_json


@dataclass(frozen=True)
class SkillsGraph:
    skills: tuple[str, ...]
    matrix: tuple[tuple[float, ...], ...]  # matrix[i][j]: training on skills[i] helps skills[j]
    source: str = "hand"  # "hand" | "estimated"
    notes: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        n = len(self.skills)
        if len(self.matrix) != n or any(len(row) != n for row in self.matrix):
            raise ConfigError(f"A skills graph over {n} skills needs a {n}x{n} matrix; got "
                              f"{len(self.matrix)} rows of lengths {sorted({len(r) for r in self.matrix})}.")

    def edges(self) -> list[tuple[str, str, float]]:
        """(i, j, weight) for every off-diagonal entry above zero."""
        return [(a, b, w) for i, a in enumerate(self.skills) for j, b in enumerate(self.skills)
                if i != j and (w := self.matrix[i][j]) > 0]

    def order(self) -> list[str]:
        """Skills that help others first (Kahn's algorithm on the positive edges; ties and cycles keep inventory order)."""
        n = len(self.skills)
        incoming = {j: {i for i in range(n) if i != j and self.matrix[i][j] > 0} for j in range(n)}
        done: list[int] = []
        while len(done) < n:
            ready = [j for j in range(n) if j not in done and not incoming[j] - set(done)]
            done.append(ready[0] if ready else next(j for j in range(n) if j not in done))
        return [self.skills[j] for j in done]

    def to_dict(self) -> dict[str, Any]:
        return {"skills": list(self.skills), "matrix": [list(r) for r in self.matrix], "source": self.source,
                "notes": self.notes}


def parse_rows(spec: str, skills: list[str]) -> SkillsGraph:
    """The paper's notation: rows separated by '/', one digit per column ('10000/11110/...')."""
    rows = [r.strip() for r in spec.split("/")]
    if len(rows) != len(skills) or any(len(r) != len(skills) or set(r) - {"0", "1"} for r in rows):
        raise ConfigError(f"Graph {spec!r}: expected {len(skills)} rows of {len(skills)} digits 0/1 separated by "
                          f"'/', one per skill ({', '.join(skills)}), e.g. "
                          f"{'/'.join(''.join('1' if i == j else '0' for j in range(len(skills))) for i in range(len(skills)))}.")
    return SkillsGraph(tuple(skills), tuple(tuple(float(c) for c in r) for r in rows), "hand", {"spec": spec})


def load_graph(spec: str, skills: list[str]) -> SkillsGraph:
    """A graph JSON file (as `skillgap graph` writes it) or the row notation, checked against `skills`."""
    path = Path(spec)
    if not path.is_file():
        if "/" in spec or set(spec) <= {"0", "1"}:
            return parse_rows(spec, skills)
        raise ConfigError(f"--graph {spec!r} is neither a graph JSON file nor rows like '100/110/001'.")
    d = read_json(path)
    for key in ("skills", "matrix"):
        if key not in d:
            raise DataError(path, None, key, "missing")
    if list(d["skills"]) != list(skills):
        raise DataError(path, None, "skills", f"the graph is over {d['skills']}, the data over {skills}")
    try:
        matrix = tuple(tuple(float(x) for x in row) for row in d["matrix"])
    except (TypeError, ValueError):
        raise DataError(path, None, "matrix", "expected a list of rows of numbers") from None
    return SkillsGraph(tuple(d["skills"]), matrix, d.get("source", "hand"), d.get("notes") or {})


def from_losses(skills: list[str], before: dict[str, float], after: dict[str, dict[str, float]],
                tol: float = 1e-3) -> SkillsGraph:
    """The normalised graph from losses before and after training on each skill alone (`after[i][j]`)."""
    gain = {i: {j: before[j] - after[i][j] for j in skills} for i in skills}
    scale = {j: max(abs(gain[i][j]) for i in skills) for j in skills}
    flat = [j for j in skills if scale[j] < tol]
    matrix = tuple(tuple(0.0 if j in flat else round(gain[i][j] / scale[j], 4) for j in skills) for i in skills)
    notes: dict[str, Any] = {"loss_before": before, "loss_after": after}
    if flat:
        notes["no_signal"] = flat
    return SkillsGraph(tuple(skills), matrix, "estimated", notes)


def write_graph(graph: SkillsGraph, path: str | Path, title: str = "") -> tuple[Path, Path]:
    """`path` (JSON) and a heat-map beside it (`.png`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = write_json(graph.to_dict(), path)
    n = len(graph.skills)
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * n, 1.0 + 0.7 * n), dpi=120)
    values = [list(r) for r in graph.matrix]
    top = max(1.0, max(abs(x) for r in values for x in r))
    im = ax.imshow(values, cmap="RdBu", vmin=-top, vmax=top)
    ax.set_xticks(range(n), graph.skills, rotation=45, ha="right")
    ax.set_yticks(range(n), graph.skills)
    ax.set_xlabel("evaluated skill j")
    ax.set_ylabel("trained skill i")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{values[i][j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if abs(values[i][j]) > 0.6 * top else "black")
    ax.set_title(title or f"skills graph ({graph.source})", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    png = path.with_suffix(".png")
    fig.savefig(png)
    plt.close(fig)
    return path, png
