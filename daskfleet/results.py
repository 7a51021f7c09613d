"""Per-host outcomes of anything that fans out over hosts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from daskfleet.errors import DaskfleetError, UnreachableError

T = TypeVar("T")


@dataclass(frozen=True)
class HostResult(Generic[T]):
    """What happened on one host: a value, or the error that stopped it."""

    host: str
    value: T | None = None
    error: DaskfleetError | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def unreachable(self) -> bool:
        return isinstance(self.error, UnreachableError)

    def unwrap(self) -> T:
        """The value, or raise the host's error."""
        if self.error is not None:
            raise self.error
        assert self.value is not None
        return self.value


class Results(Mapping[str, HostResult[T]]):
    """Host name to result, in inventory order, with succeeded/failed views."""

    def __init__(self, results: Mapping[str, HostResult[T]]) -> None:
        self._results = dict(results)

    def __getitem__(self, host: str) -> HostResult[T]:
        return self._results[host]

    def __iter__(self) -> Iterator[str]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    @property
    def succeeded(self) -> dict[str, T]:
        return {
            name: r.value
            for name, r in self._results.items()
            if r.ok and r.value is not None
        }

    @property
    def failed(self) -> dict[str, DaskfleetError]:
        return {
            name: r.error for name, r in self._results.items() if r.error is not None
        }

    @property
    def ok(self) -> bool:
        return not self.failed
