"""A small stand-in for Calabaria's model API, so the example runs with the standard library alone.

When ``modelops-calabaria`` is installed, ``models/seir.py`` uses the real classes instead. This file
keeps the same shape (``PARAMS``, ``build_sim`` / ``run_sim``, ``@model_output``) with plain Python
values: parameters are a mapping of numbers, and each output is a table given as a dict of columns
(``{"day": [...], "cases": [...]}``) instead of a polars DataFrame.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

Table = dict[str, list[Any]]


@dataclass(frozen=True)
class ParameterSpec:
    """One calibratable parameter: its name, bounds and what it means."""

    name: str
    min: float
    max: float
    kind: str = "float"  # "float" or "int"
    doc: str = ""

    def validate(self, value: float) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"parameter {self.name} must be a number, got {value!r}")
        if not math.isfinite(value) or not self.min <= value <= self.max:
            raise ValueError(f"parameter {self.name}={value} outside [{self.min}, {self.max}]")
        return int(value) if self.kind == "int" else float(value)


class ParameterSpace:
    """The complete set of parameters a model accepts."""

    def __init__(self, specs: Iterable[ParameterSpec]) -> None:
        self.specs = tuple(specs)
        self._by_name = {spec.name: spec for spec in self.specs}
        if len(self._by_name) != len(self.specs):
            raise ValueError("duplicate parameter names")

    def names(self) -> list[str]:
        return [spec.name for spec in self.specs]

    def get_spec(self, name: str) -> ParameterSpec:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __len__(self) -> int:
        return len(self.specs)


class ParameterSet(Mapping[str, float]):
    """A complete, validated assignment of a value to every parameter of a space."""

    def __init__(self, space: ParameterSpace, values: Mapping[str, float]) -> None:
        unknown = sorted(set(values) - set(space.names()))
        missing = sorted(set(space.names()) - set(values))
        if unknown or missing:
            raise ValueError(f"parameters: unknown {unknown}, missing {missing}")
        self.space = space
        self.values = {name: space.get_spec(name).validate(values[name]) for name in space.names()}

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def with_updates(self, **updates: float) -> ParameterSet:
        return ParameterSet(self.space, {**self.values, **updates})

    def to_dict(self) -> dict[str, float]:
        return dict(self.values)

    def __repr__(self) -> str:
        return "ParameterSet(" + ", ".join(f"{k}={v:g}" for k, v in self.values.items()) + ")"


def model_output(name: str) -> Callable[[Callable[..., Table]], Callable[..., Table]]:
    """Mark a method ``(self, raw, seed) -> table`` as the extractor of the output ``name``.

    Tools read the decorator from the source (modelops-bundle lists a model's outputs this way), and
    :meth:`BaseModel.simulate` calls every marked method after a run.
    """

    def mark(method: Callable[..., Table]) -> Callable[..., Table]:
        method._is_model_output = True  # type: ignore[attr-defined]
        method._output_name = name  # type: ignore[attr-defined]
        return method

    return mark


class BaseModel(ABC):
    """A simulation model: ``build_sim`` (no randomness) then ``run_sim`` (all randomness from ``seed``).

    Subclasses implement both (they are abstract: a model missing one cannot even be instantiated)."""

    PARAMS: ParameterSpace | None = None
    _discovered_outputs: dict[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.PARAMS, ParameterSpace):
            raise TypeError(f"{cls.__name__}.PARAMS must be a ParameterSpace")
        outputs = dict(getattr(cls, "_discovered_outputs", {}))
        for attr_name, attr in vars(cls).items():
            if getattr(attr, "_is_model_output", False):
                outputs[attr._output_name] = attr_name
        cls._discovered_outputs = outputs

    def __init__(self, *, base_config: Mapping[str, Any] | None = None) -> None:
        self.space: ParameterSpace = type(self).PARAMS  # type: ignore[assignment]
        self.base_config = dict(base_config or {})

    @abstractmethod
    def build_sim(self, params: ParameterSet, config: Mapping[str, Any]) -> Any:
        """Everything deterministic: the model's state for ``params``."""

    @abstractmethod
    def run_sim(self, state: Any, seed: int) -> Any:
        """One run from ``state``; all randomness comes from ``seed``."""

    def list_outputs(self) -> list[str]:
        return sorted(self._discovered_outputs)

    def extract_outputs(self, raw: Any, seed: int) -> dict[str, Table]:
        return {name: getattr(self, method)(raw, seed) for name, method in sorted(self._discovered_outputs.items())}

    def simulate(self, params: ParameterSet | Mapping[str, float], seed: int) -> dict[str, Table]:
        """Run once: every output by name. ``params`` may also be a plain mapping of all parameters."""
        if not isinstance(params, ParameterSet):
            params = ParameterSet(self.space, params)
        state = self.build_sim(params, self.base_config)
        return self.extract_outputs(self.run_sim(state, seed), seed)
