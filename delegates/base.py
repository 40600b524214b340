"""The strategy interface: (what the delegate knows, the chair's call) -> a move."""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from constituencies import Mandate, ValueModel
from delegates.outcome_space import OutcomeSpace
from protocols.agenda import Agenda
from protocols.events import Call
from protocols.moves import Move


class StrategyOptions(BaseModel):
    """Base for a strategy's options, as written under `delegates.<id>.options`."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class DelegateView:
    """Everything a strategy may read. It holds no keys and no way to reach the bus."""

    delegate_id: str
    agenda: Agenda
    model: ValueModel
    mandate: Mandate
    space: OutcomeSpace
    rng: random.Random

    @classmethod
    def build(
        cls, delegate_id: str, agenda: Agenda, model: ValueModel, mandate: Mandate, seed: int
    ) -> DelegateView:
        # A string seed is hashed with SHA-512 by `random`, so it does not depend on
        # PYTHONHASHSEED: the same session seed gives every delegate the same stream.
        return cls(
            delegate_id=delegate_id,
            agenda=agenda,
            model=model,
            mandate=mandate,
            space=OutcomeSpace(agenda, model, mandate),
            rng=random.Random(f"{seed}:{delegate_id}"),
        )


class Strategy(ABC):
    """Decides moves. Subclasses set `name`, `description` and `Options`."""

    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[StrategyOptions]] = StrategyOptions

    def __init__(self, view: DelegateView, options: StrategyOptions | None = None) -> None:
        self.view = view
        self.options = options if options is not None else self.Options()

    @abstractmethod
    def respond(self, call: Call) -> Move:
        """The move to make when called. The delegate wrapper checks it against the mandate."""

    def observe_rejection(self, reason: str) -> None:  # noqa: B027 - optional hook
        """The chair refused this delegate's last move; strategies may adapt."""
