"""The training pipeline, top to bottom like the process on the shop floor:

ingest -> validate -> train -> evaluate (against baseline and champion)
       -> only if every gate passed: convert for the edge -> register a candidate version
       -> only if asked: deploy it to the cloud cluster (promote, or roll back).
"""

from kfp import dsl, kubernetes

from shopfloor.components import convert, deploy_cloud, evaluate, ingest, register, train, validate
from shopfloor.deploy.render import DEFAULT_S3_SECRET, S3_SECRET_KEYS

#: The one Kubernetes secret holding S3/MinIO credentials, shared with the predictor; optional
#: for pipeline steps, so embedded and public data need none. Credentials never travel as
#: pipeline parameters.
S3_SECRET = DEFAULT_S3_SECRET
_S3_ENV = {key: key for key in S3_SECRET_KEYS}


def _s3_credentials(task: dsl.PipelineTask) -> dsl.PipelineTask:
    return kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=_S3_ENV, optional=True)


@dsl.pipeline(
    name="shopfloor-training",
    description="Validate factory sensor data, train and gate a failure model, convert it for the edge, "
    "register it, and optionally deploy it.",
)
def training_pipeline(
    source: str = "embedded:ai4i2020",
    seed: int = 42,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    train_params: dict = {},  # noqa: B006  (KFP needs a literal default)
    policy_yaml: str = "",
    registry: str = "",
    env: str = "cloud",
    deploy: bool = False,
    deploy_namespace: str = "shopfloor",
    predictor_image: str = "",
) -> None:
    """``source``: path, s3:// URI or embedded:ai4i2020. ``policy_yaml``: release policy
    text (empty: the policy shipped in the image). ``registry``: s3://bucket/prefix or a path
    (empty: SHOPFLOOR_REGISTRY, else the embedded filesystem registry)."""
    data = ingest(
        source=source, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction
    )
    data.set_caching_options(False)  # the same URI may hold new data
    _s3_credentials(data)

    checked = validate(dataset=data.outputs["dataset"], data_version=data.outputs["data_version"])

    trained = train(
        dataset=data.outputs["dataset"], data_version=data.outputs["data_version"], train_params=train_params
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
