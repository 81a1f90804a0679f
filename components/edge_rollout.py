"""rollout_edge: staged rollout of a registered version to the factory edge sites, pilot first."""

from kfp import dsl

from shopfloor.components.image import IMAGE

#: Optional Kubernetes Secret holding the release signing key (``key``) for the rollout step:
#: signing is a release step, so a pipeline that rolls out signs only when given a key.
EDGE_SIGNING_SECRET = "shopfloor-edge-signing"
EDGE_SIGNING_MOUNT = "/var/run/shopfloor/edge-signing"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def rollout_edge(
    version: str,
    registry: str,
    inventory: str,
    pilot: str,
    soak_s: float,
    max_error_rate: float,
    signing_key: str,
) -> str:
    """Push ``version`` to the pilot site, watch it for the soak, then to the other sites; a pilot
    that fails is rolled back and the task fails with the reason (no other site is touched).

    Args:
        version: Registry version to roll out, e.g. v0003.
        registry: Registry location the pusher reads (s3://bucket/prefix); empty for SHOPFLOOR_REGISTRY.
        inventory: Path of the site inventory (sites.yaml) inside the pod; empty for SHOPFLOOR_EDGE_SITES.
        pilot: Pilot site (local or direct mode); empty for the inventory's pilot.
        soak_s: Seconds the pilot must stay healthy before the other sites follow.
        max_error_rate: Largest share of server errors the pilot may show during the soak.
        signing_key: Path of a release private key to sign the version with first; empty when the
            version is already signed (an unsigned version is refused).

    Returns:
        Output: The outcome of the rollout, then one line per site (active, committed, skipped, ...).
    """
    from pathlib import Path

    from shopfloor.edge.rollout import check, rollout
    from shopfloor.steps import recorded_failure

    with recorded_failure("rollout-edge"):
        if signing_key:
            from shopfloor.edge.signing import sign_manifest
            from shopfloor.registry import open_registry

            reg = open_registry(registry or None)
            reg.add_signature(version, sign_manifest(reg.manifest_bytes(version), Path(signing_key)))
        result = check(
            rollout(
                version,
                pilot or None,
                soak_s,
                registry=registry or None,
                inventory=Path(inventory) if inventory else None,
                max_error_rate=max_error_rate,
                log=print,
            )
        )
    return result.message
