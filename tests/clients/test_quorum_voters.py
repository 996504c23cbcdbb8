"""Replacing a metadata voter whose disk was lost (KIP-853): three voters record their
directory ids; voter 3's data directory is deleted while the cluster runs and it starts again
with a new directory id. It replicates but never votes (a quorum of the other two still elects
leaders only with both), `samsa quorum remove-voter` removes its old directory id and
`add-voter` adds the new one, after which it votes again. Throughout, DescribeQuorum on every
node never shows two leaders in one term, and every topic created before the wipe is still
there."""
import os
import re
import shutil
import subprocess
import threading
import time

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from conftest import SAMSA_BIN, Cluster, wait_for


@pytest.fixture(scope="module")
def three():
    c = Cluster()
    yield c
    c.stop()
    if not os.environ.get("KEEP_TEST_DIRS"):
        shutil.rmtree(c.dir, ignore_errors=True)


def quorum(c, node):
    r = subprocess.run([SAMSA_BIN, "quorum", "describe", "--bootstrap-server", c.bootstrap(node)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None
    leader = int(re.search(r"LeaderId:\s+(-?\d+)", r.stdout).group(1))
    term = int(re.search(r"LeaderEpoch:\s+(\d+)", r.stdout).group(1))
    voters = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\d+)\s+(\S+)\s+(-?\d+)\s+(Voter|Leader)\s", line)
        if m:
            voters[int(m.group(1))] = m.group(2)
    return leader, term, voters


def directory_id(c, node):
    with open(os.path.join(c.dir, f"node{node}", "meta.properties")) as f:
        return re.search(r"directory.id=(\S+)", f.read()).group(1)


class LeaderWatch:
    """Asks every live node for (term, leader) until stopped; any term seen with two leaders is
    a split brain."""

    def __init__(self, c):
        self.c, self.seen, self.stop_flag = c, {}, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop_flag.is_set():
            for n in self.c.ports:
                if self.c.procs[n].poll() is not None:
                    continue
                q = quorum(self.c, n)
                if q and q[0] >= 0:
                    self.seen.setdefault(q[1], set()).add(q[0])
            time.sleep(0.1)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(60)
        split = {t: ls for t, ls in self.seen.items() if len(ls) > 1}
        assert not split, f"two leaders in one term: {split}"
        return self.seen


def samsa_quorum(c, *args):
    return subprocess.run([SAMSA_BIN, "quorum", *args, "--bootstrap-server", c.bootstrap(1)],
                          capture_output=True, text=True, timeout=120)


def test_a_wiped_voter_votes_again_only_once_removed_and_added_under_its_new_directory(three):
    c = three
    dirs = {n: directory_id(c, n) for n in (1, 2, 3)}
    wait_for(lambda: (quorum(c, 1) or (0, 0, {}))[2] == dirs, timeout=30,
             what="every voter's directory id recorded")
    admin = KafkaAdminClient(bootstrap_servers=c.all)
    topics = [f"before-wipe-{i}" for i in range(5)]
    admin.create_topics([NewTopic(t, 1, 3) for t in topics])
    admin.close()
    watch = LeaderWatch(c)
    try:
        # Voter 3 loses its disk and comes back on an empty one.
        c.kill(3)
        shutil.rmtree(os.path.join(c.dir, "node3"))
        c.start(3)
        new_dir = directory_id(c, 3)
        assert new_dir != dirs[3]
        assert quorum(c, 1)[2][3] == dirs[3], "the quorum still knows voter 3 by its old directory"
        wait_for(lambda: "not an admitted metadata voter" in open(os.path.join(c.dir, "node3.log")).read(),
                 timeout=30, what="node 3 knows it may not vote")
        # With voter 3 not voting, one more voter down leaves no majority: nobody is elected
        # until it is back.
        leader = quorum(c, 1)[0]
        other = ({1, 2} - {leader}).pop()
        c.kill(leader)
        time.sleep(4)
        q = quorum(c, other)
        assert q is None or q[0] in (-1, leader), f"a leader was elected with a wiped voter's vote: {q}"
        c.start(leader)
        wait_for(lambda: (quorum(c, other) or (-1,))[0] in (1, 2), timeout=60, what="a leader again")

        r = samsa_quorum(c, "remove-voter", "--controller-id", "3", "--controller-directory-id", new_dir)
        assert r.returncode != 0 and "VoterNotFound" in r.stderr, r.stderr
        r = samsa_quorum(c, "remove-voter", "--controller-id", "3", "--controller-directory-id", dirs[3])
        assert r.returncode == 0, r.stderr
        wait_for(lambda: 3 not in (quorum(c, 1) or (0, 0, {3: ""}))[2], timeout=30, what="voter 3 removed")
        endpoint = f"127.0.0.1:{c.ports[3][1]}"
        r = samsa_quorum(c, "add-voter", "--controller-id", "3", "--controller-directory-id", new_dir,
                         "--controller-endpoint", endpoint)
        assert r.returncode == 0, r.stderr
        r = samsa_quorum(c, "add-voter", "--controller-id", "3", "--controller-directory-id", new_dir,
                         "--controller-endpoint", endpoint)
        assert r.returncode != 0 and "DuplicateVoter" in r.stderr, r.stderr
        wait_for(lambda: (quorum(c, 1) or (0, 0, {}))[2].get(3) == new_dir, timeout=30,
                 what="voter 3 back under its new directory")
        wait_for(lambda: "admitted as a metadata voter" in open(os.path.join(c.dir, "node3.log")).read(),
                 timeout=30, what="node 3 votes again")
        # Now voter 3 votes: losing the leader leaves a majority that elects a new one.
        leader = quorum(c, 1)[0]
        c.kill(leader)
        rest = [n for n in (1, 2, 3) if n != leader]
        wait_for(lambda: (quorum(c, rest[0]) or (-1,))[0] in rest, timeout=30,
                 what="a leader elected with voter 3's vote")
        c.start(leader)
    finally:
        seen = watch.stop()
    assert len(seen) >= 2, seen
    admin = KafkaAdminClient(bootstrap_servers=c.all)
    assert set(topics) <= set(admin.list_topics()), "metadata committed before the wipe is kept"
    admin.close()
