"""The training pipeline, top to bottom like the process on the shop floor:

ingest -> validate -> train -> evaluate (against baseline and champion)
       -> only if every gate passed: convert for the edge -> register a candidate version
       -> only if asked: deploy it to the cloud cluster (promote, or roll back).
"""

from kfp import dsl, kubernetes

from shopfloor.components import (
    convert,
    deploy_cloud,
    evaluate,
    ingest,
    register,
    rollout_edge,
    train,
    validate,
)
from shopfloor.components.edge_rollout import EDGE_SIGNING_MOUNT, EDGE_SIGNING_SECRET
from shopfloor.data import EMBEDDED_DATASET
from shopfloor.settings import CLOUD_ENV, DEFAULT_NAMESPACE, S3_SECRET_KEYS, S3_SECRET_NAME

#: The one Kubernetes secret holding S3/MinIO credentials, shared with the predictor; optional
#: for pipeline steps, so embedded and public data need none. Credentials never travel as
#: pipeline parameters.
S3_SECRET = S3_SECRET_NAME
_S3_ENV = {key: key for key in S3_SECRET_KEYS}


def _s3_credentials(task: dsl.PipelineTask) -> dsl.PipelineTask:
    return kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=_S3_ENV, optional=True)


@dsl.pipeline(
    name="shopfloor-training",
    description="Validate factory sensor data, train and gate a failure model, convert it for the edge, "
    "register it, and optionally deploy it.",
)
def training_pipeline(
    source: str = EMBEDDED_DATASET,
    seed: int = 42,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    train_params: dict = {},  # noqa: B006  (KFP needs a literal default)
    policy_yaml: str = "",
    registry: str = "",
    env: str = CLOUD_ENV,
    deploy: bool = False,
    deploy_namespace: str = DEFAULT_NAMESPACE,
    predictor_image: str = "",
    edge_rollout: bool = False,
    edge_inventory: str = "",
    edge_pilot: str = "",
    edge_soak_s: float = 300.0,
    edge_max_error_rate: float = 0.01,
    edge_sign: bool = False,
) -> None:
    """Validate factory sensor data, train and gate a failure model, convert it for the edge,
    register it, and optionally deploy it.

    Args:
        source: Sensor table to train on: a CSV/Parquet path, an s3://bucket/key URI, or
            embedded:ai4i2020 (the AI4I 2020 data shipped in the image).
        seed: Seed of the stratified split and of training (same data and seed, same model).
        validation_fraction: Share of rows held out to choose the decision threshold, in (0, 1).
        test_fraction: Share of rows held out to judge the model, in (0, 1).
        train_params: Training overrides by name (hidden_units, activation, epochs, batch_size,
            learning_rate, positive_weight, seed); empty keeps the defaults.
        policy_yaml: Release policy as YAML text; empty applies the policy shipped in the image.
        registry: Model registry, s3://bucket/prefix or a path; empty means SHOPFLOOR_REGISTRY,
            else the embedded filesystem registry.
        env: Registry environment whose champion is the reference and whose candidate alias moves.
        deploy: Roll the registered version out as a KServe InferenceService when true.
        deploy_namespace: Kubernetes namespace of the rollout.
        predictor_image: Predictor image of the rollout; empty means this version's image.
        edge_rollout: Roll the registered version out to the factory edge sites (pilot first) when true.
        edge_inventory: Site inventory path inside the pod; empty means SHOPFLOOR_EDGE_SITES.
        edge_pilot: Pilot site of the edge rollout; empty means the inventory's pilot.
        edge_soak_s: Seconds the pilot must stay healthy before the other sites follow.
        edge_max_error_rate: Largest share of server errors the pilot may show during the soak.
        edge_sign: Sign the version first with the release key in the optional Secret
            shopfloor-edge-signing (key "key"); otherwise the version must already be signed.
    """
    data = ingest(
        source=source, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction
    )
    data.set_caching_options(False)  # the same URI may hold new data
    _s3_credentials(data)

    checked = validate(dataset=data.outputs["dataset"], data_version=data.outputs["data_version"])

    trained = train(
        dataset=data.outputs["dataset"], data_version=data.outputs["data_version"], train_params=train_params,
        policy_yaml=policy_yaml,
    )
    trained.after(checked)
    trained.set_cpu_request("1").set_cpu_limit("2").set_memory_limit("4G")

    gated = evaluate(
        dataset=data.outputs["dataset"],
        model=trained.outputs["model"],
        data_version=data.outputs["data_version"],
        policy_yaml=policy_yaml,
        registry=registry,
        env=env,
    )
    gated.set_caching_options(False)  # the champion may have changed
    _s3_credentials(gated)

    # kfp.local resolves only a task's single return value ("Output") in conditions.
    with dsl.If(gated.outputs["Output"] == True, name="gates-passed"):  # noqa: E712
        converted = convert(
            dataset=data.outputs["dataset"],
            model=trained.outputs["model"],
            evaluation=gated.outputs["evaluation"],
            data_version=data.outputs["data_version"],
            policy_yaml=policy_yaml,
        )
        registered = register(
            model=trained.outputs["model"],
            edge_model=converted.outputs["edge_model"],
            evaluation=gated.outputs["evaluation"],
            equivalence=converted.outputs["equivalence"],
            validation=checked.outputs["result"],
            registry=registry,
            env=env,
            run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
        )
        registered.set_caching_options(False)
        _s3_credentials(registered)

        with dsl.If(deploy == True, name="deploy-requested"):  # noqa: E712
            rollout = deploy_cloud(
                version=registered.outputs["Output"],
                registry=registry,
                env=env,
                namespace=deploy_namespace,
                predictor_image=predictor_image,
                timeout_s=600.0,
            )
            rollout.set_caching_options(False)
            _s3_credentials(rollout)

        with dsl.If(edge_rollout == True, name="edge-rollout-requested"):  # noqa: E712
            # The key file exists only when the Secret is there; the step signs only if asked.
            with dsl.If(edge_sign == True, name="edge-sign-requested"):  # noqa: E712
                signed_rollout = rollout_edge(
                    version=registered.outputs["Output"], registry=registry, inventory=edge_inventory,
                    pilot=edge_pilot, soak_s=edge_soak_s, max_error_rate=edge_max_error_rate,
                    signing_key=f"{EDGE_SIGNING_MOUNT}/key",
                )
                signed_rollout.set_caching_options(False)
                _s3_credentials(signed_rollout)
                kubernetes.use_secret_as_volume(signed_rollout, secret_name=EDGE_SIGNING_SECRET,
                                                mount_path=EDGE_SIGNING_MOUNT, optional=True)
            with dsl.If(edge_sign == False, name="edge-signed-already"):  # noqa: E712
                edge = rollout_edge(
                    version=registered.outputs["Output"], registry=registry, inventory=edge_inventory,
                    pilot=edge_pilot, soak_s=edge_soak_s, max_error_rate=edge_max_error_rate, signing_key="",
                )
                edge.set_caching_options(False)
                _s3_credentials(edge)
