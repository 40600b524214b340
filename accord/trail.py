"""A session's trail: the ledger's entries read back as moves with their value traces."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from accord.ledger import Entry


class CitedCard(BaseModel):
    card: str
    title: str
    contribution: float


class TrailItem(BaseModel):
    idx: int
    actor: str
    kind: str
    round: int | None = None
    move: str | None = None
    offer: dict[str, str] | None = None
    utility: float | None = None
    cited: list[CitedCard] = []
    rationale: str | None = None
    detail: str | None = None
    value_model: str | None = None


def card_titles(open_body: dict[str, Any]) -> dict[str, str]:
    return {
        card["id"]: card["title"]
        for constituency in open_body.get("spec", {}).get("constituencies", [])
        for card in constituency.get("cards", [])
    }


def read_trail(rows: list[Entry], include_calls: bool = False) -> list[TrailItem]:
    """Moves, refusals, rejections, absences and the end, in ledger order."""
    titles: dict[str, str] = {}
    items: list[TrailItem] = []
    for row in rows:
        body = row.body
        if row.kind == "session.open":
            titles = card_titles(body)
            continue
        base = {"idx": row.idx, "actor": row.actor, "kind": row.kind, "round": body.get("round")}
        if row.kind == "move":
            move = body.get("move", {})
            just = move.get("justification", {})
            items.append(
                TrailItem(
                    **base,
                    move=move.get("kind"),
                    offer=move.get("offer"),
                    utility=just.get("utility"),
                    cited=[
                        CitedCard(
                            card=c["card"],
                            title=titles.get(c["card"], "(unknown card)"),
                            contribution=c["contribution"],
                        )
                        for c in just.get("cited", [])
                    ],
                    rationale=just.get("rationale"),
                    value_model=body.get("value_model"),
                )
            )
        elif row.kind == "refusal":
            refused = body.get("refused", {})
            items.append(
                TrailItem(**base, move=refused.get("kind"), offer=refused.get("offer"), detail=body.get("reason"))
            )
        elif row.kind == "ratification":
            r = body.get("ratification", {})
            verdict = "approved" if r.get("approved") else "NOT ratified"
            who = f" by {', '.join(r['by'])}" if r.get("by") else ""
            items.append(
                TrailItem(
                    **base,
                    offer=r.get("outcome"),
                    detail=f"{verdict}{who} ({r.get('source')}): {r.get('rule')}"
                    + (f"; {r['note']}" if r.get("note") else ""),
                )
            )
        elif row.kind == "rejection":
            items.append(TrailItem(**(base | {"actor": body.get("to", row.actor)}), detail=body.get("reason")))
        elif row.kind == "absence":
            items.append(TrailItem(**(base | {"actor": body["delegate"]}), detail=body.get("consequence")))
        elif row.kind == "refused-message":
            items.append(TrailItem(**base, detail=f"{body.get('topic')}: {body.get('reason')}"))
        elif row.kind == "ended":
            items.append(TrailItem(**base, offer=body.get("agreement"), detail=body.get("reason")))
        elif row.kind == "call" and include_calls:
            items.append(TrailItem(**base, detail=f"call to {body.get('to')}"))
        elif row.kind == "calls" and include_calls:  # one call put to many delegates at once
            to = [str(t) for t in body.get("to", [])]
            shown = ", ".join(to[:5]) + (f" and {len(to) - 5} more" if len(to) > 5 else "")
            items.append(TrailItem(**base, detail=f"call to {len(to)} delegates: {shown}"))
    return items
