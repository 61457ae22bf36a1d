"""Input data for the SEIR model: where the files are and how to read them.

Paths are resolved from this file's location, not from the current directory, so the model runs the
same from a pulled copy of the bundle in any folder.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from models.numerics import Matrix, dominant_eigenvalue

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DEMOGRAPHICS_CSV = DATA_DIR / "demographics.csv"
CONTACT_PATTERNS_CSV = DATA_DIR / "contact_patterns.csv"


@dataclass(frozen=True)
class Population:
    age_groups: tuple[str, ...]
    sizes: tuple[int, ...]
    contacts: tuple[tuple[float, ...], ...]  # contacts[i][j]: daily contacts of a person in i with group j

    @property
    def total(self) -> int:
        return sum(self.sizes)

    def next_generation_radius(self) -> float:
        """Spectral radius of C[i][j] * N[i] / N[j]: R0 = beta * infectious period * this radius."""
        scaled: Matrix = [
            [self.contacts[i][j] * self.sizes[i] / self.sizes[j] for j in range(len(self.sizes))]
            for i in range(len(self.sizes))
        ]
        return dominant_eigenvalue(scaled)


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_population(demographics: Path = DEMOGRAPHICS_CSV, contact_patterns: Path = CONTACT_PATTERNS_CSV) -> Population:
    """Age groups and sizes from ``demographics.csv``; the contact matrix from ``contact_patterns.csv``."""
    demo = read_rows(demographics)
    groups = tuple(row["age_group"] for row in demo)
    sizes = tuple(int(row["population"]) for row in demo)
    by_group = {row["age_group"]: row for row in read_rows(contact_patterns)}
    missing = [g for g in groups if g not in by_group]
    if missing:
        raise ValueError(f"{contact_patterns}: no contact row for age group(s) {', '.join(missing)}")
    contacts = tuple(tuple(float(by_group[i][j]) for j in groups) for i in groups)
    return Population(groups, sizes, contacts)
