from tests.harness import default_vpc_id, run_program


def ingress(program) -> set[tuple[int, str]]:
    return {
        (rule.inputs["fromPort"], rule.inputs["cidrIpv4"])
        for rule in program.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    }


def test_ip_host_defaults_to_its_own_slash_32():
    program = run_program()
    assert ingress(program) == {(9618, "203.0.113.7/32"), (22, "203.0.113.7/32")}
    assert program.named("annex-us-east-1-sg").inputs["vpcId"] == default_vpc_id("us-east-1")


def test_instances_admit_their_own_port_whatever_the_collectors_is():
    """An annex instance listens on its shared port, 9618, which condor_annex never sets; the pool's
    collectorPort is where the instance calls back, not where it listens (tests/e2e/test_annex.py:
    collectorPort 9619 with these rules as the instance's firewall)."""
    program = run_program(
        {
            "condor-annex:collectorPort": "9700",
            "condor-annex:condorIngressCidrs": '["198.51.100.0/24", "203.0.113.7/32"]',
            "condor-annex:sshIngressCidrs": "[]",
        }
    )
    assert ingress(program) == {(9618, "198.51.100.0/24"), (9618, "203.0.113.7/32")}
    for rule in program.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        assert rule.inputs["ipProtocol"] == "tcp" and rule.inputs["toPort"] == rule.inputs["fromPort"]


def test_open_world_only_when_asked():
    program = run_program(
        {
            "condor-annex:host": "submit.example.org",
            "condor-annex:condorIngressCidrs": '["0.0.0.0/0"]',
            "condor-annex:sshIngressCidrs": '["0.0.0.0/0"]',
        }
    )
    assert ingress(program) == {(9618, "0.0.0.0/0"), (22, "0.0.0.0/0")}


def test_explicit_egress():
    (egress,) = run_program().of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
    assert egress.inputs["ipProtocol"] == "-1" and egress.inputs["cidrIpv4"] == "0.0.0.0/0"
