"""Who decides: strategies that turn (value model, protocol call) into a move.

Pure and deterministic given a seed. The mandate is enforced around the strategy
(`Delegate.decide`), never by it.
"""

from delegates.base import DelegateView, Strategy, StrategyOptions
from delegates.delegate import Decision, Delegate, Refusal
from delegates.justification import justify
from delegates.outcome_space import OutcomeSpace

__all__ = [
    "Decision",
    "Delegate",
    "DelegateView",
    "OutcomeSpace",
    "Refusal",
    "Strategy",
    "StrategyOptions",
    "justify",
]
