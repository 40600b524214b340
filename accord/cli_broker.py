"""`accord broker-config FILE -o DIR`: a Mosquitto configuration with a user per delegate.

Register it on the main CLI with ``app.command("broker-config")(broker_config)``.
The work is done by `accord.broker_config`; this module parses options and reports.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from accord.broker_config import BrokerConfigError, WrittenConfig, write_broker_config
from accord.session_file import SessionFileError

console = Console()
err = Console(stderr=True)


def broker_config(
    file: Annotated[
        Path, typer.Argument(help="Session file (YAML or JSON) whose delegates get users.")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Directory to write the broker's files into.")
    ],
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default 1883, or 8883 with TLS).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    public_host: Annotated[
        str | None,
        typer.Option(
            "--public-host",
            help="Broker host name in the URLs handed out (default: --host, or this "
            "machine's name when --host is a wildcard). With TLS, the name on the certificate.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option("--tls-cert", help="Broker certificate (PEM): the listener speaks TLS only."),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", help="Private key of --tls-cert (PEM).")
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option(
            "--ca",
            help="CA certificate that signed --tls-cert; written as the listener's cafile and "
            "as ?ca=PATH in the URLs (clients then verify the broker against it).",
        ),
    ] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(
            "--group",
            help="NAME=D1,D2: a user for a host running several delegates "
            "(run it with `accord delegate --as D1 --as D2 --host NAME`). Repeatable.",
        ),
    ] = None,
    run_as: Annotated[
        str | None,
        typer.Option(
            "--run-as",
            help="User Mosquitto drops to when started as root (`user` in mosquitto.conf); "
            "as root, the password and ACL files and DIR are given to it.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace existing passwords and credentials in DIR.")
    ] = False,
) -> None:
    """Write a locked-down Mosquitto configuration for a session file: a user and a fresh
    password per delegate and for the chair, per-user ACLs on the session's topics, and
    each user's bus URL to hand to the machine that runs it."""
    try:
        written = write_broker_config(
            file,
            output,
            port=port,
            host=host,
            public_host=public_host,
            tls_cert=tls_cert,
            tls_key=tls_key,
            ca=ca,
            groups=group or [],
            run_as=run_as,
            force=force,
        )
    except (BrokerConfigError, SessionFileError) as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    report(written)


def report(written: WrittenConfig) -> None:
    """What was written, who gets which file, and how to start everything (no passwords)."""
    d = written.directory
    console.print(
        f"Broker configuration for [bold]{written.session_file}[/] in {d}:", highlight=False
    )
    files = Table(show_header=False, box=None, pad_edge=False)
    files.add_row(
        "  mosquitto.conf",
        "listener, authentication, ACL, persistence" + (", TLS" if written.tls else ""),
    )
    files.add_row("  passwords", "0600  hashed passwords ($7$ PBKDF2-SHA512), one per user")
    files.add_row("  acl", "who may publish and read which topics")
    files.add_row("  credentials/<user>.url", "0600  each user's bus URL, password included")
    files.add_row("  credentials.json", "0600  every user's password and URL")
    console.print(files)
    users = Table("user", "role", "delegates", "give it", box=None, pad_edge=False)
    for user in written.users:
        users.add_row(
            user.name,
            user.role,
            ", ".join(user.delegates) or "-",
            str(written.credential_urls[user.name].relative_to(d)),
        )
    console.print(users)
    console.print("\nStart the broker:", highlight=False)
    console.print(f"  {written.start_command}", highlight=False, soft_wrap=True)
    file = shlex.quote(str(written.session_file))
    creds = d / "credentials"
    console.print(
        "\nGive each machine only its own URL file (a secret), then run, with the same session id:",
        highlight=False,
    )
    console.print(
        f'  accord chair {file} --session SESSION --bus "$(cat {creds}/chair.url)"',
        highlight=False,
        soft_wrap=True,
    )
    for user in written.users:
        if user.role == "delegate":
            console.print(
                f"  accord delegate {file} --session SESSION --as {user.name} "
                f'--bus "$(cat {creds}/{user.name}.url)"',
                highlight=False,
                soft_wrap=True,
            )
        elif user.role == "group":
            as_ = " ".join(f"--as {m}" for m in user.delegates)
            console.print(
                f"  accord delegate {file} --session SESSION {as_} --host {user.name} "
                f'--bus "$(cat {creds}/{user.name}.url)"',
                highlight=False,
                soft_wrap=True,
            )
    for note in written.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)


if __name__ == "__main__":  # pragma: no cover - `python -m accord.cli_broker` before registration
    typer.run(broker_config)
