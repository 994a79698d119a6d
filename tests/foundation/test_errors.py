"""The error hierarchy survives the trip back from a planning worker (pickled, as a process pool sends it)."""

from __future__ import annotations

import pickle

from foundation.errors import EngineError, InputError, Problem


def test_an_input_error_comes_back_from_a_worker_with_its_problems() -> None:
    error = InputError([Problem("stacks/Pulumi.region-eu-central.yaml", "config.launchedCountries[3]", "unknown XX")])
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is InputError
    assert back.problems == error.problems
    assert str(back) == str(error) == "stacks/Pulumi.region-eu-central.yaml: config.launchedCountries[3]: unknown XX"
    assert back.exit_code == 2


def test_an_engine_error_keeps_its_message() -> None:
    back = pickle.loads(pickle.dumps(EngineError("stack global: the program failed")))
    assert type(back) is EngineError and str(back) == "stack global: the program failed"
