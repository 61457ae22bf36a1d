"""Run the Starsim SIR model once and print a short summary: python run.py [--seed N]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # import models/ from any folder

from models.sir import StarsimSIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--agents", type=int, default=5_000)
    args = parser.parse_args()
    sim = StarsimSIR(n_agents=args.agents, rand_seed=args.seed)
    sim.run()
    res = sim.results.sir
    infected = res.n_infected.values
    peak = int(infected.argmax())
    attack = 1 - res.n_susceptible.values[-1] / args.agents
    print(f"Starsim SIR: {args.agents:,} agents, days 0-{len(infected) - 1}, seed {args.seed}")
    print(f"peak: day {peak}, {int(infected[peak]):,} infectious; attack rate {attack:.1%}")


if __name__ == "__main__":
    main()
