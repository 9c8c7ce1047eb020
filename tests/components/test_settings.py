"""Every bad value fails before any resource exists, with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.settings import ConfigError
from tests.harness import BASE_CONFIG, HOST_KEY, LOCAL_REACH, Program, run_program

P = "condor-annex"

BAD_CONFIGS = [
    # (config overrides, key the message must name, words it must contain)
    ({f"{P}:host": None}, f"{P}:host is required", "DNS name"),
    ({f"{P}:host": "submit.example.org; rm -rf ~"}, f"{P}:host", "DNS name"),
    ({f"{P}:host": "$(reboot)"}, f"{P}:host", "DNS name"),
    ({f"{P}:publicName": "submit.example.org:9618"}, f"{P}:publicName", "DNS name or IPv4 address"),
    ({f"{P}:sshUser": None}, f"{P}:sshUser is required", "non-root"),
    ({f"{P}:sshUser": "root"}, f"{P}:sshUser", "non-root"),
    ({f"{P}:sshUser": "alice bob"}, f"{P}:sshUser", "Unix user name"),
    ({f"{P}:sshPort": "ssh"}, f"{P}:sshPort", "1 to 65535"),
    ({f"{P}:sshPort": "70000"}, f"{P}:sshPort", "1 to 65535"),
    ({f"{P}:sshPrivateKey": "not a key"}, f"{P}:sshPrivateKey = [secret]", "PRIVATE KEY"),
    ({f"{P}:sshHostKey": "AAAAC3Nza"}, f"{P}:sshHostKey", "host key"),
    ({f"{P}:condorVersion": "24.0"}, f"{P}:condorVersion", "24.0.23 or 8.7.3"),
    ({f"{P}:condorVersion": "26.0.1"}, f"{P}:condorVersion", "the next major"),
    ({"aws:assumeRoles": '[{"roleArn": "arn:aws:iam::123456789012:role/deployer"}]'}, "aws:assumeRoles", "AWS_*"),
    ({"aws:regoin": "eu-west-2"}, "aws:regoin", "only aws:region and aws:profile"),
    ({f"{P}:regions": '"us-east-1"'}, f"{P}:regions", "non-empty list of AWS region names"),
    ({f"{P}:regions": "[]"}, f"{P}:regions", "non-empty list of AWS region names"),
    ({f"{P}:regions": '["us-east-1", "mars-north-1"]'}, f"{P}:regions = 'mars-north-1'", "AWS region name"),
    ({f"{P}:regions": '["us-east-1", "eu-west-2", "us-east-1"]'}, f"{P}:regions", "each region once"),
    (
        {f"{P}:regions": '["us-east-1", "eu-west-2"]', f"{P}:condorVersion": "8.7.3"},
        f"{P}:regions",
        "exactly one region",
    ),
    ({f"{P}:condorVersion": "8.6.8"}, f"{P}:condorVersion", "8.7.1"),
    # Cancelled (HTCONDOR-3843), skipped, and a series HTCondor never had.
    (
        {f"{P}:condorVersion": "24.0.24"},
        f"{P}:condorVersion",
        "never released this one (the newest of its series is 24.0.23)",
    ),
    ({f"{P}:condorVersion": "25.0.4"}, f"{P}:condorVersion", "never released"),
    ({f"{P}:condorVersion": "25.9.1"}, f"{P}:condorVersion", "never released"),
    ({"aws:region": "us-gov-west-1"}, "aws:region", "standard `aws` partition"),
    ({f"{P}:regions": '["us-east-1", "cn-north-1"]'}, f"{P}:regions = 'cn-north-1'", "arn:aws:s3:::"),
    ({f"{P}:condorTarballUrl": "ftp://example.org/condor.tgz"}, f"{P}:condorTarballUrl", "http(s) URL"),
    ({f"{P}:condorTarballUrl": "https://example.org/$(id).tgz"}, f"{P}:condorTarballUrl", "no quotes"),
    ({f"{P}:condorTarballUrl": "https://example.org/a'b.tgz"}, f"{P}:condorTarballUrl", "no quotes"),
    ({f"{P}:condorTarballSha256": "abc123"}, f"{P}:condorTarballSha256", "64 lower-case hex"),
    ({f"{P}:installDir": "condor"}, f"{P}:installDir", "absolute path"),
    ({f"{P}:installDir": "~/condor dir"}, f"{P}:installDir", "absolute path"),
    ({f"{P}:installDir": "~/../etc"}, f"{P}:installDir", "no .."),
    ({f"{P}:installDir": "~/x\nrm -rf ~"}, f"{P}:installDir", "absolute path"),
    ({f"{P}:installDir": "~/"}, f"{P}:installDir", "directory of its own"),
    ({f"{P}:collectorPort": "80"}, f"{P}:collectorPort", "1024 to 65535"),
    ({f"{P}:collectorPort": "9618\nALLOW_WRITE = *"}, f"{P}:collectorPort", "1024 to 65535"),
    ({f"{P}:poolPassword": None}, f"{P}:poolPassword is required", "--secret"),
    ({f"{P}:poolPassword": ""}, f"{P}:poolPassword is required", "--secret"),
    ({f"{P}:poolPassword": "line1\nline2"}, f"{P}:poolPassword = [secret]", "one line"),
    ({f"{P}:poolPassword": "x" * 256}, f"{P}:poolPassword = [secret]", "255 bytes"),
    ({f"{P}:poolPassword": "fifteen-chars!!"}, f"{P}:poolPassword = [secret]", "at least 16 characters"),
    ({f"{P}:condorIngressCidrs": '["10.0.0.1/8"]'}, f"{P}:condorIngressCidrs", "host bits"),
    ({f"{P}:condorIngressCidrs": "10.0.0.0/8"}, f"{P}:condorIngressCidrs", "list of IPv4 CIDR"),
    ({f"{P}:condorIngressCidrs": "[]"}, f"{P}:condorIngressCidrs", "at least one"),
    ({f"{P}:sshIngressCidrs": '["300.1.1.1/32"]'}, f"{P}:sshIngressCidrs", "IPv4 CIDR"),
    ({f"{P}:host": "submit.example.org"}, f"{P}:condorIngressCidrs is required", "0.0.0.0/0"),
    ({f"{P}:annexImageId": "ami-'; echo"}, f"{P}:annexImageId", "AMI id"),
    ({f"{P}:annexImageTarballSha256": "ABC"}, f"{P}:annexImageTarballSha256", "64 lower-case hex"),
    (
        {f"{P}:condorTarballUrl": "https://mirror.example.org/condor-25.0.13-x86_64_Ubuntu24-stripped.tar.gz"},
        f"{P}:condorTarballUrl",
        "x86_64_AmazonLinux2023 tarball; or set annexImageId",
    ),
    ({f"{P}:annexesOnDestroy": "stop"}, f"{P}:annexesOnDestroy", "refuse (destroy deletes nothing"),
    ({f"{P}:annexesOnDestroy": "end\nrm -rf ~"}, f"{P}:annexesOnDestroy", "refuse"),
    ({f"{P}:annexInstanceType": "m5.large\nSTART = FALSE"}, f"{P}:annexInstanceType", "instance type"),
    ({f"{P}:logRetentionDays": "10"}, f"{P}:logRetentionDays", "one of 1, 3, 5"),
    ({"aws:region": None}, "aws:region is required", "us-east-1"),
    # The machine running pulumi itself: no SSH settings, and no address AWS could see to default to.
    ({f"{P}:host": "localhost"}, f"{P}:sshUser is set, but host is localhost", "without SSH"),
    (
        {f"{P}:host": "127.0.0.1", f"{P}:sshUser": None, f"{P}:sshHostKey": "ssh-ed25519 AAAA"},
        f"{P}:sshHostKey is set, but host is 127.0.0.1",
        "remove it",
    ),
    (
        {f"{P}:host": "::1", f"{P}:sshUser": None, f"{P}:sshHostKey": None},
        f"{P}:condorIngressCidrs is required",
        "not the address AWS sees",
    ),
    (
        {
            f"{P}:host": "localhost",
            f"{P}:sshUser": None,
            f"{P}:sshHostKey": None,
            f"{P}:condorIngressCidrs": '["203.0.113.7/32"]',
        },
        f"{P}:sshIngressCidrs is required",
        "[] for none",
    ),
    ({f"{P}:condorVersoin": "8.7.3"}, f"{P}:condorVersoin is not a key", "did you mean"),
    ({"aws:region": "mars-north-1; true"}, "aws:region", "AWS region name"),
    # condor_annex keeps 27 characters of an annex name for its rule: a prefix leaves 7 at least.
    ({f"{P}:annexNamePrefix": "a-prefix-longer-than-20-"}, f"{P}:annexNamePrefix", "1 to 20 letters"),
    ({f"{P}:annexNamePrefix": "alice/*"}, f"{P}:annexNamePrefix", "1 to 20 letters"),
    ({f"{P}:annexNamePrefix": "-alice"}, f"{P}:annexNamePrefix", "beginning with a letter or digit"),
]


@pytest.mark.parametrize("overrides, key, words", BAD_CONFIGS, ids=[case[1] + ":" + case[2] for case in BAD_CONFIGS])
def test_bad_config_fails_before_any_resource(monkeypatch, overrides, key, words):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    program = Program()
    with pytest.raises(ConfigError) as raised:
        run_program(overrides, into=program)
    assert program.registrations == [], f"{[r.name for r in program.registrations]} registered before the error"
    message = str(raised.value)
    line = next((line for line in message.splitlines() if key in line), None)
    assert line is not None, f"the message does not name {key}: {message}"
    assert words in line, f"the message for {key} does not say what is accepted ({words!r}): {line}"
    for value in overrides.values():
        if value and key.endswith("[secret]"):
            assert value not in message, "a secret value was echoed in the error"


def test_every_problem_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        run_program({f"{P}:sshPort": "x", f"{P}:collectorPort": "1", f"{P}:installDir": "rel"})
    message = str(raised.value)
    for key in ("sshPort", "collectorPort", "installDir"):
        assert f"{P}:{key}" in message


def test_defaults():
    from components.settings import read_settings

    class Config:
        def __init__(self, values):
            self.values = values

        def get(self, key):
            return self.values.get(key)

    project = {k.split(":", 1)[1]: v for k, v in BASE_CONFIG.items() if k.startswith(P)}
    settings = read_settings(
        Config(project), Config({"region": "eu-west-1"}), environ=lambda _: None, config_keys=lambda: project
    )
    assert settings.release.version == "25.0.13" and settings.regions == ["eu-west-1"]
    assert settings.install_dir == "~/condor-25.0.13"
    assert settings.collector_port == 9618 and settings.ssh_port == 22
    assert settings.condor_ingress_cidrs == ["203.0.113.7/32"] == settings.ssh_ingress_cidrs
    assert "{platform}" in settings.tarball_url and "/25.0/25.0.13/" in settings.tarball_url


GOOD_VALUES = {
    f"{P}:host": "203.0.113.7",
    f"{P}:sshUser": "annex",
    f"{P}:publicName": "198.51.100.4",
    f"{P}:sshPort": "22",
    f"{P}:sshHostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAai6gPahF04cQCGF76ki7OmuRulu8RDvtkqFFLZE8zW",
    f"{P}:condorVersion": "24.0.23",
    f"{P}:condorTarballUrl": "https://example.org/condor-{platform}.tar.gz",
    f"{P}:condorTarballSha256": "0" * 64,
    f"{P}:installDir": "~/condor",
    f"{P}:collectorPort": "9618",
    f"{P}:poolPassword": "SENTINEL-pool-password-5d1e",
    f"{P}:annexImageId": "ami-0123456789abcdef0",
    f"{P}:annexInstanceType": "m5.large",
    f"{P}:logRetentionDays": "14",
    f"{P}:annexNamePrefix": "alice-",
    "aws:region": "us-east-1",
}
# Inside the list, where a value would reach the security group.
LIST_KEYS = {
    f"{P}:condorIngressCidrs": "203.0.113.7/32",
    f"{P}:sshIngressCidrs": "203.0.113.7/32",
    f"{P}:regions": "us-east-2",
}


def refused_keys(overrides: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as raised:
        run_program(overrides)
    return str(raised.value)


@pytest.mark.parametrize("key", [*GOOD_VALUES, *LIST_KEYS])
def test_a_trailing_newline_is_refused_for_every_key(key: str):
    """`$` matches before a final newline: each value must match as a whole string."""
    value = f'["{LIST_KEYS[key]}\\n"]' if key in LIST_KEYS else GOOD_VALUES[key] + "\n"
    run_program({key: value.replace("\n", "") if key not in LIST_KEYS else f'["{LIST_KEYS[key]}"]'})
    assert key in refused_keys({key: value})


@pytest.mark.parametrize("key", [k for k in [*GOOD_VALUES, *LIST_KEYS] if k != f"{P}:poolPassword"])
def test_non_ascii_digits_and_letters_are_refused(key: str):
    """Unicode digits pass `\\d` and int(); they must not reach a URL, a path or an ARN."""
    good = LIST_KEYS.get(key) or GOOD_VALUES[key]
    value = good.replace("2", "\uff12", 1) if "2" in good else good + "\u00e9"
    assert value != good
    assert key in refused_keys({key: f'["{value}"]' if key in LIST_KEYS else value})


def test_pool_password_limit_counts_bytes_not_characters():
    run_program({f"{P}:poolPassword": "\u00e9" * 127 + "x"})  # 255 bytes in UTF-8
    message = refused_keys({f"{P}:poolPassword": "\u00e9" * 128})  # 128 characters, 256 bytes
    assert f"{P}:poolPassword = [secret]" in message and "255 bytes" in message


@pytest.mark.parametrize("character", ["\b", "\x03", "\r", "\t", "\x7f"])
def test_pool_password_control_characters_are_refused(character: str):
    """condor_store_cred's prompt treats backspace as an edit and ^C as an abort."""
    message = refused_keys({f"{P}:poolPassword": f"pass{character}word"})
    assert f"{P}:poolPassword = [secret]" in message and "control characters" in message


def test_optional_keys_at_their_pulumi_yaml_default_are_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The CLI merges Pulumi.yaml's defaults into the stack's config: "" must read as unset."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "known_hosts").write_text(f"203.0.113.7 {HOST_KEY}\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    optional = ["sshPrivateKey", "sshHostKey", "condorTarballUrl", "condorTarballSha256", "installDir"]
    program = run_program(
        {f"{P}:{key}": "" for key in [*optional, "annexImageId", "annexImageTarballSha256", "annexInstanceType"]}
        | {f"{P}:joinStack": "", f"{P}:annexesOnDestroy": "refuse"}
        | {f"{P}:sshAcceptAnyHostKey": "false", f"{P}:machineGone": "false"}
    )
    install = program.named("personal-condor-install").inputs["create"]
    assert 'INSTALL_DIR="$HOME"/condor-25.0.13' in install
    assert "https://htcss-downloads.chtc.wisc.edu/tarball/25.0/25.0.13/release/" in install
    connection = program.named("personal-condor-install").inputs["connection"]
    assert "privateKey" not in connection and connection["hostKey"] == HOST_KEY, "known_hosts holds the key"
    functions = {r.inputs.get("name") for r in program.of_type("aws:lambda/function:Function")}
    assert {"HTCondorAnnex-odiLease", "HTCondorAnnex-CheckConnectivity"} <= functions, (
        "an empty joinStack joins nothing"
    )


@pytest.mark.parametrize(
    "version, directory",
    [("25.0.13", "25.0/25.0.13"), ("24.12.23", "24.x/24.12.23"), ("10.4.3", "10.x/10.4.3"), ("8.7.3", "8.7/8.7.3")],
)
def test_default_tarball_url_follows_the_download_sites_layout(version: str, directory: str):
    """LTS lines under <major>.0, feature releases under <major>.x (condor_remote_cluster at v25.0.13)."""
    install = run_program({f"{P}:condorVersion": version}).named("personal-condor-install").inputs["create"]
    expected = f"https://htcss-downloads.chtc.wisc.edu/tarball/{directory}/release/condor-{version}-{{platform}}"
    assert expected in install


def test_a_version_newer_than_every_known_release_is_let_through_with_a_warning():
    """It may have come out after the list was made; the preflight step asks the download site."""
    program = run_program({f"{P}:condorVersion": "25.0.14"})
    assert any("25.0.14" in line and "newer than every HTCondor release" in line for line in program.logs)
    assert not any("newer than every" in line for line in run_program().logs)


def test_localhost_needs_no_ssh_user_under_pulumi_yamls_defaults():
    """The CLI hands the program Pulumi.yaml's default "" for sshUser: that is unset, not a value."""
    program = run_program(
        {
            f"{P}:host": "localhost",
            f"{P}:sshUser": "",
            f"{P}:sshHostKey": "",
            f"{P}:sshAcceptAnyHostKey": "false",
            f"{P}:condorIngressCidrs": '["203.0.113.7/32"]',
            f"{P}:sshIngressCidrs": "[]",
        }
    )
    assert program.of_type("command:local:Command")


def test_a_private_key_in_plain_text_is_refused():
    from tests.harness import ssh_private_key_pem

    with pytest.raises(ConfigError) as raised:
        run_program({f"{P}:sshPrivateKey": ssh_private_key_pem()}, secret_keys=[f"{P}:poolPassword"])
    message = str(raised.value)
    assert f"{P}:sshPrivateKey = [secret]" in message and "--secret" in message
    assert "SENTINEL-ssh-private-key" not in message


def test_a_passphrase_protected_key_reaches_the_connection_as_a_secret_and_nowhere_else():
    from tests.harness import SECRET_KEYS, ssh_private_key_pem

    passphrase = "SENTINEL-key-passphrase-0d9e"
    config = {f"{P}:sshPrivateKey": ssh_private_key_pem(), f"{P}:sshPrivateKeyPassphrase": passphrase}
    secrets = [*SECRET_KEYS, f"{P}:sshPrivateKeyPassphrase"]
    install = run_program(config, secret_keys=secrets).named("personal-condor-install")
    assert install.inputs["connection"]["privateKeyPassword"] == passphrase
    assert "connection" in install.secret_inputs
    with pytest.raises(ConfigError, match=r"sshPrivateKeyPassphrase = \[secret\].*--secret"):
        run_program(config)
    with pytest.raises(ConfigError, match="sshPrivateKey, which is unset"):
        run_program({f"{P}:sshPrivateKeyPassphrase": passphrase}, secret_keys=secrets)


@pytest.mark.parametrize(
    "pasted",
    [HOST_KEY, f"{HOST_KEY} root@submit", f"submit.example.org {HOST_KEY}", f"[203.0.113.7]:2222 {HOST_KEY}"],
    ids=["bare", "pub-line", "keyscan", "keyscan-port"],
)
def test_host_key_as_users_paste_it(pasted: str):
    connection = run_program({f"{P}:sshHostKey": pasted}).named("personal-condor-install").inputs["connection"]
    assert connection["hostKey"] == HOST_KEY


@pytest.mark.parametrize(
    "pasted",
    [
        "AAAAC3NzaC1lZDI1NTE5AAAAIAai6gPahF04cQCGF76ki7OmuRulu8RDvtkqFFLZE8zW",  # no type
        HOST_KEY.replace("ssh-ed25519", "ssh-rsa"),  # the blob names another type
        HOST_KEY[:-8],  # cut off
        f"{HOST_KEY}\nssh-rsa AAAA",  # two lines
        f"a b {HOST_KEY}",  # more than a host before it
    ],
)
def test_other_host_key_forms_are_refused_naming_the_accepted_ones(pasted: str):
    message = refused_keys({f"{P}:sshHostKey": pasted})
    assert f"{P}:sshHostKey" in message and "ssh-keyscan line" in message and ".pub line" in message


def test_a_misspelt_key_is_refused_naming_the_nearest():
    message = refused_keys({f"{P}:condorVersoin": "8.7.3"})
    assert f"{P}:condorVersoin is not a key this program reads: did you mean {P}:condorVersion?" in message


def test_localhost_runs_every_step_here_as_a_local_command():
    program = run_program(LOCAL_REACH)
    assert program.of_type("command:remote:Command") == []
    local = program.of_type("command:local:Command")
    assert len(local) == 13
    for step in local:
        assert "connection" not in step.inputs and step.inputs["addPreviousOutputInEnv"] is False
        assert step.delete_before_replace
    store = program.named("personal-condor-pool-password")
    assert "stdin" in store.secret_inputs and store.inputs["logging"] == "none"
