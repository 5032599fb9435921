"""`autoglm render` and `autoglm crd` on the shipped examples.

The parser holds only this package's subcommands, so these tests do not depend on the others.
"""
from __future__ import annotations

import argparse

import pytest
import yaml

from autoglm_operator.api.capabilities import Capabilities
from autoglm_operator.api.crd import crd_yaml
from autoglm_operator.cli.commands import register


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="autoglm")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def _examples(repo):
    found = sorted((repo / "manifests" / "examples").glob("*.yaml"))
    assert len(found) >= 4
    return found


def test_every_example_renders(repo, capsys):
    for example in _examples(repo):
        assert main(["render", "-f", str(example), "--capabilities", "keda,istio,gateway_api,inference_pool,mirror_percent"]) == 0, \
            example.name
        objects = list(yaml.safe_load_all(capsys.readouterr().out))
        assert objects[0]["kind"] == "Deployment", example.name


def test_output_is_alias_free_yaml(repo, capsys):
    main(["render", "-f", str(repo / "manifests/examples/04-secured-jwt.yaml"), "--capabilities", "istio"])
    assert "&id" not in capsys.readouterr().out


def test_invalid_spec_exits_2_with_the_field(tmp_path, make_cr, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(make_cr(autoscaling={"minReplicas": 3, "maxReplicas": 1})))
    assert main(["render", "-f", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "minReplicas must be <= autoscaling.maxReplicas" in captured.err


def test_a_missing_file_exits_2_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    assert main(["render", "-f", str(missing)]) == 2
    assert capsys.readouterr().err == f"autoglm render: cannot read {missing}: No such file or directory\n"


def test_unknown_capability_blames_the_flag_and_names_every_valid_one(repo, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["render", "-f", str(repo / "manifests/examples/01-minimal.yaml"), "--capabilities", "keda,linkerd"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --capabilities: unknown capabilities linkerd (valid: keda, istio, kubeedge, gateway_api, " \
           "inference_pool, mirror_percent)" in err
    assert "01-minimal.yaml" not in err, "the file is not to blame"


def test_help_lists_every_capability(capsys):
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert ", ".join(Capabilities.names()) in " ".join(capsys.readouterr().out.split())


def test_provider_spellings_are_capabilities(repo, capsys):
    example = str(repo / "manifests/examples/09-inference-pool-canary.yaml")
    assert main(["render", "-f", example, "--capabilities", "gateway-api,inference-pool,mirror-percent"]) == 0


def test_a_missing_capability_names_the_flag(repo, capsys):
    example = str(repo / "manifests/examples/08-gateway-api-canary.yaml")
    assert main(["render", "-f", example, "--capabilities", "gateway_api"]) == 2
    err = capsys.readouterr().err
    assert "08-gateway-api-canary.yaml needs what --capabilities does not list (mirror_percent): " \
           "spec.rollout.steps[0].mirror needs" in err


def test_every_invalid_field_is_reported_as_kubectl_apply_lists_them(tmp_path, make_cr, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(make_cr(replicas=-1, traffic={"timeoutSeconds": 0, "hosts": [""]}, bogus=1)))
    assert main(["render", "-f", str(path)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("bad.yaml:")
    assert lines[1:] == ["* spec: unknown field(s) bogus", "* spec.replicas: must be >= 0, got -1",
                         "* spec.traffic.hosts: must not contain an empty string",
                         "* spec.traffic.timeoutSeconds: must be >= 1, got 0"]


def test_crd_command(capsys):
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == crd_yaml()


def test_render_requires_a_file():
    with pytest.raises(SystemExit):
        main(["render"])


def test_operator_flags_reach_the_runner(monkeypatch):
    """The flags the Helm chart passes (charts/autoglm-operator/templates/operator.yaml) are accepted."""
    import autoglm_operator.runtime.run

    started = []
    monkeypatch.setattr(autoglm_operator.runtime.run, "run", started.append)
    argv = ["operator", "--namespace=ml", "-n", "ml-*", "--resync-seconds=120", "--metrics-port=8080",
            "--health-port=8081", "--log-level=info", "--peering=autoglm-operator"]
    assert main(argv) == 0
    (options,) = started
    assert options.namespaces == ["ml", "ml-*"]
    assert (options.resync_seconds, options.metrics_port, options.health_port) == (120.0, 8080, 8081)
    assert (options.peering, options.priority, options.log_level, options.log_format) == ("autoglm-operator", 0, "info", "json")


def test_operator_defaults_watch_every_namespace_standalone(monkeypatch):
    import autoglm_operator.runtime.run

    started = []
    monkeypatch.setattr(autoglm_operator.runtime.run, "run", started.append)
    main(["operator"])
    assert (started[0].namespaces, started[0].peering, started[0].resync_seconds) == ([], None, 300.0)
