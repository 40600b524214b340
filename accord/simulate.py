"""A session without I/O: the protocol and the delegates in one loop, no bus, no ledger.

For researchers' batch experiments and benchmarks ("ledger off"). It delivers calls in
the order the protocol emits them and answers each at once, which is the order the
memory bus delivers them in, so a simulated session makes the same moves and reaches
the same outcome as `accord run` on the memory bus (a test checks this).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from accord.session_plan import SessionPlan
from protocols.events import Call, ChairEvent, Ended, Rejection
from protocols.moves import Move


@dataclass
class Simulation:
    ended: Ended
    moves: list[tuple[str, Move]] = field(default_factory=list)
    rejections: int = 0
    refusals: int = 0

    @property
    def messages(self) -> int:
        return len(self.moves)


def simulate(plan: SessionPlan, max_steps: int = 10_000_000) -> Simulation:
    """Run `plan` to its end in memory. The mandate is still enforced by each Delegate."""
    protocol = plan.new_protocol()
    delegates = {p.id: p.delegate for p in plan.participants}
    queue: deque[ChairEvent] = deque(protocol.start())
    result = Simulation(ended=None)  # type: ignore[arg-type]
    steps = 0
    while queue and not protocol.done:
        steps += 1
        if steps > max_steps:
            raise RuntimeError(f"simulation exceeded {max_steps} steps without ending")
        event = queue.popleft()
        if isinstance(event, Call):
            decision = delegates[event.to].decide(event)
            result.refusals += len(decision.refusals)
            result.moves.append((event.to, decision.move))
            queue.extend(protocol.receive(event.to, decision.move))
        elif isinstance(event, Rejection):
            result.rejections += 1
            delegates[event.to].strategy.observe_rejection(event.reason)
    if protocol.ended is None:
        raise RuntimeError("the protocol stopped calling delegates before it ended")
    result.ended = protocol.ended
    return result
