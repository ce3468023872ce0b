"""Small queries over synthesized CloudFormation templates (plain dicts: no jsii needed)."""

from __future__ import annotations

import json
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


def sdk_call(value: Any) -> dict:
    """An ``AwsCustomResource`` call (its ``Create``/``Update``/``Delete`` property) as a dict.

    aws-cdk-lib writes the call as a JSON string, joined with ``Fn::Join`` around any token; each token comes back
    in place of the JSON string it stood for (e.g. ``{"Ref": "Subnet"}`` as the ``SubnetId`` value).
    """
    if isinstance(value, str):
        return json.loads(value)
    parts = value["Fn::Join"][1]
    tokens: dict[str, Any] = {}
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        else:
            marker = f"__token{len(tokens)}__"
            tokens[marker] = part
            text += marker

    def restore(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: restore(x) for k, x in v.items()}
        if isinstance(v, list):
            return [restore(x) for x in v]
        return tokens.get(v, v) if isinstance(v, str) else v

    return restore(json.loads(text))


def cidr_reservations(template: Template) -> list[dict]:
    """Every subnet CIDR reservation, native (``AWS::EC2::SubnetCidrReservation``) or made by the custom resource
    of ``eksnet.cidr_reservation`` (``Custom::SubnetCidrReservation``), as ``{SubnetId, Cidr, ReservationType,
    Description, native}``."""
    found = []
    for _, p in props(template, "AWS::EC2::SubnetCidrReservation"):
        found.append({**p, "native": True})
    for _, p in props(template, "Custom::SubnetCidrReservation"):
        call = sdk_call(p["Create"])
        found.append({**call["parameters"], "native": False})
    return found
