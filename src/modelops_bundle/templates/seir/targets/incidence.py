"""Calibration target: weekly reported cases against the surveillance data.

Calling ``incidence_target()`` loads ``data/observed_incidence.csv`` and returns the target's loss, a
function of the model output ``incidence``: the Poisson deviance between observed weekly reported
cases and the simulated ones (0 for a perfect fit; smaller is better).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from typing import Any

try:
    from modelops_calabaria import calibration_target
except ImportError:  # run stand-alone without Calabaria installed
    from targets._compat import calibration_target


class WeeklyIncidenceLoss:
    """Poisson deviance between observed and simulated weekly reported cases."""

    def __init__(self, weeks: list[int], observed: list[float]) -> None:
        self.weeks = weeks
        self.observed = observed

    def simulated_weekly(self, incidence: Mapping[str, Any]) -> list[float]:
        totals = dict.fromkeys(self.weeks, 0.0)
        for day, reported in zip(incidence["day"], incidence["reported"]):
            week = int(day) // 7 + 1
            if week in totals:
                totals[week] += float(reported)
        return [totals[w] for w in self.weeks]

    def __call__(self, incidence: Mapping[str, Any]) -> float:
        deviance = 0.0
        for y, mu in zip(self.observed, self.simulated_weekly(incidence)):
            mu = max(mu, 1e-9)
            deviance += 2.0 * ((y * math.log(y / mu) if y > 0 else 0.0) - (y - mu))
        return deviance


@calibration_target(
    name="incidence",
    model_output="incidence",
    data={"observed": "data/observed_incidence.csv"},
)
def incidence_target(data_paths: Mapping[str, str]) -> WeeklyIncidenceLoss:
    with open(data_paths["observed"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return WeeklyIncidenceLoss([int(r["week"]) for r in rows], [float(r["reported_cases"]) for r in rows])
