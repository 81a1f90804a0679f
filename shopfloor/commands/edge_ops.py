"""`shopfloor edge push|rollout|rollback|bundle|fleet` (owner: operations).

Mounted by :mod:`shopfloor.commands.edge`. Wiring only: the logic lives in
:mod:`shopfloor.edge.push`, :mod:`~shopfloor.edge.rollout`, :mod:`~shopfloor.edge.bundle` and
:mod:`~shopfloor.edge.fleet`. Refusals raise :mod:`shopfloor.errors` categories, which the root
CLI prints as one line with the category's exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from shopfloor import settings
from shopfloor.errors import GateFailedError, InvalidInputError

app = typer.Typer(no_args_is_help=True, add_completion=False)
bundle_app = typer.Typer(
    help="Signed air-gapped bundles: export, import.", no_args_is_help=True, add_completion=False
)
fleet_app = typer.Typer(
    help="A fleet of local edge sites on this machine: up, status, down.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(bundle_app, name="bundle")
app.add_typer(fleet_app, name="fleet")

VersionArg = Annotated[
    str | None,
    typer.Argument(help="Registry version, e.g. v0003 (default: the env's champion, else the newest)."),
]
RegistryOpt = Annotated[
    str | None,
    typer.Option(help="Registry location, a path or s3://bucket/prefix (default: $SHOPFLOOR_REGISTRY)."),
]
EnvOpt = Annotated[str, typer.Option(help="Registry environment whose champion is the default.")]
InventoryOpt = Annotated[
    Path | None,
    typer.Option(
        help=f"Site inventory (default: ${settings.EDGE_SITES.name}, else {settings.DEFAULT_EDGE_INVENTORY})."
    ),
]
ModelOpt = Annotated[str, typer.Option(help="Registered model name.")]


def _err(message: str) -> None:
    typer.echo(message, err=True)


@app.command()
def push(
    site: Annotated[str, typer.Option("--site", help="Site name in the inventory.")],
    version: VersionArg = None,
    registry: RegistryOpt = None,
    env: EnvOpt = settings.EDGE_ENV,
    inventory: InventoryOpt = None,
    git_push: Annotated[
        bool,
        typer.Option(
            "--push", help="GitOps sites: also git push the commit (when the working copy has a remote)."
        ),
    ] = False,
    model_name: ModelOpt = settings.DEFAULT_MODEL_NAME,
) -> None:
    """Push a signed version to one site by its mode (local, direct, gitops); refused for
    air-gapped sites (use `edge bundle export`) and for versions that break the site's profile."""
    from shopfloor.edge.push import push as do_push

    result = do_push(
        version,
        site,
        registry=registry,
        env=env,
        inventory=inventory,
        git_push=git_push,
        model_name=model_name,
        log=_err,
    )
    typer.echo(result.message)
    if not result.ok:
        raise GateFailedError(f"push of {result.version} to {result.site}: {result.outcome}")


@app.command()
def rollout(
    version: VersionArg = None,
    pilot: Annotated[
        str | None,
        typer.Option(
            help="Pilot site (local or direct): gets the version first (default: the inventory's pilot)."
        ),
    ] = None,
    soak: Annotated[
        float, typer.Option(help="Seconds the pilot must stay healthy before the others follow.")
    ] = 60.0,
    max_error_rate: Annotated[
        float, typer.Option(help="Largest share of server errors the pilot may show during the soak.")
    ] = 0.01,
    registry: RegistryOpt = None,
    env: EnvOpt = settings.EDGE_ENV,
    inventory: InventoryOpt = None,
    git_push: Annotated[bool, typer.Option("--push", help="GitOps sites: also git push the commit.")] = False,
    model_name: ModelOpt = settings.DEFAULT_MODEL_NAME,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Staged rollout: pilot first, then the other sites only while the pilot stays healthy for
    the soak; a failed pilot is rolled back and the rollout stops (exit code 6)."""
    from shopfloor.edge import rollout as staged

    result = staged.rollout(
        version,
        pilot,
        soak,
        registry=registry,
        env=env,
        inventory=inventory,
        max_error_rate=max_error_rate,
        git_push=git_push,
        model_name=model_name,
        log=_err,
    )
    typer.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.message)
    staged.check(result)


@app.command()
def rollback(
    site: Annotated[str | None, typer.Option("--site", help="Site name in the inventory.")] = None,
    store: Annotated[
        Path | None,
        typer.Option(help="Instead of --site: a model store on this machine (an air-gapped site's own)."),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="With --store: the device profile.")] = None,
    trust: Annotated[
        Path | None, typer.Option(help="With --store: trust file (default: the dev trust file).")
    ] = None,
    registry: RegistryOpt = None,
    inventory: InventoryOpt = None,
    git_push: Annotated[bool, typer.Option("--push", help="GitOps sites: also git push the commit.")] = False,
    model_name: ModelOpt = settings.DEFAULT_MODEL_NAME,
) -> None:
    """Go back one version on a site, whatever way the version arrived (local: the runtime's
    store; direct/GitOps: the version pushed before, from the pusher's history of the site)."""
    from shopfloor.edge import rollout as staged

    if (site is None) == (store is None):
        raise InvalidInputError("give exactly one of --site NAME or --store DIR")
    if site is not None:
        typer.echo(
            staged.rollback(
                site,
                inventory=inventory,
                registry=registry,
                model_name=model_name,
                git_push=git_push,
                log=_err,
            )
        )
        return
    from shopfloor.edge.profiles import load_profile

    if store is None:  # unreachable: exactly one of the two was given
        raise InvalidInputError("give --store DIR")
    typer.echo(
        staged.rollback_store(
            store,
            profile=load_profile(profile) if profile else None,
            trust=trust,
        )
    )


# -- bundle -----------------------------------------------------------------------------------
@bundle_app.command("export")
def bundle_export(
    output: Annotated[Path, typer.Option("-o", "--output", help="Bundle file to write.")],
    version: VersionArg = None,
    site: Annotated[
        str | None,
        typer.Option(
            help="Target site (bundle mode): its profile is checked and its Kubernetes objects are rendered "
            "from the edge chart (needs helm and the site's registry mirror)."
        ),
    ] = None,
    profile: Annotated[str | None, typer.Option(help="Instead of --site: a device profile to check.")] = None,
    image_archive: Annotated[
        Path | None,
        typer.Option(help="Container image archive (docker save / OCI tar) to carry for K3s's agent/images."),
    ] = None,
    image_arch: Annotated[
        str | None, typer.Option(help="Architecture of --image-archive: amd64 or arm64.")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(help="Release private key that signs the bundle (default: the development key)."),
    ] = None,
    registry: RegistryOpt = None,
    env: EnvOpt = settings.EDGE_ENV,
    inventory: InventoryOpt = None,
    model_name: ModelOpt = settings.DEFAULT_MODEL_NAME,
) -> None:
    """Write one signed archive (version, signatures, manifests, checksums) for an air-gapped site."""
    from shopfloor.edge import bundle
    from shopfloor.edge.profiles import load_profile
    from shopfloor.edge.push import default_version
    from shopfloor.edge.signing import ensure_dev_keypair
    from shopfloor.registry import open_registry

    if site is not None and profile is not None:
        raise InvalidInputError("give --site or --profile, not both")
    target = None
    if site is not None:
        from shopfloor.edge.sites import load_inventory

        target = load_inventory(inventory).get(site)
    device = target.device_profile() if target is not None else (load_profile(profile) if profile else None)
    reg = open_registry(registry, model_name)
    chosen = version or default_version(reg, env)
    manifests = bundle.render_site_manifests(target, reg, chosen) if target is not None else []
    release_key = key if key is not None else ensure_dev_keypair()[0].private_path
    report = bundle.export_bundle(
        reg,
        chosen,
        output,
        release_key=release_key,
        site=target,
        profile=device,
        manifests=manifests,
        image_archive=image_archive,
        image_arch=image_arch,
        log=_err,
    )
    typer.echo(
        f"{report.path}: {report.model} {report.version}, {report.bytes} bytes, {report.members} members"
        f"{f', {report.manifests} manifests' if report.manifests else ''}"
        f"{f', image for {report.image_arch}' if report.image_arch else ''} ({report.seconds:.2f} s)"
    )


@bundle_app.command("import")
def bundle_import(
    file: Annotated[Path, typer.Argument(help="Bundle file written by `edge bundle export`.")],
    site: Annotated[
        str | None, typer.Option(help="Install into this inventory site (local or with a store).")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="Install into a bare model store directory.")] = None,
    k3s_root: Annotated[
        Path | None,
        typer.Option(
            help="Install into a K3s node's data dir (/var/lib/rancher/k3s): server/manifests, agent/images."
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Device profile to check against (default: the site's, else the bundle's)."),
    ] = None,
    trust: Annotated[
        Path | None, typer.Option(help="Trust file (default: the development trust file).")
    ] = None,
    inventory: InventoryOpt = None,
) -> None:
    """Verify a bundle end to end (signature, checksums, architecture, LiteRT load) and install
    it; a bundle that fails any check is refused and nothing is installed."""
    from shopfloor.edge import bundle
    from shopfloor.edge.profiles import load_profile
    from shopfloor.edge.signing import TrustStore, ensure_dev_keypair

    if sum(x is not None for x in (site, store, k3s_root)) != 1:
        raise InvalidInputError("give exactly one of --site NAME, --store DIR or --k3s-root DIR")
    trust_store = TrustStore.load(trust if trust is not None else ensure_dev_keypair()[1])
    device = load_profile(profile) if profile else None
    if site is not None:
        from shopfloor.edge.sites import load_inventory

        target = load_inventory(inventory).get(site)
        device = device or target.device_profile()
        if target.mode == "local":
            from shopfloor.edge.push import client_for

            report = bundle.import_into_runtime(
                file, client_for(target), trust_store, profile=device, log=_err
            )
        elif target.store:
            report = bundle.import_into_store(
                file, target.resolve(target.store), trust_store, profile=device, log=_err
            )
        else:
            raise InvalidInputError(
                f"site {target.name} ({target.mode}) has no store on this machine: use "
                "--store DIR or --k3s-root DIR"
            )
    elif store is not None:
        report = bundle.import_into_store(file, store, trust_store, profile=device, log=_err)
    else:
        report = bundle.import_into_k3s(file, k3s_root, trust_store, profile=device, log=_err)  # type: ignore[arg-type]
    typer.echo(
        report.message + (f"; active {report.active}" if report.active else "") + f" ({report.seconds:.2f} s)"
    )


# -- fleet ------------------------------------------------------------------------------------
RootOpt = Annotated[
    Path | None,
    typer.Option(
        help="Fleet directory: stores, tokens, logs, state (default: beside the inventory, fleet/)."
    ),
]


@fleet_app.command("up")
def fleet_up(
    sites: Annotated[int, typer.Option("--sites", help="Number of local sites to start.")] = 3,
    root: RootOpt = None,
    base_port: Annotated[
        int, typer.Option(help="Port of the first site; the others follow (0: any free).")
    ] = 8091,
    profile: Annotated[str, typer.Option(help="Device profile of every site.")] = "laptop",
    inventory: InventoryOpt = None,
) -> None:
    """Start N local edge runtimes on 127.0.0.1 (own store, port, admin token each); return when live."""
    from shopfloor.edge import fleet

    started = fleet.up(sites, root=root, base_port=base_port, profile=profile, inventory=inventory, log=_err)
    for s in started:
        typer.echo(f"{s.name}\t{s.url}\tpid {s.pid}")


@fleet_app.command("status")
def fleet_status(
    root: RootOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Per site: name, URL, process id, active version, its LiteRT format, health."""
    from shopfloor.edge import fleet

    rows = fleet.status(root)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo("no fleet running")
    for r in rows:
        typer.echo(f"{r['name']}\t{r['url']}\tpid {r['pid']}\t{r['active'] or '-'}\t{r['format'] or '-'}"
                   f"\t{r['health']}")


@fleet_app.command("down")
def fleet_down(root: RootOpt = None, inventory: InventoryOpt = None) -> None:
    """Stop the fleet's runtimes (SIGTERM, then SIGKILL after a grace period); safe to repeat."""
    from shopfloor.edge import fleet

    stopped = fleet.down(root, inventory=inventory, log=_err)
    typer.echo(f"stopped {', '.join(stopped)}" if stopped else "no fleet running")
