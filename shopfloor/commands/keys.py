"""``shopfloor keys``: ed25519 signing keys for model versions.

Wiring only: keys, signatures and trust files live in :mod:`shopfloor.edge.signing`
(imported inside the command: ``cryptography`` is not needed by the rest of the CLI).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from shopfloor.errors import InvalidInputError

app = typer.Typer(help="Signing keys for model versions.", no_args_is_help=True, add_completion=False)


def _signing() -> ModuleType:
    """:mod:`shopfloor.edge.signing`, or a one-line error when ``cryptography`` is missing."""
    try:
        from shopfloor.edge import signing
    except ModuleNotFoundError as exc:
        raise InvalidInputError(f"signing needs the {exc.name!r} package: "
                                "pip install 'shopfloor[edge]'") from None
    return signing


@app.callback()
def _keys() -> None:
    """Signing keys for model versions (private keys stay where releases are signed)."""


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", help="directory for <name>.key (0600) and <name>.pub")],
    name: Annotated[str, typer.Option("--name", help="file name stem of the pair")] = "shopfloor",
    trust: Annotated[Path | None, typer.Option(
        "--trust", help="also add the public key to this trust file (created if missing)")] = None,
    comment: Annotated[str, typer.Option(help="comment kept beside the key in the trust file")] = "",
) -> None:
    """Make a new ed25519 key pair; prints its key id and paths. Refuses to overwrite a key."""
    signing = _signing()
    pair = signing.generate_keypair(out, name)
    typer.echo(f"key id:      {pair.key_id}")
    typer.echo(f"private key: {pair.private_path} (keep it where releases are signed; never on a site)")
    typer.echo(f"public key:  {pair.public_path}")
    if trust is not None:
        store = signing.TrustStore.load(trust) if trust.exists() else signing.TrustStore()
        store.with_key(signing.load_public_key(pair.public_path), comment or name).save(trust)
        typer.echo(f"trust file:  {trust} (now trusts {pair.key_id})")
    else:
        typer.echo("sign with:   shopfloor models sign VERSION --key " + str(pair.private_path))
