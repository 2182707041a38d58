"""Run a search from Python, overriding the spec, then read the trials as a pandas table.

python examples/python_api.py
"""

from pathlib import Path

import hpo

SPEC = Path(__file__).resolve().parent.parent / "search_spaces" / "digits_mlp.yaml"


def main() -> None:
    # Keyword overrides are spec keys; `__` stands for the dots of nested keys.
    experiment = hpo.run(SPEC, name="api-example", budget__num_samples=12, training__epochs=10)

    trials = experiment.trials()
    print(trials[["number", "status", "iterations", "best.val_accuracy"]].to_string(index=False))

    best = experiment.best(1).iloc[0]
    print(f"\nbest trial {best['number']}: val_accuracy {best['best.val_accuracy']:.4f}")
    print("its config:", experiment.config(best["trial_id"]))


if __name__ == "__main__":
    main()
