"""Removed replicas stop together: every stop is under way before any one of them returns."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import docker.errors
import pytest

from scaleout.errors import StackError
from scaleout.targets.removal import MAX_PARALLEL, stop_and_remove


class FakeContainer:
    def __init__(self, client: FakeClient, name: str) -> None:
        self.client, self.name = client, name

    def stop(self, timeout: int) -> None:
        self.client.graces.append(timeout)
        if self.client.barrier is not None:
            self.client.barrier.wait()  # breaks (BrokenBarrierError) unless the others stop meanwhile
        if self.name in self.client.refuse:
            raise docker.errors.APIError(f"cannot stop {self.name}")

    def remove(self) -> None:
        self.client.removed.append(self.name)


class FakeClient:
    def __init__(self, names: list[str], together: int = 0, refuse: tuple[str, ...] = ()) -> None:
        self.names = set(names)
        self.removed: list[str] = []
        self.graces: list[int] = []
        self.refuse = refuse
        self.barrier = threading.Barrier(together, timeout=10) if together else None
        self.containers = SimpleNamespace(get=self.get)

    def get(self, name: str) -> FakeContainer:
        if name not in self.names:
            raise docker.errors.NotFound(name)
        return FakeContainer(self, name)


def test_stops_run_together_and_the_grace_period_is_given_once_to_each():
    names = [f"p-backend-{i}-1" for i in range(5, 33)]  # 32 -> 4: 28 to stop, all at once
    client = FakeClient(names, together=len(names))
    assert len(names) <= MAX_PARALLEL
    said: list[str] = []
    assert stop_and_remove(names, said.append, client=client) == names
    assert sorted(client.removed) == sorted(names)
    assert client.graces == [10] * len(names)
    assert len(said) == 1 and said[0].startswith("stopping 28 container(s) together")


def test_a_container_already_gone_counts_as_removed():
    client = FakeClient(["a"])
    assert stop_and_remove(["a", "gone", "a"], client=client) == ["a", "gone"]
    assert client.removed == ["a"]


def test_every_container_is_attempted_before_the_first_error_is_raised():
    client = FakeClient(["a", "b", "c"], refuse=("b",))
    with pytest.raises(StackError, match="removing b"):
        stop_and_remove(["a", "b", "c"], client=client)
    assert sorted(client.removed) == ["a", "c"]


def test_nothing_to_remove_asks_nothing_of_the_engine():
    assert stop_and_remove([], client=None) == []
