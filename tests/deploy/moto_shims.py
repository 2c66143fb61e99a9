"""What moto's CloudFormation lacks for the okta-bridge stack, added for the tests only.

moto 5.2.5 has five gaps the deployment tests would otherwise trip on:

- It creates no ``AWS::SecretsManager::Secret`` from a template (it skips the resource with a
  warning, so ``Ref CredentialsSecret`` is empty and the function loses ``BRIDGE_SECRET_ID``).
  ``CloudFormationSecret`` creates the secret in moto's own Secrets Manager backend, as
  CloudFormation does: name, description, KMS key and tags from the template, no value,
  ``Ref`` = the ARN.
- It creates no ``AWS::SecretsManager::ResourcePolicy`` either. ``CloudFormationSecretPolicy``
  puts the template's policy on the secret in moto's backend (and replaces it on update), so the
  tests read the policy the stack really set (who is admitted, with ConsumerRoleArns or not).
- Its ``AWS::Lambda::LayerVersion`` drops ``LayerName`` and ``CompatibleArchitectures`` and has
  no ``Ref`` (the stack's LayerArn output would be an object's repr). ``layer_version_arn`` and
  ``create_layer_version`` give it both, as CloudFormation does (``Ref`` = the version's ARN).
- A stack created by executing a change set keeps the outputs of its empty placeholder template
  (``execute_change_set`` never rebuilds the output map), so it has no ``Outputs``.
  ``apply_with_outputs`` rebuilds them after the change set is applied, as ``update_stack`` does.
- It creates nothing for the other resource types in ``PLACEHOLDER_TYPES`` (policies attached to
  other resources, the rotation schedule, alarms, the anomaly detector, log metric filters,
  saved Logs Insights queries, the function's event invoke config, the optional Function URL
  and the optional network resources). ``placeholder``
  registers a stand-in for each: it creates nothing, answers ``Ref`` and ``Fn::GetAtt`` (the
  dashboard refers to the alarms' ARNs), and lets the rest of the stack be created. The tests
  assert only on what moto really creates.
"""

from __future__ import annotations

import json
from typing import Any

from moto.awslambda.models import LayerVersion, lambda_backends
from moto.cloudformation import parsing
from moto.cloudformation.models import ChangeSet
from moto.core.common_models import CloudFormationModel
from moto.secretsmanager.models import secretsmanager_backends

__all__ = [
    "PLACEHOLDER_TYPES",
    "ChangeSet",
    "CloudFormationSecret",
    "CloudFormationSecretPolicy",
    "apply_with_outputs",
    "create_layer_version",
    "install",
    "layer_version_arn",
]

SECRET_TYPE = "AWS::SecretsManager::Secret"
SECRET_POLICY_TYPE = "AWS::SecretsManager::ResourcePolicy"
PLACEHOLDER_TYPES = (
    "AWS::SecretsManager::RotationSchedule",
    "AWS::IAM::RolePolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::AnomalyDetector",
    "AWS::Logs::MetricFilter",
    "AWS::Logs::QueryDefinition",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::CodeSigningConfig",
    "AWS::Lambda::Url",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::S3::BucketPolicy",  # issue 15's delivery bucket policy
    "AWS::EC2::CustomerGateway",
    "AWS::EC2::VPNConnection",
    "AWS::EC2::VPNConnectionRoute",
    "AWS::EC2::VPNGatewayRoutePropagation",
)
"""Types the okta-bridge template uses that moto 5.2.5's CloudFormation cannot create."""


class CloudFormationSecret(CloudFormationModel):
    """A secret created by a stack: enough for Ref, update in place and delete."""

    def __init__(self, arn: str, name: str, account_id: str, region_name: str) -> None:
        self.arn = arn
        self.name = name
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.arn

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        return SECRET_TYPE

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        if attribute_name == "Id":
            return self.arn
        raise KeyError(attribute_name)

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSecret:
        props = cloudformation_json.get("Properties", {})
        backend = secretsmanager_backends[account_id][region_name]
        backend.create_secret(
            name=resource_name,
            secret_string=None,
            secret_binary=None,
            description=props.get("Description"),
            tags=props.get("Tags"),
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
        arn = backend.secrets[resource_name].arn
        return cls(arn, resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: CloudFormationSecret,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CloudFormationSecret:
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        secretsmanager_backends[account_id][region_name].delete_secret(
            self.arn, recovery_window_in_days=None, force_delete_without_recovery=True
        )

    def is_created(self) -> bool:
        return True


def _without_no_value(value: Any) -> Any:
    """``Ref AWS::NoValue`` removed, as CloudFormation does (moto leaves ``None`` in its place)."""
    if isinstance(value, list):
        return [_without_no_value(item) for item in value if item is not None]
    if isinstance(value, dict):
        return {k: _without_no_value(v) for k, v in value.items() if v is not None}
    return value


class CloudFormationSecretPolicy(CloudFormationModel):
    """A secret's resource policy set by a stack: put, replaced on update, deleted with it."""

    def __init__(self, secret_id: str, account_id: str, region_name: str) -> None:
        self.secret_id = secret_id
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        return self.secret_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return SECRET_POLICY_TYPE

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> CloudFormationSecretPolicy:
        props = cloudformation_json["Properties"]
        backend = secretsmanager_backends[account_id][region_name]
        policy = _without_no_value(props["ResourcePolicy"])
        backend.put_resource_policy(props["SecretId"], json.dumps(policy))
        return cls(props["SecretId"], account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: CloudFormationSecretPolicy,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> CloudFormationSecretPolicy:
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name
        )

    def delete(self, account_id: str, region_name: str) -> None:
        backend = secretsmanager_backends[account_id][region_name]
        if self.secret_id in backend.secrets:
            backend.delete_resource_policy(self.secret_id)

    def is_created(self) -> bool:
        return True


class _Placeholder(CloudFormationModel):
    """Base of the stand-ins: a name, an ARN-shaped value for every attribute, nothing created."""

    resource_type = ""

    def __init__(self, name: str, account_id: str, region_name: str) -> None:
        self.name = name
        self.arn = f"arn:aws:placeholder:{region_name}:{account_id}:{self.resource_type}/{name}"

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> _Placeholder:
        return cls(resource_name, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls,
        original_resource: _Placeholder,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> _Placeholder:
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        """Nothing was created."""

    def is_created(self) -> bool:
        return True


def placeholder(resource_type: str) -> type[_Placeholder]:
    """A stand-in class for ``resource_type``, registered with moto's parser.

    moto finds providers among the direct subclasses of ``CloudFormationModel``, hence the
    second base.
    """
    return type(
        f"Placeholder_{resource_type.replace('::', '_')}",
        (_Placeholder, CloudFormationModel),
        {
            "resource_type": resource_type,
            "cloudformation_type": staticmethod(lambda: resource_type),
            "cloudformation_name_type": staticmethod(lambda: ""),
        },
    )


_PLACEHOLDERS = [placeholder(t) for t in PLACEHOLDER_TYPES]


def install() -> None:
    """Make moto's CloudFormation parser see the providers above (its type lists are cached).

    A stand-in must never hide a provider moto has: that would make a test pass on nothing.
    """
    native = {
        model.cloudformation_type()
        for model in CloudFormationModel.__subclasses__()
        if not issubclass(model, (_Placeholder, CloudFormationSecret, CloudFormationSecretPolicy))
    }
    shadowed = native & {SECRET_TYPE, SECRET_POLICY_TYPE, *PLACEHOLDER_TYPES}
    assert not shadowed, f"moto now creates {sorted(shadowed)}: drop them from moto_shims"
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    assert parsing.resource_class_from_type(SECRET_TYPE) is CloudFormationSecret
    assert parsing.resource_class_from_type(SECRET_POLICY_TYPE) is CloudFormationSecretPolicy
    for resource_type in PLACEHOLDER_TYPES:
        provider = parsing.resource_class_from_type(resource_type)
        assert getattr(provider, "resource_type", None) == resource_type


_original_apply = ChangeSet.apply


def apply_with_outputs(self: ChangeSet) -> None:
    """``ChangeSet.apply``, then the stack's outputs from the change set's template."""
    _original_apply(self)
    stack = self.stack
    stack.template_dict = self.template_dict
    stack.output_map = parsing.OutputMap(stack.resource_map, self.template_dict, stack.stack_id)


def layer_version_arn(self: LayerVersion) -> str:
    """``Ref`` of a layer version: its ARN (``arn:...:layer:<name>:<version>``)."""
    return self.arn


def create_layer_version(
    cls: type[LayerVersion],
    resource_name: str,
    cloudformation_json: dict[str, Any],
    account_id: str,
    region_name: str,
    **kwargs: Any,
) -> LayerVersion:
    """moto's ``create_from_cloudformation_json`` with the template's name and architectures."""
    properties = cloudformation_json["Properties"]
    spec = {
        "Content": properties["Content"],
        "LayerName": properties.get("LayerName", resource_name),
    }
    for name in ("Description", "CompatibleRuntimes", "CompatibleArchitectures", "LicenseInfo"):
        if name in properties:
            spec[name] = properties[name]
    layer: LayerVersion = lambda_backends[account_id][region_name].publish_layer_version(spec)
    return layer
