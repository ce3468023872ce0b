"""The template gates' acknowledgments: cdk-nag as a validation plugin, each suppression with its reason, and a view.

cdk-nag 3 runs through ``Validations.of(app).add_plugins``: any unacknowledged
finding fails synth. A suppression is an acknowledgment on one construct (and its
children) with a reason; ``acknowledge`` refuses an empty or generic reason so
that no blanket suppression slips in. This module is the only one that acknowledges:
eksnet's constructs and apps name an entry of the table ``eksnet.nag_reasons.REASONS``
(``acknowledge_as``), so every reason the library gives is written once, there.

The cloud assembly records each acknowledgment (``<Stack>.metadata.json``, type
``aws:cdk:acknowledged-rules``) and what it suppressed (``validation-report.json``).
``python -m eksnet.nag [CDK_OUT] [--stack NAME ...] [--json]`` prints them per stack:
every acknowledged rule, where, on what, and why. A missing assembly or an unknown
stack is one line on stderr and exit status 2. The view reads JSON only: aws-cdk-lib (and with it the
jsii runtime) is imported by the functions that acknowledge, not by the module.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from eksnet.cli import OneLineParser, error
from eksnet.nag_reasons import REASONS, Reason

if TYPE_CHECKING:
    import aws_cdk as cdk

    from constructs import IConstruct

_MIN_REASON = 20
# cdk-nag reports these once per policy or resource ("Rule[finding]"): acknowledging the bare rule would
# hide every finding of the construct, including ones added later, so they are acknowledged one by one.
_PER_FINDING_RULES = frozenset({"AwsSolutions-IAM4", "AwsSolutions-IAM5"})
ACKNOWLEDGED_RULES = "aws:cdk:acknowledged-rules"  # cdk.Validations' metadata type in the cloud assembly


def add_checks(app: cdk.App) -> None:
    """Make every synth of ``app`` fail on an unsuppressed AwsSolutions or eksnet EKS finding."""
    import aws_cdk as cdk
    from cdk_nag import AwsSolutionsChecks

    from eksnet.eks_checks import EksChecks  # the EKS rules cdk-nag cannot see on aws_eks_v2 clusters

    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), EksChecks())


# --- acknowledging ------------------------------------------------------------------------------------------------


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Suppress ``rule`` on ``construct`` (and its children) only, saying why: for a finding your app accepts.

    ``rule`` is a cdk-nag id (``AwsSolutions-IAM4``; a bare id is AwsSolutions') or a qualified one
    (``Eksnet::Eksnet-EKS1``, ``AwsSolutions::AwsSolutions-IAM5[Resource::*]``). Refused: the app or a stage
    (a blanket suppression), a reason under 20 characters, and a second, different reason for the same rule
    on the same construct (the assembly would keep one, and a reader would not know which). The same reason
    again is a no-op (several constructs may acknowledge one shared construct, such as a stack's singleton).
    """
    _acknowledge_all(construct, [rule], reason)


def _acknowledge_all(construct: IConstruct, rules: Sequence[str], reason: str) -> None:
    """``acknowledge`` for each of ``rules`` with one ``reason``, in one call to aws-cdk-lib."""
    import aws_cdk as cdk

    if isinstance(construct, cdk.App) or isinstance(construct, cdk.Stage):
        raise ValueError(f"refusing a blanket suppression of {', '.join(rules)} on the whole app")
    if not reason or len(reason.strip()) < _MIN_REASON:
        raise ValueError(f"suppression of {', '.join(rules)} on {construct.node.path} needs a specific reason")
    made = _acknowledged_on(construct)
    new: list[str] = []
    for rule_id in dict.fromkeys(_qualified(rule) for rule in rules):
        earlier = made.get(rule_id)
        if earlier is not None and earlier != reason:
            raise ValueError(f"{rule_id} is already acknowledged on {construct.node.path} for another reason "
                             f"({earlier!r}): give one reason per rule and construct")
        if earlier is None:
            new.append(rule_id)
    if new:
        cdk.Validations.of(construct).acknowledge(*(cdk.Acknowledgment(id=r, reason=reason) for r in new))
        made.update(dict.fromkeys(new, reason))


def acknowledge_as(construct: IConstruct, group: str, name: str, *, findings: Sequence[str] | None = None) -> None:
    """Acknowledge on ``construct`` the entry ``REASONS[group][name]`` of ``eksnet.nag_reasons``, with its reason.

    ``findings`` are the exact findings of that entry's rule as the gate prints them (``Policy::<arn>``,
    ``Resource::<arn>``: see ``managed_policy_findings`` and ``resource_findings``), each acknowledged on its
    own; an empty list acknowledges nothing. ``None`` acknowledges the whole rule on ``construct``, which
    AwsSolutions-IAM4 and -IAM5 refuse (they name each policy or resource they find).
    """
    entry = reason_for(group, name)
    if findings is None:
        if entry.rule.rpartition("::")[2] in _PER_FINDING_RULES:
            raise ValueError(f"{group}/{name}: {entry.rule} is acknowledged finding by finding: pass findings=")
        acknowledge(construct, entry.rule, entry.reason)
        return
    rule_id = _qualified(entry.rule)
    if findings:
        _acknowledge_all(construct, [f"{rule_id}[{finding}]" for finding in findings], entry.reason)


def acknowledge_custom_resource_provider(stack: cdk.Stack) -> None:
    """Acknowledge what cdk-nag finds on ``stack``'s one AwsCustomResource function, once it exists.

    aws-cdk-lib makes that function for the first ``AwsCustomResource`` of a stack and shares it with every
    later one; each construct that adds a custom resource calls this (repeating it is harmless).
    """
    from aws_cdk import custom_resources as cr

    function = stack.node.try_find_child(f"AWS{cr.AwsCustomResource.PROVIDER_FUNCTION_UUID.replace('-', '')}")
    if function is not None:
        acknowledge_as(function, "AwsCustomResource provider", "basic-execution-role",
                       findings=managed_policy_findings(["service-role/AWSLambdaBasicExecutionRole"]))


def reason_for(group: str, name: str) -> Reason:
    """The table's entry ``REASONS[group][name]``; a name the table lacks is an error listing what it has."""
    try:
        return REASONS[group][name]
    except KeyError:
        known = ", ".join(f"{g}/{n}" for g, entries in REASONS.items() for n in entries)
        raise ValueError(f"no acknowledgment {group}/{name} in eksnet.nag_reasons.REASONS (known: {known})") from None


def managed_policy_findings(policies: Sequence[str]) -> list[str]:
    """AwsSolutions-IAM4 findings for these AWS managed policies (``service-role/...`` where AWS puts them)."""
    return [f"Policy::arn:<AWS::Partition>:iam::aws:policy/{p}" for p in policies]


def resource_findings(scope: IConstruct, resources: Sequence[str]) -> list[str]:
    """AwsSolutions-IAM5 findings for the wildcard ones of ``resources`` (ARNs, tokens allowed), as cdk-nag
    prints them: references become ``<LogicalId>`` / ``<LogicalId.Attr>``, pseudo parameters ``<AWS::...>``."""
    import aws_cdk as cdk

    stack = cdk.Stack.of(scope)

    def render(v) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, dict) and "Ref" in v:
            return f"<{v['Ref']}>"
        if isinstance(v, dict) and "Fn::GetAtt" in v:
            return "<{}.{}>".format(*v["Fn::GetAtt"])
        if isinstance(v, dict) and "Fn::Join" in v:
            sep, parts = v["Fn::Join"]
            return sep.join(render(p) for p in parts)
        return str(v)

    texts = (render(stack.resolve(r)) for r in resources)
    return [f"Resource::{t}" for t in texts if "*" in t]


def _qualified(rule: str) -> str:
    """``AwsSolutions-IAM4[...]`` -> ``AwsSolutions::AwsSolutions-IAM4[...]``; a namespaced id stays as it is."""
    return rule if "::" in rule.split("[", 1)[0] else f"AwsSolutions::{rule}"


_MADE: dict[str, dict[str, str]] = {}  # jsii object id -> {rule id: reason}: what ``acknowledge`` made


def _acknowledged_on(construct: IConstruct) -> dict[str, str]:
    """The acknowledgments ``acknowledge`` made on ``construct``: rule id -> reason.

    Kept in Python, keyed by the construct's jsii object id (unique for the process, known without a call),
    rather than read back from the construct's metadata: that costs a jsii round trip per metadata entry,
    hundreds per synth (every acknowledgment goes through ``acknowledge``, so nothing is missed).
    """
    return _MADE.setdefault(construct.__jsii_ref__.ref, {})


# --- the view: every acknowledgment of a synthesized app, per stack -------------------------------------------------


class AssemblyError(ValueError):
    """The directory is not a readable cloud assembly, or lacks a stack asked for."""


@dataclass(frozen=True)
class Acknowledged:
    """One acknowledgment in a cloud assembly. Paths are relative to the stack."""

    stack: str
    at: str  # the construct it was made on (it covers that construct's children too)
    rule: str  # the id the gate matches, e.g. AwsSolutions::AwsSolutions-IAM4[Policy::...]
    reason: str
    group: str | None  # REASONS[group][name] it comes from; None when not eksnet's (aws-cdk-lib's own, the app's)
    name: str | None
    # Constructs whose findings it suppressed (validation-report.json); () when it suppressed nothing in this
    # app, None when the report does not say (no report, or the rule's plugin, e.g. CloudFormation-Validate, in none).
    suppressed: tuple[str, ...] | None


def read_acknowledgments(cdk_out: Path) -> dict[str, list[Acknowledged]]:
    """Stack name -> its acknowledgments, in the assembly's stack order and construct-tree order."""
    if not cdk_out.is_dir():
        raise AssemblyError(f"{cdk_out} is not a directory: synthesize the app first (make synth)")
    manifest = _load_json(cdk_out / "manifest.json")
    report_file = cdk_out / "validation-report.json"
    suppressed: dict[tuple[str, str], list[str]] = {}
    reported: set[str] = set()  # plugins (rule namespaces) the report covers
    if report_file.exists():
        for plugin in _load_json(report_file).get("pluginReports", []):
            reported.add(plugin.get("pluginName"))
            for item in plugin.get("suppressedViolations", []):
                paths = [c.get("constructPath", "?") for c in item.get("violatingConstructs", [])]
                suppressed.setdefault((item.get("acknowledgedAt"), item.get("acknowledgedId")), []).extend(paths)
    by_reason = {(_qualified(r.rule), r.reason): (g, n) for g, entries in REASONS.items() for n, r in entries.items()}

    stacks: dict[str, list[Acknowledged]] = {}
    for stack, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") != "aws:cloudformation:stack":
            continue
        metadata = artifact.get("metadata") or {}
        if "additionalMetadataFile" in artifact:
            metadata = _load_json(cdk_out / artifact["additionalMetadataFile"])
        found: dict[tuple[str, str], Acknowledged] = {}  # the assembly may repeat one; a reader needs it once
        for path, entries in metadata.items():
            for entry in entries:
                if not isinstance(entry, dict) or entry.get("type") != ACKNOWLEDGED_RULES \
                        or not isinstance(entry.get("data"), dict):
                    continue
                full = path.strip("/")
                for rule, reason in entry["data"].items():
                    group, name = by_reason.get((rule.split("[", 1)[0], reason), (None, None))
                    found[(full, rule)] = Acknowledged(
                        stack=stack, at=_relative(stack, full), rule=rule, reason=reason, group=group, name=name,
                        suppressed=(tuple(_relative(stack, p) for p in suppressed.get((full, rule), []))
                                    if rule.split("::", 1)[0] in reported else None),
                    )
        stacks[stack] = list(found.values())
    return stacks


def render(stacks: dict[str, list[Acknowledged]]) -> str:
    """Per stack, per reason (the table's order, then any not from eksnet): the reason once, then each
    acknowledged rule, the construct it sits on and the constructs whose findings it suppressed."""
    order = {(g, n): i for i, (g, n) in enumerate((g, n) for g, entries in REASONS.items() for n in entries)}
    lines: list[str] = []
    for stack, items in stacks.items():
        lines.append(f"{stack}: {len(items)} acknowledged rule(s)")
        groups: dict[tuple, list[Acknowledged]] = {}
        for a in items:
            groups.setdefault((a.group, a.name) if a.group else (None, a.reason), []).append(a)
        for key in sorted(groups, key=lambda k: order.get(k, len(order))):
            first = groups[key][0]
            if first.group is not None:
                entry = REASONS[first.group][first.name]
                lines.append(f"  {first.group} / {first.name}: {entry.rule}, {entry.finding}")
            else:
                lines.append("  not in eksnet's table (aws-cdk-lib's own, or the app's)")
            lines.append(f"    why: {first.reason}")
            for a in groups[key]:
                on = ("" if a.suppressed is None else f"  (suppressed on {', '.join(a.suppressed)})" if a.suppressed
                      else "  (suppressed nothing in this app)")
                lines.append(f"    {a.rule}  at {a.at or '(the stack)'}{on}")
    return "\n".join(lines)


def _relative(stack: str, path: str) -> str:
    return path[len(stack) + 1:] if path.startswith(stack + "/") else ("" if path == stack else path)


def _load_json(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except FileNotFoundError:
        raise AssemblyError(f"no {path.name} in {path.parent}: is it a cloud assembly (cdk.out)?") from None
    except (OSError, ValueError) as e:
        raise AssemblyError(f"cannot read {path}: {e}") from None
    if not isinstance(found, dict):
        raise AssemblyError(f"cannot read {path}: a JSON object expected")
    return found


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m eksnet.nag") -> int:
    parser = OneLineParser(prog=prog, description="Every acknowledged gate finding of a synthesized app, per stack, "
                                                  "with where it sits, what it suppressed and why.")
    parser.add_argument("cdk_out", nargs="?", default="cdk.out", type=Path, help="cloud assembly directory [cdk.out]")
    parser.add_argument("--stack", action="append", default=[], help="only this stack (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the acknowledgments as JSON")
    args = parser.parse_args(argv)
    try:
        stacks = read_acknowledgments(args.cdk_out)
        unknown = [s for s in args.stack if s not in stacks]
        if unknown:
            raise AssemblyError(f"no stack {', '.join(unknown)} in {args.cdk_out} (stacks: {', '.join(stacks)})")
    except AssemblyError as e:
        return error(prog, str(e))
    if args.stack:
        stacks = {s: stacks[s] for s in args.stack}
    if args.json:
        print(json.dumps({s: [asdict(a) for a in items] for s, items in stacks.items()}, indent=2))
    else:
        print(render(stacks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
