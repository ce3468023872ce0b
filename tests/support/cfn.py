"""Small queries over synthesized CloudFormation templates (plain dicts: no jsii needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Template = dict[str, Any]


def resources(template: Template, type_: str) -> dict[str, dict]:
    """Logical id -> resource, for every resource of CloudFormation type ``type_``."""
    return {lid: r for lid, r in template.get("Resources", {}).items() if r.get("Type") == type_}


def props(template: Template, type_: str) -> Iterator[tuple[str, dict]]:
    for lid, r in resources(template, type_).items():
        yield lid, r.get("Properties", {})


def ref_id(value: Any) -> str | None:
    """The logical id a ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attr]}`` points at, else None."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            att = value["Fn::GetAtt"]
            return att[0] if isinstance(att, list) else att.split(".")[0]
    return None


def tags(resource_props: dict) -> dict[str, Any]:
    return {t["Key"]: t["Value"] for t in resource_props.get("Tags", [])}
