"""ACLs with KRaft's StandardAuthorizer (authorizer.class.name, super.users,
allow.everyone.if.no.acl.found=false), managed and checked with real clients.

One node with a SASL_PLAINTEXT listener (PLAIN users admin, alice, bob; admin is a super user)
and a PLAINTEXT one (User:ANONYMOUS). Each refusal is checked for Kafka's error code, and the
node keeps serving the principals that are allowed.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

from conftest import SAMSA_BIN, free_port, start_server

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"


class AclNode:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="samsa-acls-")
        self.admins = {}
        self.ports = {n: free_port() for n in ("SASL_PLAINTEXT", "PLAINTEXT", "CONTROLLER")}
        props = os.path.join(self.dir, "node.properties")
        with open(props, "w") as f:
            f.write(
                "node.id=1\nprocess.roles=broker,controller\n"
                f"controller.quorum.voters=1@127.0.0.1:{self.ports['CONTROLLER']}\n"
                "listeners=" + ",".join(f"{n}://127.0.0.1:{p}" for n, p in self.ports.items()) + "\n"
                "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
                "sasl.enabled.mechanisms=PLAIN\n"
                f'listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN} required user_admin="admin-pw" '
                'user_alice="alice-pw" user_bob="bob-pw";\n'
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n"
                "super.users=User:admin\nallow.everyone.if.no.acl.found=false\n"
                "group.initial.rebalance.delay.ms=0\n"
                f"log.dirs={self.dir}/data\n")
        self.log = os.path.join(self.dir, "node.log")
        self.proc = start_server(props, self.log)

    def conf(self, user):
        if user is None:
            return {"bootstrap.servers": f"127.0.0.1:{self.ports['PLAINTEXT']}"}
        return {"bootstrap.servers": f"127.0.0.1:{self.ports['SASL_PLAINTEXT']}", "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": f"{user}-pw"}

    def admin(self, user="admin"):
        """One admin client per user, kept: a future outlives only a client still referenced."""
        if user not in self.admins:
            self.admins[user] = AdminClient({**self.conf(user), **({"debug": "admin,protocol"} if os.environ.get("DBG") else {})})
        return self.admins[user]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.communicate(timeout=30)


@pytest.fixture(scope="module")
def node():
    n = AclNode()
    yield n
    try:
        n.stop()
    finally:
        shutil.rmtree(n.dir, ignore_errors=True)


def acl(rtype, name, principal, op, perm=AclPermissionType.ALLOW, pattern=ResourcePatternType.LITERAL, host="*"):
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def create(node, *bindings):
    for f in node.admin().create_acls(list(bindings)).values():
        f.result(timeout=10)


def delete(node, *bindings):
    filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
                                b.permission_type) for b in bindings]
    for f in node.admin().delete_acls(filters).values():
        f.result(timeout=10)


def produce(node, user, topic, n=3):
    """Produces n records as `user`; returns the delivery error codes (None for success)."""
    codes = []
    p = Producer({**node.conf(user), "message.timeout.ms": 5000, "retries": 0})
    for i in range(n):
        p.produce(topic, value=f"{user}-{i}".encode(), on_delivery=lambda err, msg: codes.append(err and err.code()))
    p.flush(10)
    return codes


def until(check, timeout=5):
    """Polls `check` until it is truthy (ACL changes apply within about a second)."""
    deadline = time.time() + timeout
    while True:
        v = check()
        if v or time.time() > deadline:
            return v
        time.sleep(0.1)


def new_topic(node, prefix="acl-"):
    t = prefix + uuid.uuid4().hex[:8]
    node.admin().create_topics([NewTopic(t, 1, 1)])[t].result(timeout=10)
    return t


def test_a_super_user_may_do_anything_and_others_nothing_without_acls(node):
    t = new_topic(node)
    assert produce(node, "admin", t) == [None] * 3
    assert produce(node, "alice", t) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    assert produce(node, None, t) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    # Metadata hides what the principal may not describe.
    assert t in node.admin().list_topics(timeout=10).topics
    assert t not in node.admin("alice").list_topics(timeout=10).topics
    with pytest.raises(KafkaException) as e:
        node.admin("alice").create_topics([NewTopic("acl-nope-" + uuid.uuid4().hex[:6], 1, 1)]).values().__iter__().__next__().result(10)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_literal_and_prefixed_allows_for_topics_and_groups(node):
    t = new_topic(node)
    create(node, acl(ResourceType.TOPIC, t, "User:alice", AclOperation.WRITE))
    assert until(lambda: produce(node, "alice", t) == [None] * 3)
    assert t in node.admin("alice").list_topics(timeout=10).topics, "WRITE implies DESCRIBE"
    # READ through a prefixed ACL, and READ on the consumer group.
    create(node, acl(ResourceType.TOPIC, "acl-", "User:alice", AclOperation.READ, pattern=ResourcePatternType.PREFIXED),
           acl(ResourceType.GROUP, "alice-group", "User:alice", AclOperation.READ))
    c = Consumer({**node.conf("alice"), "group.id": "alice-group", "auto.offset.reset": "earliest"})
    c.subscribe([t])
    got = []
    deadline = time.time() + 30
    while len(got) < 3 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    c.commit(asynchronous=False)
    c.close()
    assert len(got) == 3
    # Another group is refused.
    c = Consumer({**node.conf("alice"), "group.id": "other-group", "auto.offset.reset": "earliest"})
    c.subscribe([t])
    err = None
    deadline = time.time() + 15
    while err is None and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
    c.close()
    assert err is not None and err.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, err


def test_deny_wins_over_allow_and_removal_takes_effect(node):
    t = new_topic(node)
    allow_all = acl(ResourceType.TOPIC, t, "User:*", AclOperation.ALL)
    deny_bob = acl(ResourceType.TOPIC, t, "User:bob", AclOperation.WRITE, AclPermissionType.DENY)
    create(node, allow_all, deny_bob)
    assert until(lambda: produce(node, "alice", t) == [None] * 3)
    assert produce(node, "bob", t) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3
    delete(node, deny_bob)
    assert until(lambda: produce(node, "bob", t, n=1) == [None])
    delete(node, allow_all)
    assert until(lambda: produce(node, "bob", t, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED])


def test_transactions_need_write_on_the_id_and_topics_and_read_on_the_group_and_offsets_topics(node):
    """AddPartitionsToTxn checks WRITE on each topic, TxnOffsetCommit READ on the group and each
    offsets topic, as Kafka: the refusal makes the transaction abortable and commits nothing."""
    u = uuid.uuid4().hex[:8]
    # Not "acl-": an earlier test gives alice READ on that prefix.
    writable, other = new_topic(node, "txn-acl-"), new_topic(node, "txn-acl-")
    group, txn = f"g-{u}", f"tx-{u}"
    create(node, acl(ResourceType.TRANSACTIONAL_ID, txn, "User:alice", AclOperation.WRITE),
           acl(ResourceType.TOPIC, writable, "User:alice", AclOperation.WRITE),
           acl(ResourceType.TOPIC, other, "User:alice", AclOperation.DESCRIBE))

    def producer():
        p = Producer({**node.conf("alice"), "transactional.id": txn, "transaction.timeout.ms": 10000})
        p.init_transactions(10)
        return p

    p = until(lambda: _or_none(producer), timeout=10)
    assert p is not None, "WRITE on the transactional id lets alice initialise"
    p.begin_transaction()
    p.produce(writable, value=b"ok")
    p.produce(other, value=b"refused")
    with pytest.raises(KafkaException) as e:
        p.commit_transaction(10)
    assert e.value.args[0].txn_requires_abort(), e.value.args[0]
    assert "TOPIC_AUTHORIZATION_FAILED" in e.value.args[0].str() or \
        e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, e.value.args[0]
    # No partition joined, so the transaction is still Empty at the coordinator; librdkafka's
    # abort would send EndTxn anyway and get INVALID_TXN_STATE, as from Kafka. A new producer
    # with the same id carries on (its InitProducerId fences this one).
    p = producer()

    # Offsets in the transaction: READ on the group is needed (AddOffsetsToTxn), then READ on
    # each topic whose offsets it commits (TxnOffsetCommit); each refusal aborts and commits nothing.
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    c = Consumer({**node.conf("alice"), "group.id": group})

    def offsets_in_a_transaction(offset):
        """The error code of committing `offset` in a transaction (None: committed)."""
        p.begin_transaction()
        p.produce(writable, value=b"with-offsets")
        try:
            p.send_offsets_to_transaction([TopicPartition(writable, 0, offset)], c.consumer_group_metadata(), 10)
            p.commit_transaction(10)
            return None
        except KafkaException as e:
            p.abort_transaction(10)
            return e.args[0].code()

    assert offsets_in_a_transaction(3) == KafkaError.GROUP_AUTHORIZATION_FAILED
    create(node, acl(ResourceType.GROUP, group, "User:alice", AclOperation.READ))
    assert until(lambda: offsets_in_a_transaction(5) == KafkaError.TOPIC_AUTHORIZATION_FAILED)
    create(node, acl(ResourceType.TOPIC, writable, "User:alice", AclOperation.READ))
    assert until(lambda: offsets_in_a_transaction(7) is None)
    c.close()
    committed = node.admin().list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group)])[group].result(timeout=10)
    assert [(tp.topic, tp.offset) for tp in committed.topic_partitions] == [(writable, 7)]


def _or_none(f):
    try:
        return f()
    except KafkaException:
        return None


def test_acls_are_described_and_managed_only_by_the_allowed(node):
    t = new_topic(node, prefix="hosts-")  # outside alice's prefixed READ on acl-
    create(node, acl(ResourceType.TOPIC, t, "User:alice", AclOperation.READ, host="10.1.2.3"))
    everything = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                                  AclPermissionType.ANY)
    found = node.admin().describe_acls(everything).result(timeout=10)
    assert any(b.name == t and b.host == "10.1.2.3" and b.operation == AclOperation.READ for b in found), found
    # MATCH: bindings that apply to one topic name, prefixed ones included.
    match = AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.MATCH, None, None, AclOperation.ANY,
                             AclPermissionType.ANY)
    names = {(b.name, b.resource_pattern_type) for b in node.admin().describe_acls(match).result(timeout=10)}
    assert (t, ResourcePatternType.LITERAL) in names
    # The host filter: alice connects from 127.0.0.1, so this READ does not apply.
    assert t not in node.admin("alice").list_topics(timeout=10).topics
    # (confluent-kafka drops DescribeAcls' top-level error; kafka-python raises it.)
    from kafka import KafkaAdminClient
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType, ResourceType as KResourceType
    from kafka.errors import ClusterAuthorizationFailedError
    ka = KafkaAdminClient(bootstrap_servers=node.conf("alice")["bootstrap.servers"], security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-pw")
    kfilter = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                        resource_pattern=ResourcePatternFilter(KResourceType.ANY, None, ACLResourcePatternType.ANY))
    with pytest.raises(ClusterAuthorizationFailedError):
        ka.describe_acls(kfilter)
    ka.close()
    with pytest.raises(KafkaException) as e:
        for f in node.admin("alice").create_acls([acl(ResourceType.TOPIC, "x", "User:alice", AclOperation.ALL)]).values():
            f.result(timeout=10)
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # Cluster-level grant: DESCRIBE on the cluster lets bob describe ACLs.
    create(node, acl(ResourceType.BROKER, "kafka-cluster", "User:bob", AclOperation.DESCRIBE))
    assert until(lambda: len(node.admin("bob").describe_acls(everything).result(timeout=10)) >= 2)


def test_authorized_operations_reflect_the_acls(node):
    t = new_topic(node)
    create(node, acl(ResourceType.TOPIC, t, "User:alice", AclOperation.READ))
    desc = until(lambda: node.admin("alice").describe_topics(
        __import__("confluent_kafka").TopicCollection([t]), include_authorized_operations=True)[t].result(timeout=10))
    assert set(desc.authorized_operations) == {AclOperation.READ, AclOperation.DESCRIBE}, desc.authorized_operations
    admin_desc = node.admin().describe_topics(__import__("confluent_kafka").TopicCollection([t]),
                                              include_authorized_operations=True)[t].result(timeout=10)
    assert AclOperation.ALTER_CONFIGS in set(admin_desc.authorized_operations)


def test_kafka_python_sees_kafkas_authorization_errors(node):
    from kafka import KafkaProducer
    from kafka.errors import TopicAuthorizationFailedError
    t = new_topic(node)
    p = KafkaProducer(bootstrap_servers=node.conf("alice")["bootstrap.servers"], security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-pw",
                      max_block_ms=5000)
    with pytest.raises(TopicAuthorizationFailedError):
        p.send(t, b"x").get(timeout=10)
    p.close()


def test_kafka_python_as_a_1_0_client_manages_acls_with_the_v0_layouts(node):
    """CreateAcls, DescribeAcls and DeleteAcls v0 (before KIP-290's pattern types, clients older
    than Kafka 2.0): kafka-python told the broker is 1.0 sends them; v0 means LITERAL, so a
    PREFIXED binding of the same name is neither described nor deleted by a v0 filter."""
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePattern, ResourcePatternFilter)
    from kafka.admin import ResourceType as KResourceType
    from kafka.errors import NoError
    t = new_topic(node, prefix="v0acl-")
    prefixed = acl(ResourceType.TOPIC, t, "User:bob", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED)
    create(node, prefixed)
    a = KafkaAdminClient(bootstrap_servers=node.conf("admin")["bootstrap.servers"], security_protocol="SASL_PLAINTEXT",
                         sasl_mechanism="PLAIN", sasl_plain_username="admin", sasl_plain_password="admin-pw",
                         api_version=(1, 0))
    try:
        literal = ResourcePattern(KResourceType.TOPIC, t, ACLResourcePatternType.LITERAL)
        binding = ACL("User:bob", "*", ACLOperation.READ, ACLPermissionType.ALLOW, literal)
        assert a.create_acls([binding]) == {"succeeded": [binding], "failed": []}
        flt = ACLFilter("User:bob", None, ACLOperation.ANY, ACLPermissionType.ANY,
                        ResourcePatternFilter(KResourceType.TOPIC, t, ACLResourcePatternType.LITERAL))
        found, error = a.describe_acls(flt)
        assert error is NoError
        assert [(x.principal, x.host, x.operation, x.resource_pattern.resource_name) for x in found] == \
            [("User:bob", "*", ACLOperation.READ, t)]
        ((_, matched, error),) = a.delete_acls([flt])
        assert error is NoError and [(x.principal, x.operation) for x in matched] == [("User:bob", ACLOperation.READ)]
        assert a.describe_acls(flt)[0] == []
    finally:
        a.close()
    # The PREFIXED binding outlived the v0 delete; current clients still see it.
    left = node.admin().describe_acls(AclBindingFilter(ResourceType.TOPIC, t, ResourcePatternType.ANY, None, None,
                                                       AclOperation.ANY, AclPermissionType.ANY)).result(timeout=10)
    assert [(b.principal, b.operation, b.resource_pattern_type) for b in left] == \
        [("User:bob", AclOperation.WRITE, ResourcePatternType.PREFIXED)]
    delete(node, prefixed)


def samsa_acl(node, user, *args):
    """`samsa acl ...` as `user`, through --command-config (Kafka client properties)."""
    path = os.path.join(node.dir, f"{user}.properties")
    with open(path, "w") as f:
        f.write("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                f"sasl.username={user}\nsasl.password={user}-pw\n")
    return subprocess.run([SAMSA_BIN, "--command-config", path, "acl", *args, "--bootstrap-server",
                           node.conf(user)["bootstrap.servers"]], capture_output=True, text=True, timeout=60)


def test_samsa_acl_add_list_remove_like_kafka_acls(node):
    t = new_topic(node, prefix="cli-")
    # --producer: WRITE, DESCRIBE, CREATE on the topic; alice may produce at once.
    r = samsa_acl(node, "admin", "add", "--allow-principal", "User:alice", "--producer", "--topic", t)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Added") == 3, r.stdout
    assert until(lambda: produce(node, "alice", t) == [None] * 3)
    # --consumer with a prefixed pattern for the topic and a literal group.
    r = samsa_acl(node, "admin", "add", "--allow-principal", "User:bob", "--consumer", "--topic", t, "--group", "bob-g")
    assert r.returncode == 0, r.stderr
    r = samsa_acl(node, "admin", "list", "--topic", t)
    assert r.returncode == 0, r.stderr
    assert f"Current ACLs for resource `ResourcePattern(resourceType=TOPIC, name={t}, patternType=LITERAL)`:" in r.stdout
    for line in ("(principal=User:alice, host=*, operation=WRITE, permissionType=ALLOW)",
                 "(principal=User:alice, host=*, operation=CREATE, permissionType=ALLOW)",
                 "(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)"):
        assert line in r.stdout, (line, r.stdout)
    r = samsa_acl(node, "admin", "list", "--principal", "User:bob")
    assert "name=bob-g" in r.stdout and "User:alice" not in r.stdout, r.stdout
    # A DENY by operation name in Kafka's spelling, removed again by principal.
    r = samsa_acl(node, "admin", "add", "--deny-principal", "User:alice", "--operation", "Write", "--topic", t)
    assert r.returncode == 0, r.stderr
    assert until(lambda: produce(node, "alice", t, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED])
    r = samsa_acl(node, "admin", "remove", "--deny-principal", "User:alice", "--operation", "Write", "--topic", t)
    assert r.returncode == 0 and "Removed" in r.stdout, (r.stdout, r.stderr)
    assert until(lambda: produce(node, "alice", t, n=1) == [None])
    # Refusals: a non-super user, a malformed principal, an unknown operation, a remove-everything.
    for user, args, expected in (
        ("alice", ("add", "--allow-principal", "User:alice", "--operation", "All", "--topic", t), "ClusterAuthorizationFailed"),
        ("admin", ("add", "--allow-principal", "alice", "--topic", t), "Type:name"),
        ("admin", ("add", "--allow-principal", "User:alice", "--operation", "Fly", "--topic", t), "--operation Fly"),
        ("admin", ("remove",), "name the resources"),
        ("admin", ("add", "--allow-principal", "User:a", "--resource-pattern-type", "match", "--topic", t), "literal or prefixed"),
    ):
        r = samsa_acl(node, user, *args)
        assert r.returncode != 0 and expected in r.stderr, (args, r.stderr)
        assert "-pw" not in r.stderr
    # Remove without a principal: every ACL of the topic goes.
    r = samsa_acl(node, "admin", "remove", "--topic", t)
    assert r.returncode == 0 and r.stdout.count("Removed") == 5, r.stdout
    assert until(lambda: produce(node, "alice", t, n=1) == [KafkaError.TOPIC_AUTHORIZATION_FAILED])
    r = samsa_acl(node, "admin", "list", "--topic", t)
    assert "No ACLs found." in r.stdout, r.stdout


def test_acl_apis_without_an_authorizer_answer_security_disabled(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    with pytest.raises(KafkaException) as e:
        for f in a.create_acls([acl(ResourceType.TOPIC, "t", "User:alice", AclOperation.READ)]).values():
            f.result(timeout=10)
    assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED
