"""deploy/k8s-secure: the overlay renders with `kubectl kustomize` and passes strict validation, and
its exact pods run as three containers the way Kubernetes would run them: the ConfigMap, the
downward API and secretKeyRef values with $(VAR) expansion in order, the two Secrets mounted as
files (mode and group as the kubelet sets them), a read-only root filesystem and user 10001.
Clients speak SASL_SSL with SCRAM and need ACLs; the nodes talk mutual TLS; a partition leader is
killed under acks=all and nothing acknowledged is lost; the readiness probe's exact command works
only with the token; no secret reaches the pods' logs.
"""
import os
import secrets as secret_tokens
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest
import yaml

from conftest import sh, wait_for
from test_k8s import KUBERNETES_VERSION, pod_env

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OVERLAY = os.path.join(ROOT, "deploy", "k8s-secure")
GEN_CERTS = os.path.join(ROOT, "scripts", "gen-certs.sh")
NETWORK = "samsak8ssecure"
CLIENT_DIR = "/client"

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (scripts/test-setup.sh)")


def render():
    r = sh("kubectl", "kustomize", OVERLAY)
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def only(docs, kind):
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def test_the_overlay_renders_validates_and_takes_every_secret_from_the_two_secrets():
    docs = render()
    assert sorted(d["kind"] for d in docs) == sorted(
        ["ConfigMap", "Service", "Service", "StatefulSet", "PodDisruptionBudget"])
    out = tempfile.mkdtemp(prefix="samsa-k8s-secure-")
    try:
        files = []
        for i, d in enumerate(docs):
            files.append(os.path.join(out, f"{i}-{d['kind']}.yaml"))
            with open(files[-1], "w") as f:
                yaml.safe_dump(d, f)
        exe = os.path.join(os.path.dirname(sys.executable), "kubernetes-validate")
        r = sh(exe, "-k", KUBERNETES_VERSION, "--strict", *files)
        assert r.stdout.count("passed") == len(files), r.stdout
    finally:
        shutil.rmtree(out, ignore_errors=True)
    pod = only(docs, "StatefulSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}
    volumes = {v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert refs | volumes == {"samsa-tls", "samsa-auth"}
    data = only(docs, "ConfigMap")["data"]
    assert data["SAMSA_LISTENER_SECURITY_PROTOCOL_MAP"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert not any("PASSWORD" in k or "JAAS" in k for k in data), "a secret in the ConfigMap"
    # Every pod expands $(POD_NAME) in its key store and advertised listeners (defined above them).
    env = pod_env(container, only(docs, "ConfigMap"), 2, {"samsa-auth": {"add-scram": "x"}})
    assert env["SAMSA_SSL_KEYSTORE_LOCATION"] == "/etc/samsa/tls/samsa-2.pem"
    assert env["SAMSA_ADVERTISED_LISTENERS"].startswith("SASL_SSL://samsa-2.samsa-headless:9092")


class Pods:
    def __init__(self, names, pod, container, dirs, auth):
        self.names, self.pod, self.container, self.dirs, self.auth = names, pod, container, dirs, auth

    def probe(self, ordinal, command=None):
        """The readiness probe's exec command (or another) inside pod `ordinal`."""
        command = command or self.container["readinessProbe"]["exec"]["command"]
        return sh("docker", "exec", self.names[ordinal], *command, check=False).returncode == 0

    def client(self, conf, *args, input=None, check=True):
        """The samsa CLI as a client pod on the cluster network, with `conf` as --command-config."""
        return sh("docker", "run", "--rm", "-i", "--network", NETWORK, "-v", f"{self.dirs['client']}:{CLIENT_DIR}:ro",
                  "samsa:latest", "--command-config", f"{CLIENT_DIR}/{conf}", *args, input=input, check=check,
                  timeout=180)


def write(path, text, mode=0o644, owner=None):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, *owner)


@pytest.fixture(scope="module")
def pods():
    if shutil.which("docker") is None:
        pytest.skip("needs a Docker engine")
    docs = render()
    sts, cm = only(docs, "StatefulSet"), only(docs, "ConfigMap")
    pod = sts["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    replicas = sts["spec"]["replicas"]
    uid, gid = pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]
    tmp = tempfile.mkdtemp(prefix="samsa-k8s-secure-")
    os.chmod(tmp, 0o755)
    certs = f"{tmp}/certs"
    subprocess.run([GEN_CERTS, certs, *[f"samsa-{i}" for i in range(replicas)], "--san", "{node}.samsa-headless",
                    "--san", "samsa"], check=True, capture_output=True)
    # The two Secrets, as the overlay's header says to create them.
    auth = {"admin": "adm-" + secret_tokens.token_hex(8), "app": "app-" + secret_tokens.token_hex(8),
            "token": secret_tokens.token_hex(32)}
    data = {"samsa-tls": {"ca.pem": open(f"{certs}/ca.pem").read(),
                          **{f"samsa-{i}.pem": open(f"{certs}/samsa-{i}.pem").read() for i in range(replicas)}},
            "samsa-auth": {"add-scram": f"SCRAM-SHA-512=[name=admin,password={auth['admin']}]",
                           "admin-token": auth["token"]}}
    # Secret volumes as the kubelet makes them: one file per key (or per listed item), owned by
    # root with the pod's fsGroup, in the volume's defaultMode.
    volume_dirs = {}
    for v in pod["volumes"]:
        secret = v["secret"]
        d = volume_dirs[v["name"]] = f"{tmp}/volumes/{v['name']}"
        os.makedirs(d)
        os.chmod(d, 0o755)
        items = secret.get("items") or [{"key": k, "path": k} for k in data[secret["secretName"]]]
        for item in items:
            write(f"{d}/{item['path']}", data[secret["secretName"]][item["key"]], secret["defaultMode"], (0, gid))
    client = f"{tmp}/client"
    os.makedirs(client)
    os.chmod(client, 0o755)
    shutil.copy(f"{certs}/ca.pem", f"{client}/ca.pem")
    os.chmod(f"{client}/ca.pem", 0o644)
    base = "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nssl.truststore.type=PEM\n" \
           f"ssl.truststore.location={CLIENT_DIR}/ca.pem\n"
    write(f"{client}/admin.properties", base + f"sasl.username=admin\nsasl.password={auth['admin']}\n")
    write(f"{client}/app.properties", base + f"sasl.username=app\nsasl.password={auth['app']}\n")
    write(f"{client}/wrong.properties", base + "sasl.username=app\nsasl.password=not-the-password\n")
    write(f"{client}/plaintext.properties", "security.protocol=PLAINTEXT\n")
    names = [f"k8s-secure-samsa-{i}" for i in range(replicas)]
    data_mount = next(m for m in container["volumeMounts"] if m["name"] == "data")["mountPath"]

    def cleanup():
        sh("docker", "rm", "-f", *names, check=False)
        sh("docker", "volume", "rm", *[f"{n}-data" for n in names], check=False)
        sh("docker", "network", "rm", NETWORK, check=False)

    cleanup()
    sh("docker", "network", "create", NETWORK)
    result = Pods(names, pod, container, {"client": client}, auth)
    try:
        for i, name in enumerate(names):
            env = [a for k, v in pod_env(container, cm, i, data).items() for a in ("-e", f"{k}={v}")]
            mounts = ["-v", f"{name}-data:{data_mount}"]
            for m in container["volumeMounts"]:
                if m["name"] in volume_dirs:
                    mounts += ["-v", f"{volume_dirs[m['name']]}:{m['mountPath']}:ro"]
            sh("docker", "run", "-d", "--name", name, "--hostname", f"samsa-{i}", "--network", NETWORK,
               "--network-alias", f"samsa-{i}.samsa-headless", "--network-alias", "samsa",
               "--no-healthcheck",  # the image's HEALTHCHECK is Docker's; the kubelet runs the probes
               "--user", f"{uid}:{gid}", "--read-only", *mounts, *env, container["image"], *container["args"])
        wait_for(lambda: all(result.probe(i) for i in range(replicas)), 120, interval=1,
                 what="every pod's readiness probe")
        yield result
    finally:
        for n in names:
            print(f"--- {n}\n{sh('docker', 'logs', '--tail', '20', n, check=False).stderr[-2000:]}")
        cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def leader_of(pods, topic):
    out = pods.client("admin.properties", "topic", "describe", topic, "--bootstrap-server", "samsa:9092").stdout
    (line,) = [ln for ln in out.splitlines() if "Partition: 0\t" in ln]
    return int(line.split("Leader: ")[1].split()[0])


def test_scram_clients_need_acls_and_lose_nothing_through_a_leader_kill(pods):
    topic = "secure-" + uuid.uuid4().hex[:8]
    status = pods.client("admin.properties", "cluster", "status", "--bootstrap-server", "samsa:9092").stdout
    for i in range(3):
        assert f"samsa-{i}.samsa-headless:9092" in status, status
    pods.client("admin.properties", "topic", "create", topic, "--partitions", "1", "--replication-factor", "3",
                "--bootstrap-server", "samsa:9092")
    pods.client("admin.properties", "user", "create", "app", "--mechanism", "SCRAM-SHA-512",
                "--bootstrap-server", "samsa:9092", input=pods.auth["app"] + "\n")
    first = [f"a{i}" for i in range(100)]
    r = pods.client("app.properties", "produce", topic, "--bootstrap-server", "samsa:9092",
                    input="x\n", check=False)
    assert r.returncode != 0 and "authoriz" in r.stderr.lower(), r.stderr
    for role in (["--producer"], ["--consumer", "--group", "app"]):
        pods.client("admin.properties", "acl", "add", "--allow-principal", "User:app", *role, "--topic", topic,
                    "--bootstrap-server", "samsa:9092")
    # The ACLs reach every node through the metadata log: each one's Metadata now shows app the topic.
    for i in range(3):
        wait_for(lambda: topic in pods.client("app.properties", "topic", "list", "--bootstrap-server",
                                              f"samsa-{i}.samsa-headless:9092", check=False).stdout,
                 30, interval=0.5, what=f"the ACL on samsa-{i}")
    pods.client("app.properties", "produce", topic, "--acks", "all", "--bootstrap-server", "samsa:9092",
                input="\n".join(first) + "\n")

    # Kill the partition leader (no controlled shutdown) and go on producing with acks=all.
    leader = leader_of(pods, topic)
    sh("docker", "kill", pods.names[leader])
    survivor = (leader + 1) % 3
    second = [f"b{i}" for i in range(100)]
    pods.client("app.properties", "produce", topic, "--acks", "all", "--bootstrap-server",
                f"samsa-{survivor}.samsa-headless:9092", input="\n".join(second) + "\n")
    sh("docker", "start", pods.names[leader])
    wait_for(lambda: pods.probe(leader), 120, interval=1, what="the killed leader to be ready again")
    read = pods.client("app.properties", "consume", topic, "--from-beginning", "--max-messages", "200",
                       "--timeout-ms", "30000", "--bootstrap-server", f"samsa-{leader}.samsa-headless:9092")
    assert sorted(read.stdout.split()) == sorted(first + second)


def test_wrong_passwords_plaintext_and_tokenless_probes_are_refused_and_no_secret_is_logged(pods):
    r = pods.client("wrong.properties", "topic", "list", "--bootstrap-server", "samsa:9092", check=False)
    assert r.returncode != 0 and "authentication failed" in r.stderr.lower(), r.stderr
    r = pods.client("plaintext.properties", "topic", "list", "--bootstrap-server", "samsa:9092", check=False)
    assert r.returncode != 0, r.stdout
    command = pods.container["readinessProbe"]["exec"]["command"]
    tokenless = command[:command.index("--token-file")]
    assert pods.probe(0, command) and not pods.probe(0, tokenless)
    for name in pods.names:
        logs = sh("docker", "logs", name, check=False)
        for secret in pods.auth.values():
            assert secret not in logs.stdout + logs.stderr, f"a secret in {name}'s log"
