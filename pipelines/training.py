"""The training pipeline, top to bottom like the process on the shop floor:

ingest -> validate -> train -> evaluate -> (only if every gate passed) convert for the edge.
"""

from kfp import dsl, kubernetes
from shopfloor.components import convert, evaluate, ingest, train, validate

#: Kubernetes secret holding S3/MinIO credentials (AWS_* keys); optional, so embedded and
#: public data need none. Credentials never travel as pipeline parameters.
S3_SECRET = "shopfloor-s3-credentials"
_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "SHOPFLOOR_S3_ENDPOINT": "SHOPFLOOR_S3_ENDPOINT",
}


@dsl.pipeline(
    name="shopfloor-training",
    description="Validate factory sensor data, train and gate a failure model, convert it for the edge.",
)
def training_pipeline(
    source: str = "embedded:ai4i2020",
    seed: int = 42,
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    train_params: dict = {},  # noqa: B006  (KFP needs a literal default)
    policy_yaml: str = "",
) -> None:
    """``source``: path, s3:// URI or embedded:ai4i2020. ``policy_yaml``: release policy
    text (empty: the policy shipped in the image)."""
    data = ingest(
        source=source, seed=seed, validation_fraction=validation_fraction, test_fraction=test_fraction
    )
    data.set_caching_options(False)  # the same URI may hold new data
    kubernetes.use_secret_as_env(data, secret_name=S3_SECRET, secret_key_to_env=_S3_ENV, optional=True)

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
    )

    # kfp.local resolves only a task's single return value ("Output") in conditions.
    with dsl.If(gated.outputs["Output"] == True, name="gates-passed"):  # noqa: E712
        convert(
            dataset=data.outputs["dataset"],
            model=trained.outputs["model"],
            evaluation=gated.outputs["evaluation"],
            data_version=data.outputs["data_version"],
            policy_yaml=policy_yaml,
        )
