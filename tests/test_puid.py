"""PUID/PGID detection and verdicts without containers: which pods are linuxserver/s6-overlay ones, whom the
app ends up running as, and which securityContext settings podsec says break the image's own privilege drop.
Also the rootfs probe on a hand-made (and hostile) rootfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from podsec.image.model import GroupEntry, ImageFacts, ImageInfo, PasswdEntry
from podsec.image.s6 import probe
from podsec.puid import Verdict, container_env, pod_verdicts, verdict_dict
from podsec.puid_spec import EnvSources, pod_has_candidate
from podsec.resolve import ALL_CAPS, resolve_pod

LSIO_PASSWD = (PasswdEntry("root", 0, 0), PasswdEntry("abc", 911, 911, "/config", "/bin/false"))
LSIO_GROUP = (GroupEntry("root", 0), GroupEntry("abc", 911), GroupEntry("users", 100, ("abc",)))
S6 = ImageFacts(markers=("/etc/s6-overlay", "/package/admin/s6-overlay", "/command/s6-svscan", "/docker-mods"),
                run_owner=(0, 0, 0o755))


def image(entrypoint: tuple[str, ...] | None = ("/init",), env: tuple[str, ...] = (), user: str | None = None,
          ref: str = "example.org/app:1") -> ImageInfo:
    return ImageInfo(ref=ref, user=user, env=("PATH=/bin", *env), entrypoint=entrypoint, cmd=None,
                     passwd=LSIO_PASSWD, group=LSIO_GROUP)


def verdict(container: dict | None = None, pod_sc: dict | None = None, img: ImageInfo | None = None,
            facts: ImageFacts | None = S6, spec: dict | None = None, known: bool = True,
            sources: EnvSources | None = None) -> Verdict | None:
    """Resolve a one-container pod as explain does and return podsec's PUID/PGID verdict for it."""
    c = {"name": "app", "image": img.ref if img else "example.org/app:1",
         "env": [{"name": "PUID", "value": "1000"}, {"name": "PGID", "value": "1000"}]}
    c.update(container or {})
    pod_spec = {"securityContext": pod_sc or {}, "containers": [c], **(spec or {})}
    img = img if img is not None else image()
    lookup = (lambda ref: img) if known else None
    pod = resolve_pod({"name": "p"}, pod_spec, lookup, all_caps=ALL_CAPS)
    verdicts = pod_verdicts(pod_spec, pod, {"app": img if known else None}, lambda ref: facts, sources=sources)
    return verdicts.get("app")


def test_default_linuxserver_pod_drops_from_root_to_puid_pgid() -> None:
    v = verdict()
    assert v is not None and v.mode == "drop"
    assert v.start == (0, 0, (0,)) and v.app == (1000, 1000, (100, 1000)) and v.app_user == "abc"
    assert v.conflicts == () and v.warnings == ()
    assert v.summary() == "/init starts as root (uid 0) and drops the app to 1000:1000 (groups 100,1000)"
    assert "PUID=1000 (container env)" in v.evidence and "/init is the image ENTRYPOINT" in v.evidence


def test_puid_from_the_image_env_and_the_container_overrides_it() -> None:
    v = verdict({"env": []}, img=image(env=("PUID=1001", "PGID=1002")))
    assert v is not None and v.app[:2] == (1001, 1002)
    assert v.puid is not None and v.puid.source == "image env"
    v = verdict({"env": [{"name": "PUID", "value": "1003"}]}, img=image(env=("PUID=1001", "PGID=1002")))
    assert v is not None and v.app[:2] == (1003, 1002)
    assert (v.puid.source, v.pgid.source) == ("container env", "image env")  # type: ignore[union-attr]


def test_last_env_entry_wins() -> None:
    v = verdict({"env": [{"name": "PUID", "value": "1000"}, {"name": "PUID", "value": "1005"}]})
    assert v is not None and v.app[0] == 1005


def test_value_from_is_unknown_until_the_pod_runs() -> None:
    v = verdict({"env": [{"name": "PUID", "valueFrom": {"configMapKeyRef": {"name": "ids", "key": "uid"}}},
                         {"name": "PGID", "value": "1000"}]})
    assert v is not None and v.app[:2] == (None, 1000)
    assert v.warnings == ("PUID comes from valueFrom configMapKeyRef: its value is known only when the pod runs",)
    assert v.summary().endswith("drops the app to ?:1000 (groups 100,1000)")


# -- envFrom: ConfigMaps/Secrets podsec may or may not have ------------------------------------------

IDS = {("ConfigMap", "ids"): {"PUID": "1002", "PGID": "1003", "TZ": "UTC"}, ("Secret", "more"): {"PGID": "1006"}}


def known(kind: str, name: str) -> dict[str, str]:
    """``run``'s lookup: the manifest's own objects; one not there is known to be absent."""
    return IDS.get((kind, name), {})


def test_env_from_of_an_unknown_config_map_makes_puid_pgid_unknown() -> None:
    """``explain`` has no ConfigMap: the init's ids may come from it, so they are unknown, with a warning."""
    v = verdict({"env": [], "envFrom": [{"configMapRef": {"name": "ids"}}]})
    assert v is not None and v.mode == "drop" and v.app[:2] == (None, None)
    assert v.puid == ("PUID", None, "envFrom configMapRef ids") and v.pgid is not None and v.pgid.value is None
    assert "PUID=? (envFrom configMapRef ids)" in v.evidence
    assert v.warnings == ("PUID comes from envFrom configMapRef ids: its value is known only when the pod runs",
                          "PGID comes from envFrom configMapRef ids: its value is known only when the pod runs")


def test_env_from_with_known_values_in_kubernetes_order() -> None:
    """Image Env, then envFrom entries in order, then env: a later one wins, each with its source."""
    env_from = [{"configMapRef": {"name": "ids"}}, {"secretRef": {"name": "more"}}]
    v = verdict({"env": [], "envFrom": env_from}, img=image(env=("PUID=1001", "PGID=1001")), sources=known)
    assert v is not None and v.app[:2] == (1002, 1006) and v.warnings == ()
    assert v.puid == ("PUID", "1002", "envFrom configMapRef ids")
    assert v.pgid == ("PGID", "1006", "envFrom secretRef more")
    v = verdict({"env": [{"name": "PUID", "value": "1007"}], "envFrom": env_from}, sources=known)
    assert v is not None and v.app[:2] == (1007, 1006) and v.puid is not None and v.puid.source == "container env"
    env = container_env({"envFrom": [{"configMapRef": {"name": "ids"}}]}, image(env=("TZ=Europe/Berlin",)), known)
    assert env["TZ"] == ("TZ", "UTC", "envFrom configMapRef ids")


def test_env_from_prefix_renames_the_keys() -> None:
    """``prefix: LSIO_`` makes LSIO_PUID, not PUID: abc keeps the default 911, known or not."""
    for sources in (known, None):
        v = verdict({"env": [], "envFrom": [{"prefix": "LSIO_", "configMapRef": {"name": "ids"}}]}, sources=sources)
        assert v is not None and v.app[:2] == (911, 911) and v.puid is None
    env = container_env({"envFrom": [{"prefix": "LSIO_", "configMapRef": {"name": "ids"}}]}, None, known)
    assert env["LSIO_PUID"] == ("LSIO_PUID", "1002", "envFrom configMapRef ids (prefix LSIO_)")
    # a prefix that PUID itself starts with could still produce it from an unknown source
    env = container_env({"envFrom": [{"prefix": "P", "secretRef": {"name": "x"}}]}, None, None)
    assert set(env) == {"PUID", "PGID"} and env["PUID"].source == "envFrom secretRef x (prefix P)"


def test_env_from_an_absent_optional_source_sets_nothing() -> None:
    v = verdict({"env": [], "envFrom": [{"configMapRef": {"name": "gone", "optional": True}}]}, sources=known)
    assert v is not None and v.app[:2] == (911, 911) and v.warnings == ()


def test_value_from_a_known_config_map_key() -> None:
    ref = {"configMapKeyRef": {"name": "ids", "key": "PUID"}}
    v = verdict({"env": [{"name": "PUID", "valueFrom": ref}, {"name": "PGID", "value": "1000"}]}, sources=known)
    assert v is not None and v.app[:2] == (1002, 1000) and v.warnings == ()
    gone = {"configMapKeyRef": {"name": "ids", "key": "nope", "optional": True}}
    assert "PUID" not in container_env({"env": [{"name": "PUID", "valueFrom": gone}]}, None, known)


def test_env_from_candidates_and_rootfs_reads() -> None:
    """A readable envFrom with PUID makes a container a candidate (its rootfs is read for s6 files); an
    unreadable one does not on an ordinary container (no rootfs read), and /init is one anyway."""
    plain = ImageInfo(ref="nginx:1", entrypoint=("/docker-entrypoint.sh",))
    c = {"name": "web", "image": "nginx:1", "envFrom": [{"configMapRef": {"name": "ids"}}]}
    spec = {"containers": [c]}
    pod = resolve_pod({"name": "p"}, spec, lambda ref: plain)
    calls: list[str] = []
    assert pod_verdicts(spec, pod, {"web": plain}, lambda ref: calls.append(ref) or None) == {}
    assert calls == [] and not pod_has_candidate(spec, {"web": plain})
    assert pod_has_candidate(spec, {"web": plain}, known)
    verdicts = pod_verdicts(spec, pod, {"web": plain}, lambda ref: calls.append(ref) or S6, sources=known)
    assert calls == ["nginx:1"] and verdicts["web"].puid == ("PUID", "1002", "envFrom configMapRef ids")
    init = {**c, "image": "example.org/app:1"}
    assert pod_has_candidate({"containers": [init]}, {"web": image()})  # runs /init: a candidate regardless


def test_non_numeric_puid_is_a_warning_and_abc_keeps_its_image_uid() -> None:
    v = verdict({"env": [{"name": "PUID", "value": "abc"}, {"name": "PGID", "value": "1000"}]})
    assert v is not None and v.app[:2] == (911, 1000)
    assert v.warnings == ("PUID='abc' is not a numeric id: usermod rejects it (usermod: invalid user ID 'abc') "
                          "and abc keeps the image's id",)


def test_no_init_no_verdict() -> None:
    """PUID/PGID alone mean nothing: an image without s6-overlay ignores them."""
    assert verdict(img=image(entrypoint=("/docker-entrypoint.sh",)), facts=ImageFacts()) is None
    assert verdict(img=image(entrypoint=None), facts=None) is None


def test_unknown_image_with_puid_is_assumed_to_run_init_as_check_and_explain_both_say() -> None:
    v = verdict(known=False, facts=None)
    assert v is not None and v.warnings == ("the image is not in the local store: assuming its ENTRYPOINT is /init",)
    v = verdict({"image": "lscr.io/linuxserver/sonarr:latest"}, known=False, facts=None)
    assert v is not None and v.mode == "drop" and v.app[:2] == (1000, 1000)
    assert "the image is not in the local store: assuming its ENTRYPOINT is /init" in v.warnings
    v = verdict({"command": ["/init"]}, known=False, facts=None)
    assert v is not None and "/init is the container command" in v.evidence


def test_linuxserver_image_without_puid_uses_911() -> None:
    v = verdict({"env": []})
    assert v is not None and v.app[:2] == (911, 911)
    assert verdict({"env": []}, facts=ImageFacts(markers=("/etc/s6-overlay",))) is None  # s6, not linuxserver


def test_a_command_that_replaces_init_makes_puid_pgid_meaningless() -> None:
    v = verdict({"command": ["sh", "-c", "id"]})
    assert v is not None and v.mode == "no-init" and v.app == v.start == (0, 0, (0,))
    assert v.warnings == ("the container command starts sh, not /init: PUID/PGID have no effect",)


def test_an_entrypoint_wrapper_is_assumed_to_end_in_init_when_s6_is_there() -> None:
    v = verdict(img=image(entrypoint=("/entrypoint.sh",)))
    assert v is not None and v.mode == "drop"
    assert "the image ENTRYPOINT is /entrypoint.sh, not /init: assuming it ends in s6-overlay's /init" in v.warnings


@pytest.mark.parametrize(("sc", "error"), [
    ({"runAsUser": 1000}, "preinit: fatal: wrong permissions on /run for a gid 0 setup"),
    ({"runAsUser": 1000, "runAsGroup": 1000}, "preinit: fatal: /run belongs to uid 0 instead of 1000, has "
     "insecure and/or unworkable permissions, and we're lacking the privileges to fix it."),
])
def test_run_as_user_is_a_fatal_conflict_with_s6_preinit_words(sc: dict, error: str) -> None:
    v = verdict({"securityContext": sc})
    assert v is not None and v.mode == "non-root"
    [c] = v.conflicts
    assert c.fatal and c.error == error and c.field == ("spec", "containers", 0, "securityContext", "runAsUser")
    assert "PUID/PGID are ignored" in c.breaks
    assert c.instead.startswith("either let /init start as root (remove runAsUser/runAsNonRoot; the app still "
                                "ends up as 1000:1000, not root)")
    assert "runAsUser: 1000, runAsGroup: 1000, an emptyDir mounted at /run" in c.instead


def test_pod_level_run_as_user_points_at_the_pod_field() -> None:
    v = verdict(pod_sc={"runAsUser": 1000, "runAsGroup": 1000})
    assert v is not None and v.conflicts[0].setting == "spec.securityContext.runAsUser: 1000"


def test_the_complete_non_root_recipe_is_only_told_to_drop_puid_pgid() -> None:
    v = verdict({"securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                 "env": [{"name": "PUID", "value": "1000"}, {"name": "PGID", "value": "1000"},
                         {"name": "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES", "value": "1"},
                         {"name": "LSIO_NON_ROOT_USER", "value": "true"}],
                 "volumeMounts": [{"name": "run", "mountPath": "/run"}]},
                pod_sc={"fsGroup": 1000}, spec={"volumes": [{"name": "run", "emptyDir": {}}]})
    assert v is not None and v.mode == "non-root" and v.fatal == ()
    assert v.conflicts[0].instead == "remove PUID/PGID (they do nothing here)"
    assert v.app == (1000, 1000, (1000,))


def test_world_writable_run_without_the_s6_variable_still_fails() -> None:
    v = verdict({"securityContext": {"runAsUser": 1000, "runAsGroup": 1000},
                 "volumeMounts": [{"name": "run", "mountPath": "/run"}]},
                pod_sc={"fsGroup": 1000}, spec={"volumes": [{"name": "run", "emptyDir": {}}]})
    assert v is not None
    assert v.conflicts[0].error is not None and v.conflicts[0].error.startswith("preinit: fatal: /run belongs to uid 0")
    assert "emptyDir at /run (root:1000, 2777)" in v.conflicts[0].breaks


def test_run_as_non_root_without_a_user_is_refused_by_the_kubelet() -> None:
    v = verdict({"securityContext": {"runAsNonRoot": True}})
    assert v is not None and v.mode == "not-started"
    [c] = v.conflicts
    assert c.error is not None and c.error.startswith("container has runAsNonRoot and image will run as root")


def test_drop_all_breaks_chown_and_the_drop() -> None:
    v = verdict({"securityContext": {"capabilities": {"drop": ["ALL"]}}})
    assert v is not None and v.mode == "drop"
    [c] = v.conflicts
    assert c.fatal and c.setting == "spec.containers[0].securityContext.capabilities.drop: [ALL]"
    assert "chown of /config to 1000:1000 fails" in c.breaks
    assert ("fails at setgroups() (s6-applyuidgid: fatal: unable to set supplementary group list: Operation not "
            "permitted) and the app never starts (exit 111)") in c.breaks
    assert "without CHOWN, SETGID, SETUID" in c.breaks
    assert "add: [CHOWN, SETGID, SETUID]" in c.instead


def test_missing_setuid_alone_fails_at_setuid() -> None:
    v = verdict({"securityContext": {"capabilities": {"drop": ["SETUID"]}}})
    assert v is not None
    [c] = v.conflicts
    assert c.fatal and "setgroups" not in c.breaks and "chown" not in c.breaks
    assert ("the drop fails at setuid() (s6-applyuidgid: fatal: unable to setuid: Operation not permitted) and the "
            "app never starts (exit 111)") in c.breaks


def test_missing_only_chown_degrades_but_starts() -> None:
    v = verdict({"securityContext": {"capabilities": {"drop": ["CHOWN"]}}})
    assert v is not None
    [c] = v.conflicts
    assert not c.fatal and "without CHOWN" in c.setting and "setgroups" not in c.breaks


def test_the_minimal_set_and_no_new_privs_are_fine() -> None:
    v = verdict({"securityContext": {"capabilities": {"drop": ["ALL"], "add": ["CHOWN", "SETGID", "SETUID"]},
                                     "allowPrivilegeEscalation": False}})
    assert v is not None and v.conflicts == ()
    assert v.fine == (
        "capabilities: CHOWN, SETGID, SETUID are kept, enough for the init; without DAC_OVERRIDE, FOWNER it cannot "
        "touch /config files root cannot read",
        "allowPrivilegeEscalation: false: /init is root calling setgroups()/setgid()/setuid(); no setuid binary is "
        "involved, so no_new_privs changes nothing",
    )


def test_read_only_root_needs_run_and_ignores_puid() -> None:
    v = verdict({"securityContext": {"readOnlyRootFilesystem": True}})
    assert v is not None and v.mode == "read-only"
    assert [c.fatal for c in v.conflicts] == [True, False]
    assert "mount an emptyDir at /run" in v.conflicts[0].instead
    v = verdict({"securityContext": {"readOnlyRootFilesystem": True},
                 "volumeMounts": [{"name": "run", "mountPath": "/run"}]},
                spec={"volumes": [{"name": "run", "emptyDir": {}}]})
    assert v is not None and v.fatal == () and v.app == (911, 911, (100, 911))
    assert "runs as abc's image ids 911:911" in v.summary()


def test_shared_pid_namespace_breaks_the_pid1_check() -> None:
    for key in ("shareProcessNamespace", "hostPID"):
        v = verdict(spec={key: True})
        assert v is not None
        [c] = v.conflicts
        assert c.field == ("spec", key) and c.error == "s6-overlay-suexec: fatal: can only run as pid 1"


def test_fs_group_is_lost_unless_it_is_pgid() -> None:
    v = verdict(pod_sc={"fsGroup": 2000, "supplementalGroups": [3000, 100]})
    assert v is not None
    [c] = v.conflicts
    assert not c.fatal and "the app loses group(s) 2000,3000" in c.breaks
    assert c.setting == "spec.securityContext.fsGroup: 2000, spec.securityContext.supplementalGroups: 3000"
    v = verdict({"env": [{"name": "PUID", "value": "1000"}, {"name": "PGID", "value": "2000"}]},
                pod_sc={"fsGroup": 2000})
    assert v is not None and v.conflicts == () and v.app[2] == (100, 2000)


def test_json_shape() -> None:
    v = verdict({"securityContext": {"runAsUser": 1000}})
    assert v is not None
    doc = verdict_dict(v)
    assert doc["mode"] == "non-root" and doc["PUID"] == {"value": "1000", "source": "container env"}
    assert doc["start"] == {"uid": 1000, "gid": 0, "groups": [0]}
    assert doc["conflicts"][0]["field"] == "spec.containers[0].securityContext.runAsUser"
    assert set(doc) == {"mode", "summary", "evidence", "PUID", "PGID", "start", "app", "conflicts", "fine",
                        "warnings"}


def test_plain_pods_do_not_read_the_rootfs() -> None:
    """The cheap pre-check keeps explain/run from unpacking images of pods with nothing PUID-like."""
    calls: list[str] = []
    spec = {"containers": [{"name": "web", "image": "nginx:1"}]}
    img = ImageInfo(ref="nginx:1", entrypoint=("/docker-entrypoint.sh",))
    pod = resolve_pod({"name": "p"}, spec, lambda ref: img)
    assert pod_verdicts(spec, pod, {"web": img}, lambda ref: calls.append(ref) or S6) == {}
    assert calls == []


# -- the rootfs probe --------------------------------------------------------------------------------


def test_probe_finds_s6_files_and_run_owner(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    for d in ("etc/s6-overlay", "package/admin/s6-overlay-3.2.1.0", "command", "run", "etc"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "package/admin/s6-overlay").symlink_to("s6-overlay-3.2.1.0")
    (root / "command/s6-svscan").write_text("")
    (root / "docker-mods").write_text("")
    os.chown(root / "run", 1000, 2000)
    os.chmod(root / "run", 0o1777)
    facts = probe(root)
    assert facts.markers == ("/etc/s6-overlay", "/package/admin/s6-overlay", "/command/s6-svscan", "/docker-mods")
    assert facts.run_owner == (1000, 2000, 0o1777)


def test_probe_does_not_follow_links_out_of_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "s6-overlay").mkdir(parents=True)
    (outside / "run").mkdir()
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc/s6-overlay").symlink_to(outside / "s6-overlay")  # absolute: means /<tmp>/outside inside
    (root / "run").symlink_to("../../../../../../" + str(outside / "run"))
    facts = probe(root)
    assert facts.markers == () and facts.run_owner is None


# -- PS008: check's finding is the verdict's first conflict -------------------------------------------


def ps008(container: dict, pod_sc: dict | None = None, known: bool = False) -> list:
    """podsec's PS008 findings for a one-container pod with PUID/PGID set (the image unknown unless ``known``)."""
    from podsec.check import pod_facts
    from podsec.policy.checks import run_checks

    c = {"name": "app", "image": "example.org/app:1",
         "env": [{"name": "PUID", "value": "1000"}, {"name": "PGID", "value": "1000"}], **container}
    spec = {"securityContext": pod_sc or {}, "containers": [c]}
    img = image()
    lookup = (lambda ref: img) if known else None
    pod = resolve_pod({"name": "p"}, spec, lookup)
    facts = pod_facts(spec, pod, frozenset(), lookup, None, None)
    return [f for f in run_checks({"name": "p"}, spec, pod, facts=facts) if f.id == "PS008"]


def test_ps008_flags_run_as_user_even_without_the_image() -> None:
    [f] = ps008({"securityContext": {"runAsUser": 1000}})
    assert f.severity == "high" and f.path == ("spec", "containers", 0, "securityContext", "runAsUser")
    assert "fails before the app starts" in f.message
    assert "let /init start as root" in f.fix


def test_ps008_accepts_the_least_privilege_recipe_for_a_root_init() -> None:
    """allowPrivilegeEscalation: false and drop ALL + add CHOWN/SETGID/SETUID: /init still drops to PUID:PGID."""
    sc = {"allowPrivilegeEscalation": False,
          "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "SETGID", "SETUID"]}}
    assert ps008({"securityContext": sc}) == []
    assert ps008({"securityContext": sc}, known=True) == []


def test_ps008_drop_all_alone_breaks_the_privilege_drop() -> None:
    [f] = ps008({"securityContext": {"capabilities": {"drop": ["ALL"]}}}, known=True)
    assert f.severity == "high" and f.path[-1] == "capabilities"
    assert "s6-applyuidgid: fatal: unable to set supplementary group list" in f.why
    assert "add: [CHOWN, SETGID, SETUID]" in f.fix


def test_ps008_lost_fs_group_is_medium() -> None:
    [f] = ps008({}, pod_sc={"fsGroup": 2000}, known=True)
    assert f.severity == "medium" and f.path == ("spec", "securityContext", "fsGroup")
    assert "loses group(s) 2000" in f.why and "PGID=2000" in f.fix


def test_ps008_needs_puid_or_an_init() -> None:
    assert ps008({"env": []}) == []
