"""deploy/k8s: the manifests pass strict offline validation, and the StatefulSet's exact container
(image, args, envFrom the ConfigMap, env with the downward API and $(VAR) expansion, user,
read-only root filesystem, data volume) runs as three containers under pod-like DNS names
(samsa-N.samsa-headless, and `samsa` for the client Service). Clients work against them, the
readiness probe's endpoint turns ready, and SIGTERM (pod termination) is a controlled shutdown.
"""
import os
import re
import shutil
import sys

import pytest
import yaml

from conftest import sh, wait_for

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
K8S = os.path.join(ROOT, "deploy", "k8s")
RESOURCES = ["configmap.yaml", "service-headless.yaml", "service.yaml", "statefulset.yaml", "pdb.yaml"]
NETWORK = "samsak8s"
KUBERNETES_VERSION = "1.30.0"




def load(name):
    with open(os.path.join(K8S, name)) as f:
        return yaml.safe_load(f)


def test_manifests_pass_strict_validation_and_the_kustomization_lists_them_all():
    exe = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")  # from requirements.txt
    r = sh(exe, "-k", KUBERNETES_VERSION, "--strict", *[os.path.join(K8S, f) for f in RESOURCES])
    assert r.stdout.count("passed") == len(RESOURCES), r.stdout
    assert sorted(load("kustomization.yaml")["resources"]) == sorted(RESOURCES)


def pod_env(container, configmap, ordinal, secrets=None):
    """The environment Kubernetes would give pod `samsa-<ordinal>`: envFrom the ConfigMap, then env
    with fieldRefs and secretKeyRefs (`secrets`: name -> {key: value}) resolved and $(VAR)
    references expanded, in order: a reference to a variable not defined above it fails, as it
    would stay unexpanded in Kubernetes."""
    env = dict(configmap["data"])
    fields = {"metadata.name": f"samsa-{ordinal}",
              "metadata.labels['apps.kubernetes.io/pod-index']": str(ordinal),
              "metadata.namespace": "default"}
    for e in container["env"]:
        source = e.get("valueFrom", {})
        if "fieldRef" in source:
            env[e["name"]] = fields[source["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[e["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            env[e["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], e["value"])
    return env


def in_cluster(*args, input=None, check=True):
    """The samsa CLI as a client pod on the cluster network."""
    return sh("docker", "run", "--rm", "-i", "--network", NETWORK, "samsa:latest", *args, input=input, check=check)


def ready(ordinal):
    return in_cluster("health", "--admin", f"samsa-{ordinal}.samsa-headless:9644", check=False).returncode == 0


@pytest.fixture(scope="module")
def pods():
    if shutil.which("docker") is None:
        pytest.skip("needs a Docker engine")
    sts, cm = load("statefulset.yaml"), load("configmap.yaml")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = container["volumeMounts"][0]["mountPath"]
    user = f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    names = [f"k8s-samsa-{i}" for i in range(sts["spec"]["replicas"])]

    def cleanup():
        sh("docker", "rm", "-f", *names, check=False)
        sh("docker", "volume", "rm", *[f"{n}-data" for n in names], check=False)
        sh("docker", "network", "rm", NETWORK, check=False)

    cleanup()
    sh("docker", "network", "create", NETWORK)
    try:
        for i, name in enumerate(names):
            env = [a for k, v in pod_env(container, cm, i).items() for a in ("-e", f"{k}={v}")]
            flags = ["--read-only"] if container["securityContext"]["readOnlyRootFilesystem"] else []
            sh("docker", "run", "-d", "--name", name, "--hostname", f"samsa-{i}", "--network", NETWORK,
               "--network-alias", f"samsa-{i}.samsa-headless", "--network-alias", "samsa",
               "--user", user, *flags, "-v", f"{name}-data:{mount}", *env,
               container["image"], *container["args"])
        wait_for(lambda: all(ready(i) for i in range(len(names))), 120, interval=1,
                 what="every pod's readiness endpoint")
        yield names
    finally:
        for n in names:
            print(f"--- {n}\n{sh('docker', 'logs', '--tail', '20', n, check=False).stderr[-2000:]}")
        cleanup()


def test_the_statefulset_container_forms_a_working_cluster_and_terminates_gracefully(pods):
    status = in_cluster("cluster", "status", "--bootstrap-server", "samsa:9092").stdout
    for i in range(3):
        assert f"samsa-{i}.samsa-headless:9092" in status, status
    in_cluster("topic", "create", "k8s", "--partitions", "3", "--replication-factor", "3",
               "--bootstrap-server", "samsa:9092")
    values = [f"v{i}" for i in range(50)]
    in_cluster("produce", "k8s", "--acks", "all", "--bootstrap-server", "samsa:9092", input="\n".join(values) + "\n")
    read = in_cluster("consume", "k8s", "--from-beginning", "--max-messages", "50", "--bootstrap-server", "samsa:9092")
    assert sorted(read.stdout.split()) == sorted(values)

    # Pod termination: SIGTERM, then the grace period. A controlled shutdown exits 0 well within it.
    r = sh("docker", "stop", "-t", "60", pods[1], timeout=90)
    assert sh("docker", "inspect", "-f", "{{.State.ExitCode}}", pods[1]).stdout.strip() == "0"
    assert "controlled shutdown: leaderships moved" in sh("docker", "logs", pods[1]).stderr
    sh("docker", "start", pods[1])
    wait_for(lambda: ready(1), 120, interval=1, what="the restarted pod to be ready again")
    read = in_cluster("consume", "k8s", "--from-beginning", "--max-messages", "50", "--bootstrap-server", "samsa-1.samsa-headless:9092")
    assert sorted(read.stdout.split()) == sorted(values)
