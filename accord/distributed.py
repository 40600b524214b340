"""Delegates in their own processes: a chair host, delegate hosts, and a launcher.

Over a broker (MQTT), each delegate can run in its own process, on its own machine,
with only its own private key. The handshake, all over the bus:

1. A delegate host subscribes to its delegates' inboxes, then announces itself on its
   retained presence topic (`online`, with its delegates' public keys) and leaves an
   `offline` will with the broker.
2. The chair waits until every delegate of the session is present, writes the signed
   `session.open` listing every key, and publishes it (also retained, for latecomers).
3. A delegate trusts the opening that is signed by the chair key it names and lists the
   delegate's own key and the session file's hash; from then on it acts only on words
   signed by that chair.
4. If a host dies, the broker publishes its will: the chair records the absence and the
   protocol applies its rule at once. A restarted host (same key, same client id)
   announces itself again; the chair sends it its history (`resync`), which it replays
   before answering anything, and calls it again if a call is pending.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from accord.bus import open_bus
from accord.bus.topics import chair_topic, presence_filter
from accord.chair import CHAIR, Chair
from accord.delegate_runner import ChairWords, DelegateRunner
from accord.keystore import KeyStore
from accord.ledger import Ledger, PublicKeys, Signer
from accord.presence import GROUP_HOST_PREFIX, Presence, speaks_for
from accord.progress import ProgressSink
from accord.session import SessionResult, finish, new_session_id, opening_body
from accord.session_plan import SessionPlan


class HostError(RuntimeError):
    pass


def with_client_id(bus_url: str, client_id: str) -> str:
    """The bus URL with a stable MQTT client id (a persistent broker session), unless given."""
    parts = urlsplit(bus_url)
    if not parts.scheme.startswith("mqtt"):
        return bus_url
    query = dict(parse_qsl(parts.query))
    query.setdefault("client_id", client_id)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def wait_for_delegates(
    bus_url: str, session_id: str, expected: Sequence[str], spec_hash: str, wait_s: float
) -> dict[str, str]:
    """Public keys of every expected delegate, from their hosts' presence."""
    keys: dict[str, str] = {}
    async with open_bus(with_client_id(bus_url, f"accord-{session_id}-roll")) as bus, bus.subscribe(
        presence_filter(session_id)
    ) as presence:

        async def collect() -> None:
            async for message in presence:
                try:
                    p = Presence.model_validate_json(message.payload)
                except ValueError:
                    continue
                if p.status != "online":
                    continue
                if p.spec_hash != spec_hash:
                    raise HostError(
                        f"host {p.host} runs a different session file ({p.spec_hash}, chair {spec_hash})"
                    )
                keys.update(
                    {
                        d: k
                        for d, k in p.delegates.items()
                        if d in expected and speaks_for(message.topic, p, d, expected)
                    }
                )
                if set(expected) <= set(keys):
                    return

        try:
            await asyncio.wait_for(collect(), wait_s)
        except TimeoutError:
            missing = sorted(set(expected) - set(keys))
            raise HostError(
                f"after {wait_s:.0f} s, no delegate process has announced: {', '.join(missing)} "
                f"(start them with `accord delegate FILE --session {session_id} --as ID --bus {bus_url}`)"
            ) from None
    return keys


async def host_chair(
    plan: SessionPlan,
    ledger: Ledger,
    session_id: str,
    bus_url: str,
    keystore: KeyStore,
    *,
    wait_s: float = 60.0,
    progress: ProgressSink | None = None,
) -> SessionResult:
    """Run the chair for delegates in other processes; it keeps the ledger."""
    chair_identity, _ = keystore.actor_identity(session_id, CHAIR)
    participants = [p.id for p in plan.participants]
    keys = await wait_for_delegates(bus_url, session_id, participants, plan.spec_hash, wait_s)
    keys[CHAIR] = chair_identity.public_key
    await ledger.create_session(session_id, plan.spec.id, plan.spec.title, plan.spec_hash)
    async with open_bus(with_client_id(bus_url, f"accord-{session_id}-chair")) as bus:
        chair = Chair(
            session_id,
            plan.new_protocol(),
            Signer(chair_identity, session_id),
            PublicKeys(keys),
            bus,
            ledger,
            plan.spec.turn_timeout_s,
            progress,
            watch_presence=True,
        )
        ended = await chair.run(opening_body(plan, session_id, keys))
        final = await ledger.seal(session_id, chair_identity, [])
        await bus.publish(chair_topic(session_id, "checkpoint"), final.text.encode(), retain=True)
    return await finish(plan, ledger, session_id, ended, chair._recorded)


async def host_delegates(
    plan: SessionPlan,
    session_id: str,
    delegate_ids: Sequence[str],
    bus_url: str,
    keystore: KeyStore,
    host: str | None = None,
) -> None:
    """Run some of the session's delegates over one connection until the session closes."""
    known = {p.id: p for p in plan.participants}
    unknown = [d for d in delegate_ids if d not in known]
    if unknown:
        # The plan may hold only this host's delegates (`build_plan(only=...)`): name
        # every constituency of the file, not just the ones built.
        ids = ", ".join(c.id for c in plan.spec.constituencies)
        raise HostError(f"no delegate {', '.join(unknown)} in this session file (known: {ids})")
    host = host or (
        delegate_ids[0] if len(delegate_ids) == 1 else f"{GROUP_HOST_PREFIX}{delegate_ids[0]}-{len(delegate_ids)}"
    )
    identities = {d: keystore.actor_identity(session_id, d) for d in delegate_ids}
    public = {d: i.public_key for d, (i, _) in identities.items()}
    online = Presence(host=host, status="online", delegates=public, spec_hash=plan.spec_hash)
    will = online.model_copy(update={"status": "offline"}).message(session_id)
    async with open_bus(with_client_id(bus_url, f"accord-{session_id}-{host}"), will=will) as bus:
        words = ChairWords()  # one parse of each chair message (the opening too) per host
        runners = [
            DelegateRunner(
                session_id,
                known[d].delegate,
                Signer(identity, session_id),
                None,
                bus,
                known[d].model.hash,
                spec_hash=plan.spec_hash,
                expect_resync=existed,
                words=words,
            )
            for d, (identity, existed) in identities.items()
        ]
        tasks = [asyncio.create_task(r.run(), name=f"delegate:{r.delegate.id}") for r in runners]
        message = online.message(session_id)

        async def announce() -> None:
            await bus.publish(message.topic, message.payload, retain=True)

        if hasattr(bus, "on_reconnect"):
            bus.on_reconnect = announce  # the broker may have sent our will meanwhile
        try:
            await asyncio.gather(*(r.ready.wait() for r in runners))
            await announce()
            await asyncio.gather(*tasks)
            # A clean goodbye: clear the retained presence (the will is not sent).
            await bus.publish(message.topic, b"", retain=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def delegate_command(
    file: Path, session_id: str, delegate_ids: Sequence[str], bus_url: str, keys_dir: Path
) -> list[str]:
    """The command line that runs `delegate_ids` in a process of their own."""
    command = [sys.executable, "-m", "accord.cli", "delegate", str(file), "--session", session_id]
    command += ["--bus", bus_url, "--keys", str(keys_dir)]
    for d in delegate_ids:
        command += ["--as", d]
    return command


async def launch(
    plan: SessionPlan,
    file: Path,
    ledger: Ledger,
    bus_url: str,
    keystore: KeyStore,
    *,
    per_process: int = 1,
    progress: ProgressSink | None = None,
) -> SessionResult:
    """`accord run --bus mqtt://...`: each delegate (or group) in its own process."""
    session_id = new_session_id(plan.spec.id)
    ids = [p.id for p in plan.participants]
    groups = [ids[n : n + per_process] for n in range(0, len(ids), per_process)]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            delegate_command(file, session_id, group, bus_url, keystore.directory),
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for group in groups
    ]
    try:
        result = await host_chair(plan, ledger, session_id, bus_url, keystore, progress=progress)
        for proc in procs:
            await asyncio.to_thread(proc.wait, 30)
        failed = [p for p in procs if p.returncode]
        if failed:
            err = failed[0].stderr.read().decode(errors="replace") if failed[0].stderr else ""
            raise HostError(f"a delegate process exited with {failed[0].returncode}: {err[-2000:]}")
        return result
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
