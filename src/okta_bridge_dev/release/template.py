"""The SAM template: one CloudFormation YAML loader (for the tooling and the tests), parameters,
the code location, and the SAM -> CloudFormation translation.

The SAM template is translated here with aws-sam-translator, the library behind CloudFormation's
``AWS::Serverless-2016-10-31`` transform, so the stack receives plain CloudFormation: the same
result, with the translation visible before anything changes, and an emulator (moto) that cannot
run transforms can still take the stack.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from okta_bridge_dev.release.errors import UsageError

__all__ = [
    "FUNCTION_ID",
    "LAYER_ID",
    "SAM_TRANSFORM",
    "TEMPLATE_BODY_LIMIT",
    "check_parameters",
    "load_template",
    "resolve_parameters",
    "set_code_uri",
    "set_content_uri",
    "template_json",
    "template_parameters",
    "translate",
]

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
FUNCTION_ID = "BridgeFunction"
LAYER_ID = "BridgeLayer"
TEMPLATE_BODY_LIMIT = 51_200
"""CloudFormation's limit for ``TemplateBody``; larger templates go through S3."""


class _TemplateLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that reads CloudFormation's short intrinsics (``!Ref``, ``!Sub``...).

    A private subclass, so the global SafeLoader is left alone; dates stay strings (the template
    is re-serialised as JSON, and ``2010-09-09`` must not become a ``date``).
    """


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    value: Any
    if suffix == "GetAtt" and isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node).split(".", 1)
    elif isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


def _timestamp_as_text(loader: yaml.Loader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))


_TemplateLoader.add_multi_constructor("!", _intrinsic)
_TemplateLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)


def load_template(path: Path) -> dict[str, Any]:
    """Read a SAM template (YAML or JSON) and check it is one this tool can deploy."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"no template at {path}: run from the repository root or --template"
        ) from None
    try:
        # _TemplateLoader is a SafeLoader subclass: no arbitrary objects.
        template = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506  # nosec B506
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise UsageError(f"{path} has no Resources section: is it the SAM template?")
    transforms = template.get("Transform", [])
    transforms = [transforms] if isinstance(transforms, str) else list(transforms)
    others = [t for t in transforms if t != SAM_TRANSFORM]
    if others:
        raise UsageError(
            f"{path} uses the transform(s) {', '.join(map(str, others))}, which only "
            f"CloudFormation can run; this tool translates {SAM_TRANSFORM} alone"
        )
    function = template["Resources"].get(FUNCTION_ID)
    if not isinstance(function, dict) or function.get("Type") != "AWS::Serverless::Function":
        raise UsageError(f"{path} has no {FUNCTION_ID} of type AWS::Serverless::Function")
    return template


def template_parameters(template: Mapping[str, Any]) -> dict[str, str | None]:
    """Declared parameters and their defaults (None when a value is required)."""
    declared = template.get("Parameters") or {}
    return {
        name: None if "Default" not in spec else str(spec["Default"])
        for name, spec in declared.items()
    }


def check_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> None:
    """Refuse overrides the template does not declare, and required parameters left unset.

    CloudFormation would refuse both too, but only after the upload and with less context.
    """
    declared = template_parameters(template)
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise UsageError(
            f"parameter_overrides sets {', '.join(unknown)}, which the template does not "
            f"declare (it declares: {', '.join(sorted(declared))})"
        )
    missing = sorted(name for name, default in declared.items() if default is None)
    missing = [name for name in missing if name not in overrides]
    if missing:
        raise UsageError(
            f"the template requires {', '.join(missing)}: set them in samconfig.toml's "
            "parameter_overrides or with --parameter KEY=VALUE"
        )


def resolve_parameters(template: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, str]:
    """Every declared parameter's value: the override, else the template's default.

    All are passed explicitly, so an update never keeps a value that samconfig.toml no longer
    sets (the file is the source of truth), whatever CloudFormation does with omitted ones.
    """
    check_parameters(template, overrides)
    declared = template_parameters(template)
    return {
        name: overrides[name] if name in overrides else str(default)
        for name, default in declared.items()
    }


def set_code_uri(template: Mapping[str, Any], bucket: str, key: str, version: str | None) -> Any:
    """A copy of ``template`` whose function code is the uploaded object (as ``sam package``).

    Every function whose ``CodeUri`` is the bridge's (the rotation function shares its zip)
    gets the same object.
    """
    result = copy.deepcopy(dict(template))
    location: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version:
        location["Version"] = version
    resources = result["Resources"]
    packaged = resources[FUNCTION_ID].get("Properties", {}).get("CodeUri")
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if logical_id == FUNCTION_ID or (
            packaged is not None
            and resource.get("Type") == "AWS::Serverless::Function"
            and properties.get("CodeUri") == packaged
        ):
            resource.setdefault("Properties", {})["CodeUri"] = dict(location)
    return result


def set_content_uri(template: Mapping[str, Any], bucket: str, key: str, version: str | None) -> Any:
    """A copy of ``template`` whose layer content is the uploaded object (as ``sam package``).

    ``BridgeLayer``, and every layer whose ``ContentUri`` is the same local zip, gets it; a
    template without ``BridgeLayer`` is returned unchanged.
    """
    result = copy.deepcopy(dict(template))
    resources = result["Resources"]
    if LAYER_ID not in resources:
        return result
    location: dict[str, str] = {"Bucket": bucket, "Key": key}
    if version:
        location["Version"] = version
    packaged = resources[LAYER_ID].get("Properties", {}).get("ContentUri")
    for logical_id, resource in resources.items():
        properties = resource.get("Properties", {})
        if logical_id == LAYER_ID or (
            resource.get("Type") == "AWS::Serverless::LayerVersion"
            and properties.get("ContentUri") == packaged
        ):
            resource.setdefault("Properties", {})["ContentUri"] = dict(location)
    return result


def translate(
    template: Mapping[str, Any], parameters: Mapping[str, str], session: Any
) -> dict[str, Any]:
    """SAM -> CloudFormation, as the transform does in CloudFormation (same library).

    ``session`` supplies the region and partition (``AWS::Region`` in generated ARNs) and an IAM
    client, used only if the template names AWS managed policies by their short name.
    """
    from samtranslator.model.exceptions import (  # noqa: PLC0415
        InvalidDocumentException,
    )
    from samtranslator.parser.parser import Parser  # noqa: PLC0415
    from samtranslator.translator.managed_policy_translator import (  # noqa: PLC0415
        ManagedPolicyLoader,
    )
    from samtranslator.translator.translator import Translator  # noqa: PLC0415
    from samtranslator.utils.py27hash_fix import (  # noqa: PLC0415
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    document = copy.deepcopy(dict(template))
    values: dict[str, Any] = dict(parameters)
    loader = ManagedPolicyLoader(session.client("iam"))
    translator = Translator(None, Parser(), boto_session=session)
    to_py27_compatible_template(document, values)
    try:
        result = translator.translate(
            document, parameter_values=values, get_managed_policy_map=loader.load
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause.message) for cause in exc.causes) or str(exc)
        raise UsageError(f"the SAM template does not translate: {causes}") from None
    translated: dict[str, Any] = undo_mark_unicode_str_in_template(result)
    leftover = [
        logical_id
        for logical_id, resource in translated.get("Resources", {}).items()
        if str(resource.get("Type", "")).startswith("AWS::Serverless::")
    ]
    if leftover:
        raise UsageError(f"SAM resources left untranslated: {', '.join(leftover)}")
    return translated


def template_json(template: Mapping[str, Any]) -> str:
    """Compact, stable JSON: one template always gives the same bytes (and no false changes)."""
    return json.dumps(template, separators=(",", ":"), ensure_ascii=False)
