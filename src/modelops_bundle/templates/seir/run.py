"""Run the SEIR model once and print a short summary; ``--fit`` also does a small grid calibration.

python run.py                      # deterministic run with the default parameters
python run.py --stochastic --seed 3
python run.py --R0 2.1 --reporting-rate 0.25
python run.py --fit                # grid search of R0 and reporting rate against the target
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # import models/ and targets/ from any folder

from models.seir import SEIRModel
from targets.incidence import incidence_target


def summarise(model: SEIRModel, params, seed: int) -> None:
    outputs = model.simulate(params, seed)
    incidence, attack = outputs["incidence"], outputs["attack_rate"]
    cases = list(incidence["cases"])
    peak = max(range(len(cases)), key=cases.__getitem__)
    infected = sum(attack["infected"])
    pop = model.population
    mode = f"stochastic, seed {seed}" if model.stochastic else "deterministic"
    print(f"SEIR model: {len(pop.age_groups)} age groups, {pop.total:,} people, {model.days} days ({mode})")
    print("parameters: " + ", ".join(f"{k}={v:g}" for k, v in params.to_dict().items()))
    print(f"peak: day {peak}, {cases[peak]:,.0f} new infectious cases ({incidence['reported'][peak]:,.0f} reported)")
    print(f"attack rate: {infected / pop.total:.1%} ({infected:,.0f} people infected)")
    for group, rate in zip(attack["age_group"], attack["attack_rate"]):
        print(f"  {group:>6}  {rate:6.1%}")
    loss = incidence_target()(incidence)
    print(f"target 'incidence' (Poisson deviance vs data/observed_incidence.csv): {loss:,.1f}")


def fit(model: SEIRModel) -> None:
    """A coarse grid search; real calibration would hand the target to Calabaria's optimisers."""
    loss = incidence_target()
    best = None
    for r0 in [1.5 + 0.1 * i for i in range(11)]:
        for rate in [0.15 + 0.05 * i for i in range(6)]:
            params = model.default_parameters(R0=round(r0, 2), reporting_rate=round(rate, 2))
            value = loss(model.simulate(params, seed=0)["incidence"])
            if best is None or value < best[0]:
                best = (value, params)
    assert best is not None
    print(
        f"best of 66 grid points: deviance {best[0]:,.1f} at R0={best[1]['R0']:g}, "
        f"reporting_rate={best[1]['reporting_rate']:g}"
    )
    summarise(model, best[1], seed=0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stochastic", action="store_true", help="chain-binomial draws instead of expected values")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the stochastic run (default: 0)")
    parser.add_argument("--days", type=int, default=180, help="days to simulate (default: 180)")
    for name in SEIRModel.DEFAULTS:
        parser.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=float, help=f"default: {SEIRModel.DEFAULTS[name]}"
        )
    parser.add_argument("--fit", action="store_true", help="grid-search R0 and reporting rate against the target")
    args = parser.parse_args(argv)
    model = SEIRModel(days=args.days, stochastic=args.stochastic)
    if args.fit:
        fit(model)
        return
    updates = {k: getattr(args, k) for k in SEIRModel.DEFAULTS if getattr(args, k) is not None}
    summarise(model, model.default_parameters(**updates), args.seed)


if __name__ == "__main__":
    main()
