"""``eksnet.validate``: the naming, CIDR and enum rules every construct and builder shares, one behaviour a test.

Each check returns what it accepted and raises the error class it is given, with a message that names the
field, the value and the rule. The last tests pin the cases where the constructs' own copies of a rule used to
disagree with Kubernetes or AWS.
"""

from __future__ import annotations

import enum
import ipaddress
import re

import pytest
from eksnet import validate
from support.paths import ROOT


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class MyError(ValueError):
    pass


# --- DNS-1123 label (namespaces) ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "0", "kube-system", "a" * 63, "1abc", "a-1"])
def test_a_dns1123_label_takes_lower_case_letters_digits_and_inner_dashes(name):
    assert validate.dns1123_label(name, "namespace") == name


@pytest.mark.parametrize("name", ["", "a" * 64, "Prod", "-a", "a-", "a.b", "a_b", "a b", None, 5])
def test_a_dns1123_label_refuses_anything_else(name):
    with pytest.raises(ValueError, match=r"namespace must be a DNS-1123 label \(1-63 lower-case"):
        validate.dns1123_label(name, "namespace")


# --- DNS-1123 subdomain (object names) -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "a.b", "my-policy.v1", ".".join(["a" * 63] * 3) + "." + "a" * 61])
def test_a_dns1123_subdomain_is_labels_joined_by_dots_up_to_253_characters(name):
    assert validate.dns1123_subdomain(name, "name") == name


@pytest.mark.parametrize("name", ["", "a" * 254, "A", "a..b", ".a", "a.", "a.-b", "a_b"])
def test_a_dns1123_subdomain_refuses_anything_else(name):
    with pytest.raises(ValueError, match="name must be a DNS-1123 subdomain"):
        validate.dns1123_subdomain(name, "name")


# --- label keys and values ------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["app", "App.Name_1", "k8s.io/name", "kubernetes.io/metadata.name", "a" * 63])
def test_a_label_key_is_an_optional_subdomain_prefix_and_a_63_character_name(key):
    assert validate.label_key(key) == key


@pytest.mark.parametrize(("key", "rule"), [
    ("", "name part"),
    ("a" * 64, "name part"),
    ("-app", "name part"),
    ("app.", "name part"),
    ("bad key!", "name part"),
    ("Example.com/app", "DNS-1123 subdomain"),
    ("a/b/c", "more than one '/'"),
])
def test_a_label_key_refuses_a_bad_name_or_prefix(key, rule):
    with pytest.raises(ValueError, match=re.escape(rule)):
        validate.label_key(key)


@pytest.mark.parametrize("value", ["", "v1", "A.b-c_d", "x" * 63])
def test_a_label_value_may_be_empty_or_63_characters(value):
    assert validate.label_value(value, "label app") == value


@pytest.mark.parametrize("value", ["x" * 64, "-v", "v-", "a b", "a/b", None])
def test_a_label_value_refuses_anything_else(value):
    with pytest.raises(ValueError, match="label app: a label value must be at most 63 characters"):
        validate.label_value(value, "label app")


def test_labels_checks_every_key_and_value_and_returns_a_dict():
    assert validate.labels((("app", "web"),)) == {"app": "web"}
    with pytest.raises(ValueError, match="label tier: a label value"):
        validate.labels({"app": "web", "tier": "-x"})


# --- port names -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["http", "dns-tcp", "h2", "a" * 15, "9p"])
def test_a_port_name_is_an_iana_service_name(name):
    assert validate.port_name(name) == name


@pytest.mark.parametrize("name", ["", "a" * 16, "HTTP", "http--alt", "-http", "http-", "8080", "my_port"])
def test_a_port_name_refuses_anything_else(name):
    with pytest.raises(ValueError, match="must be an IANA service name"):
        validate.port_name(name)


# --- AWS names ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a", "0", "My_Cluster-1", "a" * 100])
def test_an_eks_cluster_name_is_1_to_100_letters_digits_dashes_and_underscores(name):
    assert validate.eks_cluster_name(name) == name


@pytest.mark.parametrize("name", ["", "a" * 101, "-a", "_a", "my cluster", "a.b"])
def test_an_eks_cluster_name_refuses_anything_else(name):
    with pytest.raises(ValueError, match=r"cluster_name must be an EKS cluster name \(1-100"):
        validate.eks_cluster_name(name)


def test_an_eks_node_group_name_is_at_most_63_characters():
    assert validate.eks_nodegroup_name("n" * 63) == "n" * 63
    with pytest.raises(ValueError, match=r"must be an EKS node group name \(1-63"):
        validate.eks_nodegroup_name("n" * 64)


@pytest.mark.parametrize(("check", "good", "bad"), [
    (validate.region, "us-gov-west-1", "eu-central-1a"),
    (validate.availability_zone, "eu-central-1a", "eu-central-1"),
    (validate.account_id, "123456789012", "12345678901"),
])
def test_region_zone_and_account_follow_their_aws_formats(check, good, bad):
    assert check(good) == good
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        check(bad)


# --- hardware addresses ---------------------------------------------------------------------------------------

def test_a_mac_address_is_six_hex_pairs():
    assert validate.mac_address("0a:1B:2c:3d:4e:5f") == "0a:1B:2c:3d:4e:5f"
    with pytest.raises(ValueError, match="is not a MAC address"):
        validate.mac_address("0a-1b-2c-3d-4e-5f")


def test_a_pci_address_is_domain_bus_device_function():
    assert validate.pci_address("0000:00:06.0") == "0000:00:06.0"
    with pytest.raises(ValueError, match="is not a PCI address"):
        validate.pci_address("00:06.0")


# --- CIDRs ----------------------------------------------------------------------------------------------------

def test_a_network_is_parsed_with_ipaddress():
    assert validate.network("2001:db8::/56", "cidr") == ipaddress.IPv6Network("2001:db8::/56")


def test_a_network_needs_an_explicit_prefix_length():
    with pytest.raises(ValueError, match=r"cidr '10.0.0.1' needs a prefix length, e.g. 10.0.0.1/32"):
        validate.network("10.0.0.1", "cidr")


def test_a_network_with_host_bits_says_what_to_write():
    with pytest.raises(ValueError, match=r"has host bits set; write 10.0.0.0/16"):
        validate.network("10.0.1.0/16", "cidr")


def test_a_network_that_does_not_parse_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"cidr '10.0.0.300/24' is not a CIDR such as .*does not appear"):
        validate.network("10.0.0.300/24", "cidr")


def test_a_network_of_the_wrong_ip_version_is_refused():
    with pytest.raises(ValueError, match=r"ipv4_cidr must be an IPv4 CIDR such as 192.168.0.0/16, got 'fd00::/56'"):
        validate.ipv4_network("fd00::/56", "ipv4_cidr")


@pytest.mark.parametrize(("cidr", "ok"), [("10.0.0.0/15", False), ("10.0.0.0/16", True), ("10.0.0.0/24", True),
                                          ("10.0.0.0/25", False)])
def test_prefix_bounds_are_inclusive(cidr, ok):
    if ok:
        validate.ipv4_network(cidr, "ipv4_cidr", min_prefix=16, max_prefix=24)
    else:
        with pytest.raises(ValueError, match=r"must be between /16 and /24 \(VPC limits\)"):
            validate.ipv4_network(cidr, "ipv4_cidr", min_prefix=16, max_prefix=24, why=" (VPC limits)")


def test_canonical_refuses_other_spellings_of_the_same_network():
    assert validate.network("2001:DB8::/32", "cidr") == ipaddress.ip_network("2001:db8::/32")
    with pytest.raises(ValueError, match="not in canonical form; write 2001:db8::/32"):
        validate.network("2001:DB8::/32", "cidr", canonical=True)


def test_inside_is_false_across_ip_versions_and_strictly_excludes_equality():
    net = ipaddress.ip_network("10.0.0.0/16")
    assert validate.inside(ipaddress.ip_network("10.0.1.0/24"), net)
    assert validate.inside(net, net) and not validate.inside(net, net, strictly=True)
    assert not validate.inside(ipaddress.ip_network("::/64"), net)


def test_overlap_returns_the_first_overlapping_pair_in_order_and_none_when_disjoint():
    a, b, c = (ipaddress.ip_network(n) for n in ("10.0.0.0/24", "10.0.1.0/24", "10.0.1.128/25"))
    assert validate.overlap([a, b, c]) == (b, c)
    assert validate.overlap([a, b]) is None
    assert validate.overlap([ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]) is None


def test_an_address_and_an_interface_are_parsed_and_an_interface_needs_its_prefix():
    assert validate.address("192.168.96.20", "gw") == ipaddress.ip_address("192.168.96.20")
    assert validate.interface("192.168.96.20/19", "ip").network == ipaddress.ip_network("192.168.96.0/19")
    with pytest.raises(ValueError, match="needs a prefix length"):
        validate.interface("192.168.96.20", "ip")
    with pytest.raises(ValueError, match="is not an IP address"):
        validate.address("192.168.96.300", "gw")


# --- enums ----------------------------------------------------------------------------------------------------

def test_an_enum_member_or_its_value_is_accepted():
    assert validate.enum_member(Colour, Colour.RED, "colour") is Colour.RED
    assert validate.enum_member(Colour, "blue", "colour") is Colour.BLUE


def test_an_unknown_enum_value_lists_the_choices():
    with pytest.raises(ValueError, match=r"colour 'green' is not one of Colour.RED \('red'\), Colour.BLUE \('blue'\)"):
        validate.enum_member(Colour, "green", "colour")


# --- the error class ------------------------------------------------------------------------------------------

def test_every_check_raises_the_error_class_it_is_given():
    for call in (lambda: validate.dns1123_label("A", "x", MyError), lambda: validate.network("x", "x", error=MyError),
                 lambda: validate.enum_member(Colour, "x", "x", MyError), lambda: validate.label_key("/a", error=MyError)):
        with pytest.raises(MyError):
            call()


# --- one place ------------------------------------------------------------------------------------------------

def test_no_other_module_of_the_library_compiles_a_pattern_of_its_own():
    library = ROOT / "constructs" / "eksnet"
    compiling = [str(p.relative_to(library)) for p in library.rglob("*.py")
                 if "re.compile(" in p.read_text() and p.name != "validate.py"]
    assert compiling == []


def test_no_other_module_checks_input_against_a_pattern_of_its_own():
    # eksnet plan reads the placeholders of a synthesized template: parsing its own format, not checking input.
    library = ROOT / "constructs" / "eksnet"
    matching = [str(p.relative_to(library)) for p in library.rglob("*.py")
                if re.search(r"\bre\.(match|fullmatch|search)\(", p.read_text())
                and p.name != "validate.py" and not p.name.startswith("plan_")]
    assert matching == []


NODE_SIDE = [  # (check, a good value): each refuses the good value with a trailing newline, which re.match's "$" let by
    (validate.is_env_var_name, "ENABLE_PREFIX_DELEGATION"),
    (validate.is_ipam_pool_name, "multus1"),
    (validate.is_cni_conf_file_name, "10-aws.conflist"),
    (validate.is_interface_name_prefix, "multus"),
    (validate.is_shell_safe_absolute_path, "/usr/bin/python3.11"),
    (validate.is_package_name, "python3.11"),
]


@pytest.mark.parametrize(("check", "good"), NODE_SIDE, ids=[c.__name__ for c, _ in NODE_SIDE])
def test_a_node_side_name_is_checked_whole(check, good):
    assert check(good)
    assert not check(good + "\n")
    assert not check(f" {good}")
    assert not check(None)


def test_pool_names_and_interface_prefixes_keep_their_length_limits():
    assert validate.is_ipam_pool_name("p" * 63) and not validate.is_ipam_pool_name("p" * 64)
    assert validate.is_interface_name_prefix("m" * 13) and not validate.is_interface_name_prefix("m" * 14)


def test_a_relative_or_shell_path_is_not_shell_safe():
    assert not validate.is_shell_safe_absolute_path("usr/bin/python3")
    assert not validate.is_shell_safe_absolute_path("/usr/bin/python3; rm -rf /")


def test_version_numbers_read_the_leading_release():
    assert validate.version_numbers("v1.20.0-eksbuild.1") == (1, 20, 0)
    assert validate.version_numbers("1.19.2") == (1, 19, 2)
    assert validate.version_numbers("latest") is None


# --- where the constructs' copies used to disagree ------------------------------------------------------------

def test_a_label_key_with_an_empty_prefix_is_refused():
    from eksnet.policy import LabelSelector

    with pytest.raises(ValueError, match="DNS-1123 subdomain"):
        LabelSelector(match_labels={"/app": "web"})


def test_a_security_group_policy_namespace_is_a_label_not_a_subdomain():
    from eksnet.vpc_cni import security_group_policy

    with pytest.raises(ValueError, match="SecurityGroupPolicy namespace must be a DNS-1123 label"):
        security_group_policy("p", "team.a", security_group_ids=["sg-1"], pod_labels={"app": "web"})


def test_security_group_policy_selector_labels_are_checked():
    from eksnet.vpc_cni import security_group_policy

    with pytest.raises(ValueError, match="pod_labels key"):
        security_group_policy("p", "team-a", security_group_ids=["sg-1"], pod_labels={"bad key": "web"})


def test_a_multus_route_destination_needs_its_prefix_length():
    from eksnet.multus import MultusConfigError, Route

    with pytest.raises(MultusConfigError, match="route destination '10.0.0.1' needs a prefix length"):
        Route("10.0.0.1")


def test_nad_labels_are_checked():
    from eksnet.multus import Ipvlan, MultusConfigError, NetworkAttachmentDefinition, StaticIpam

    with pytest.raises(MultusConfigError, match="label app: a label value"):
        NetworkAttachmentDefinition("n", Ipvlan(master="eth1"), StaticIpam(), labels={"app": "-x"})


def test_a_node_group_name_follows_eks_naming_not_only_its_length():
    from eksnet.cluster import NodeGroupSpec

    with pytest.raises(ValueError, match="NodeGroupSpec.name must be an EKS node group name"):
        NodeGroupSpec("my group")
