"""Analyse a finished search with pandas: which settings did well, and how trials learned.

hpo run search_spaces/digits_mlp.yaml
python examples/analyze_trials.py digits_mlp
"""

import sys

import pandas as pd

import hpo


def main(name: str) -> None:
    experiment = hpo.load(name)
    metric = f"best.{experiment.metric}"
    trials = experiment.trials()

    print(f"{experiment.name}: {len(trials)} trials")
    print(trials["status"].value_counts().to_string(), end="\n\n")

    # How the best value depends on depth, and on the learning rate (in decades).
    print(
        trials.groupby("params.model.num_layers")[metric].agg(["count", "max", "median"]),
        end="\n\n",
    )
    decades = pd.cut(trials["params.optimizer.lr"], [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    print(trials.groupby(decades, observed=True)[metric].agg(["count", "max"]), end="\n\n")

    # Learning curves: the metric per epoch for the five best trials, one column per trial.
    top = experiment.best(5)["trial_id"]
    history = experiment.history()
    curves = history[history["trial_id"].isin(top)].pivot(
        index="iteration", columns="trial_id", values=experiment.metric
    )
    print(curves.round(4).to_string())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "digits_mlp")
