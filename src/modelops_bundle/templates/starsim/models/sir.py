"""SIR outbreak on a random contact network, built with Starsim (3.x).

Agents get ages drawn from ``data/demographics.csv`` (Starsim's age format: ``age`` = lower edge of
each band, ``value`` = people in it; a last row with value 0 closes the top band). Each day every
agent has a Poisson number of contacts on a fresh random network, and an infectious contact transmits
with probability ``beta``; infections last a log-normal number of days.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import starsim as ss

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # works from a pulled copy in any folder


class StarsimSIR(ss.Sim):
    """An SIR disease on a random network, in daily steps."""

    def __init__(
        self,
        n_agents: int = 5_000,
        beta: float = 0.05,
        dur_inf: float = 7.0,
        init_prev: float = 0.005,
        n_contacts: float = 6.0,
        days: int = 180,
        rand_seed: int = 1,
        **kwargs,
    ) -> None:
        people = ss.People(n_agents=n_agents, age_data=pd.read_csv(DATA_DIR / "demographics.csv"))
        sir = ss.SIR(
            beta=ss.perday(beta),
            init_prev=ss.bernoulli(p=init_prev),
            dur_inf=ss.lognorm_ex(mean=ss.days(dur_inf)),
            p_death=ss.bernoulli(p=0.0),
        )
        network = ss.RandomNet(n_contacts=ss.poisson(lam=n_contacts))
        super().__init__(
            people=people,
            diseases=sir,
            networks=network,
            start=ss.days(0),
            stop=ss.days(days),
            dt=ss.days(1),
            rand_seed=rand_seed,
            verbose=0,
            **kwargs,
        )
