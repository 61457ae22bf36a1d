"""Age-structured SEIR model of an outbreak in a town of 100,000.

People move Susceptible -> Exposed (infected, not yet infectious) -> Infectious -> Recovered. The force
of infection on age group i is ``beta * sum_j C[i][j] * I[j] / N[j]``, with the contact matrix C from
``data/contact_patterns.csv`` and the group sizes N from ``data/demographics.csv``; ``beta`` is set so
that the basic reproduction number (next-generation matrix) equals the parameter ``R0``.

Time is discrete (``steps_per_day`` steps a day) with exponential waiting times, so one set of update
rules gives two variants: the deterministic one moves the expected numbers of people, the stochastic
one draws them from binomial distributions seeded by ``seed`` (a chain-binomial model).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

try:
    from modelops_calabaria import BaseModel, ParameterSet, ParameterSpace, ParameterSpec, model_output
except ImportError:  # run stand-alone without Calabaria installed
    from models.base import BaseModel, ParameterSet, ParameterSpace, ParameterSpec, model_output

from models.helpers import Population, load_population
from models.numerics import allocate, binomial


def _table(columns: dict[str, list[Any]]) -> Any:
    """Calabaria wants polars DataFrames; the stand-alone base keeps plain columns."""
    if BaseModel.__module__.startswith("modelops_calabaria"):
        import polars as pl

        return pl.DataFrame(columns)
    return columns


@dataclass(frozen=True)
class SimState:
    population: Population
    beta: float  # transmission probability per contact
    sigma: float  # 1 / latent period
    gamma: float  # 1 / infectious period
    reporting_rate: float
    days: int
    steps_per_day: int
    initial_infected: int
    stochastic: bool


class SEIRModel(BaseModel):
    """Age-structured SEIR with a contact matrix; deterministic or chain-binomial stochastic."""

    PARAMS = ParameterSpace(
        [
            ParameterSpec("R0", 0.5, 6.0, "float", doc="basic reproduction number"),
            ParameterSpec("latent_period", 0.5, 14.0, "float", doc="mean days from infection to infectious"),
            ParameterSpec("infectious_period", 0.5, 21.0, "float", doc="mean days infectious"),
            ParameterSpec("reporting_rate", 0.0, 1.0, "float", doc="fraction of cases that are reported"),
        ]
    )
    DEFAULTS = {"R0": 1.8, "latent_period": 3.0, "infectious_period": 5.0, "reporting_rate": 0.3}

    def __init__(
        self,
        *,
        days: int = 180,
        initial_infected: int = 10,
        steps_per_day: int = 4,
        stochastic: bool = False,
        population: Population | None = None,
    ) -> None:
        super().__init__()
        self.days = days
        self.initial_infected = initial_infected
        self.steps_per_day = steps_per_day
        self.stochastic = stochastic
        self.population = population or load_population()

    def default_parameters(self, **updates: float) -> ParameterSet:
        return ParameterSet(self.space, {**self.DEFAULTS, **updates})

    def build_sim(self, params: ParameterSet, config: Any) -> SimState:
        gamma = 1.0 / params["infectious_period"]
        beta = params["R0"] * gamma / self.population.next_generation_radius()
        return SimState(
            population=self.population,
            beta=beta,
            sigma=1.0 / params["latent_period"],
            gamma=gamma,
            reporting_rate=params["reporting_rate"],
            days=self.days,
            steps_per_day=self.steps_per_day,
            initial_infected=self.initial_infected,
            stochastic=self.stochastic,
        )

    def run_sim(self, state: SimState, seed: int) -> dict[str, Any]:
        pop = state.population
        groups = range(len(pop.sizes))
        rng = random.Random(seed)

        def draw(n: Any, p: float) -> Any:
            """People moving out of a compartment of ``n`` with probability ``p`` each."""
            return binomial(rng, n, p) if state.stochastic else n * p

        infected0 = allocate(state.initial_infected, pop.sizes)
        S: list[Any] = [n - i0 for n, i0 in zip(pop.sizes, infected0)]
        E: list[Any] = [0] * len(pop.sizes)
        I: list[Any] = list(infected0)
        R: list[Any] = [0] * len(pop.sizes)
        ever_infected: list[Any] = list(infected0)

        dt = 1.0 / state.steps_per_day
        p_onset = 1.0 - math.exp(-state.sigma * dt)
        p_recover = 1.0 - math.exp(-state.gamma * dt)
        raw: dict[str, Any] = {k: [] for k in ("day", "infections", "cases", "reported", "S", "E", "I", "R")}
        for day in range(state.days):
            infections = cases = 0
            for _ in range(state.steps_per_day):
                prevalence = [I[j] / pop.sizes[j] for j in groups]
                for i in groups:
                    force = state.beta * sum(pop.contacts[i][j] * prevalence[j] for j in groups)
                    new_e = draw(S[i], 1.0 - math.exp(-force * dt))
                    new_i = draw(E[i], p_onset)
                    new_r = draw(I[i], p_recover)
                    S[i] -= new_e
                    E[i] += new_e - new_i
                    I[i] += new_i - new_r
                    R[i] += new_r
                    ever_infected[i] += new_e
                    infections += new_e
                    cases += new_i
            raw["day"].append(day)
            raw["infections"].append(infections)
            raw["cases"].append(cases)
            raw["reported"].append(draw(cases, state.reporting_rate))
            for name, compartment in (("S", S), ("E", E), ("I", I), ("R", R)):
                raw[name].append(sum(compartment))
        raw["ever_infected"] = ever_infected
        return raw

    @model_output("incidence")
    def extract_incidence(self, raw: dict[str, Any], seed: int) -> Any:
        """New infections, new infectious cases and reported cases per day."""
        return _table({k: raw[k] for k in ("day", "infections", "cases", "reported")})

    @model_output("compartments")
    def extract_compartments(self, raw: dict[str, Any], seed: int) -> Any:
        """People in S, E, I and R at the end of each day."""
        return _table({k: raw[k] for k in ("day", "S", "E", "I", "R")})

    @model_output("attack_rate")
    def extract_attack_rate(self, raw: dict[str, Any], seed: int) -> Any:
        """Share of each age group infected by the end of the run."""
        pop = self.population
        return _table(
            {
                "age_group": list(pop.age_groups),
                "population": list(pop.sizes),
                "infected": list(raw["ever_infected"]),
                "attack_rate": [x / n for x, n in zip(raw["ever_infected"], pop.sizes)],
            }
        )
