"""The pure parts of checking a proposal by running again: what "runs as well" means, the listening ports read
from /proc/net/tcp, and how new mounts merge into a proposal."""

from __future__ import annotations

from podsec.trace.judge import KILLED, lost_ports, worse
from podsec.trace.model import ContainerTrace, MountDir, PodTrace
from podsec.trace.sockets import parse_listening
from podsec.trace.verify import Proposal


def ran(**kw: object) -> ContainerTrace:
    base: dict = {"name": "app", "init": False, "ran": True, "status": "", "seconds": 5.0}
    return ContainerTrace(**{**base, **kw})  # type: ignore[arg-type]


def test_a_server_must_keep_running_and_stop_cleanly() -> None:
    server = ran(stopped=True, stop_code=0)
    assert worse(server, ran(stopped=True, stop_code=0)) is None
    assert worse(server, ran(exit_code=1, log_tail=["boom"])) == "exited 1 after it had still running: boom"
    assert worse(server, ran(exit_code=0)) == "exited 0 before the trace ended, where it had kept running"
    assert worse(server, ran(stopped=True, stop_code=KILLED)).startswith("ignored the stop signal and was killed")
    # killed within its first second: the stop signal may have come before its handler was installed
    assert worse(server, ran(stopped=True, stop_code=KILLED, seconds=0.2)) is None
    assert worse(server, ran(ran=False, status="never ran: x")) == "never ran: x"


def test_a_job_must_still_exit_0() -> None:
    job = ran(exit_code=0)
    assert worse(job, ran(exit_code=0)) is None
    assert worse(job, ran(exit_code=2)) == "exited 2 after it had exited 0"
    assert worse(job, ran(stopped=True)) == "was still running when the run ended, where it had exited 0 after 5.0s"


def test_ports_lost_between_runs() -> None:
    before = PodTrace("p.yaml", 0, "Pod", "p", listening=["80/tcp", "443/tcp"])
    assert lost_ports(before, PodTrace("p.yaml", 0, "Pod", "p", listening=["80/tcp"])) == ["443/tcp"]


def test_listening_sockets_from_a_proc_net_tcp_table() -> None:
    table = [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
        "   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1",
        "   1: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   100        0 2 1",
        "   2: 0100007F:0050 0100007F:9C40 01 00000000:00000000 00:00000000 00000000    33        0 3 1",
    ]
    assert parse_listening(table) == {"80/tcp", "6379/tcp"}  # the established connection is not listening


def test_new_mounts_merge_into_a_proposal_without_nesting() -> None:
    p = Proposal()
    assert p.add("app", [MountDir("/run/app", "not in the image", 0, 0), MountDir("/tmp", "empty in the image", 0, 0)])
    assert not p.add("app", [MountDir("/tmp/x", "not in the image", 0, 0)])  # inside /tmp already
    assert p.add("app", [MountDir("/run", "hides only empty entries", 0, 0)])  # holds /run/app
    assert [m.path for m in p.mounts["app"]] == ["/run", "/tmp"]


def test_an_init_container_still_running_at_the_end_says_to_trace_longer() -> None:
    from podsec.trace.judge import slow_init

    init = ContainerTrace(name="initdb", init=True, ran=True, status="exited 0", exit_code=0, seconds=4.2)
    before = PodTrace("p.yaml", 0, "Deployment", "db", [init])
    after = PodTrace("p.yaml", 0, "Deployment", "db", [ran(name="initdb", init=True, stopped=True)])
    assert slow_init(before, after) == ("; init container 'initdb' was still running when the run ended (it took "
                                        "4.2s as written): try a longer --duration")
    assert slow_init(before, before) == ""
