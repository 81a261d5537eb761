"""PUID/PGID images (the linuxserver.io convention on s6-overlay): who the app really runs as, and which
securityContext settings break the image's own privilege drop. Pure: facts in, a :class:`Verdict` out.

What such an image does, from the upstream sources (facts only; no code of theirs is used here):

- ``ENTRYPOINT ["/init"]`` is s6-overlay (linuxserver/docker-baseimage-alpine ``Dockerfile``). In v3,
  ``/init`` execs ``s6-overlay-suexec``, which dies with ``s6-overlay-suexec: fatal: can only run as pid 1``
  (exit 100) unless it is PID 1 (just-containers/s6-overlay-helpers ``s6-overlay-suexec.c``); in a pod it is
  PID 1 only without ``shareProcessNamespace``/``hostPID``.
- Started by a non-root uid it warns ``unable to gain root privileges (is the suid bit set?)`` and goes on
  unprivileged; ``preinit`` then insists on a usable ``/run``: owned by that uid, or (gid 0) group-rwx and
  not world-writable, or sticky, or world-writable with ``S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES``;
  otherwise ``fatal: /run belongs to uid 0 instead of N, ...`` / ``fatal: wrong permissions on /run for a gid 0
  setup`` (s6-overlay ``libexec/preinit``).
- linuxserver's ``init-adduser`` runs ``groupmod -o -g $PGID abc`` and ``usermod -o -u $PUID abc`` (defaults
  911) and ``lsiown abc:abc /config`` (a ``find … -exec chown``; a failure prints ``**** Permissions could not
  be set …`` and goes on); the services then ``exec s6-setuidgid abc app`` (docker-baseimage-alpine
  ``init-adduser/run``, docker-mods ``lsiown.v1``). Rewriting ``/etc/passwd`` needs root; chown needs
  CAP_CHOWN.
- ``s6-setuidgid abc`` = ``s6-envuidgid abc`` (uid and gid from /etc/passwd; as GIDLIST only the groups
  that *list abc as a member in the image's /etc/group*) + ``s6-applyuidgid -Uz``, which calls
  ``setgroups()`` with the gid plus that list (CAP_SETGID), ``setgid()``, ``setuid()`` (CAP_SETUID) and
  dies with ``s6-applyuidgid: fatal: unable to set supplementary group list: …`` / ``unable to setuid: …``
  (exit 111) (skarnet/s6 ``s6-envuidgid.c``, ``s6-applyuidgid.c``). So the app keeps none of the
  container's groups: a pod ``fsGroup`` is lost unless abc is a member of it. Root calling setuid() needs
  no setuid binary, so ``allowPrivilegeEscalation: false`` (no_new_privs) does not stop it. The
  environment is passed on as it is: ``HOME`` stays the container's (root's), not abc's home.
- linuxserver's ``docker-mods`` hook sets ``LSIO_READ_ONLY_FS`` on a read-only root and ``LSIO_NON_ROOT_USER``
  when ``/run`` is not root's; then init-adduser is skipped and "the PUID/PGID environment variables will
  have no effect" (docker-mods ``docker-mods.v3``; docs.linuxserver.io misc/non-root, misc/read-only). A
  read-only root also needs a writable, exec-able ``/run`` (``tmpfs /run:exec``; ``S6_READ_ONLY_ROOT=1``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

from podsec.image.model import ImageFacts, ImageInfo
from podsec.model import Path, ResolvedContainer, ResolvedPod, render_path
from podsec.puid_spec import INIT, LSIO_PREFIXES, EnvSources, argv0, candidate, env_from, pod_has_candidate

LSIO_USER = "abc"
LSIO_DEFAULT_ID = 911
"""``PUID=${PUID:-911}`` / ``PGID=${PGID:-911}`` in linuxserver's init-adduser."""
ROOT_CAPS = ("CAP_CHOWN", "CAP_SETGID", "CAP_SETUID")
"""What the root half needs: chown /config (lsiown), setgroups()+setgid(), setuid()."""
HELPFUL_CAPS = ("CAP_DAC_OVERRIDE", "CAP_FOWNER")
"""Needed only when /config holds files root does not own and cannot read or change without them."""
S6_WORLD_WRITABLE_RUN = "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"
SETGROUPS_FAILED = "s6-applyuidgid: fatal: unable to set supplementary group list: Operation not permitted"
SETUID_FAILED = "s6-applyuidgid: fatal: unable to setuid: Operation not permitted"
"""What ``s6-setuidgid abc`` prints when root lacks CAP_SETGID / CAP_SETUID (checked against the real s6)."""
S6_EXIT_FAILED = 111
"""s6-applyuidgid's exit code for a failed system call (skarnet's ``strerr_diefu1sys(111, …)``)."""
MAX_ID = 4294967294
V3_MARKERS = ("/package/admin/s6-overlay", "/command")


class EnvValue(NamedTuple):
    name: str
    value: str | None
    """``None`` when podsec cannot know it before the pod runs (``valueFrom``, ``envFrom`` of an unknown
    ConfigMap/Secret)."""
    source: str


class Conflict(NamedTuple):
    """A securityContext setting that breaks the image's own privilege drop (or quietly changes its outcome)."""

    setting: str
    field: Path
    breaks: str
    instead: str
    fatal: bool = True
    """False: the container starts, but not as the PUID/PGID user expects (lost groups, no chown)."""
    error: str | None = None
    """The line the container prints when it fails this way (its words)."""


class Verdict(NamedTuple):
    container: str
    mode: str
    """``drop`` (root, then PUID:PGID), ``non-root`` (PUID/PGID ignored), ``read-only`` (abc's image ids),
    ``not-started`` (the kubelet refuses it) or ``no-init`` (the command replaces /init)."""
    evidence: tuple[str, ...]
    puid: EnvValue | None
    pgid: EnvValue | None
    start: tuple[int | None, int | None, tuple[int, ...] | None]
    """uid, gid, groups the process starts with (resolve's answer)."""
    app: tuple[int | None, int | None, tuple[int, ...] | None]
    """uid, gid, groups the app ends up with (``None``: podsec cannot tell)."""
    app_user: str | None
    conflicts: tuple[Conflict, ...] = ()
    fine: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def fatal(self) -> tuple[Conflict, ...]:
        return tuple(c for c in self.conflicts if c.fatal)

    def summary(self) -> str:
        """One line: what really happens (for ``run``'s note, the event and explain's first line)."""
        su, sg, _ = self.start
        start = "root (uid 0)" if su == 0 else f"uid {su}, gid {_id(sg)}" if su is not None else \
            "root (the image's USER, unknown here; linuxserver images have none)"
        au, ag, groups = self.app
        app = f"{_id(au)}:{_id(ag)}" + (f" (groups {','.join(map(str, groups))})" if groups else "")
        if self.mode == "no-init":
            return f"the command replaces the image's {INIT}: nothing reads PUID/PGID; runs as {start}"
        if self.mode == "not-started":
            return "the kubelet will not start it (runAsNonRoot), but the image's /init needs to start as root"
        fatal = self.fatal
        why = ""
        if fatal:
            why = f" ({fatal[0].setting}" + (f" → {fatal[0].error})" if fatal[0].error else ")")
        if self.mode == "non-root":
            if fatal:
                return f"/init starts as {start}, not root, and fails before the app starts{why}; PUID/PGID are ignored"
            return f"/init starts as {start}, not root: PUID/PGID are ignored; the app runs as {app}"
        if self.mode == "read-only":
            if fatal:
                return f"/init starts as {start} and fails before the app starts{why}"
            return (f"/init starts as {start}; with a read-only root filesystem it cannot apply PUID/PGID: the app "
                    f"runs as {self.app_user or LSIO_USER}'s image ids {app}")
        if fatal:
            return f"/init starts as {start} but fails before the app runs as {app}{why}"
        return f"/init starts as {start} and drops the app to {app}"


def _id(v: int | None) -> str:
    return "?" if v is None else str(v)


# -- facts from the pod spec (argv0 and the pre-check: podsec.puid_spec, cheap to import) ------------

ID_NAMES = ("PUID", "PGID")
"""The variables the image's init reads; an ``envFrom`` of unknown content may set them."""
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
"""What the kubelet keeps of an ``envFrom`` key with its prefix (as :mod:`podsec.plan.process`)."""


def _value_from(vf: Mapping, sources: EnvSources | None) -> tuple[bool, str | None]:
    """(set?, value) of a ``valueFrom``: a ConfigMap/Secret key podsec knows gives its value; a key the
    kubelet would skip (``optional``, absent) leaves the variable unset; anything else is unknown."""
    for ref_key, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
        ref = vf.get(ref_key)
        if not isinstance(ref, dict) or sources is None:
            continue
        data = sources(kind, str(ref.get("name") or ""))
        if data is None:
            return True, None
        key = str(ref.get("key") or "")
        if key in data:
            return True, data[key]
        return ref.get("optional") is not True, None  # not optional: the container never starts anyway
    return True, None


def container_env(container: Mapping, image: ImageInfo | None,
                  sources: EnvSources | None = None) -> dict[str, EnvValue]:
    """The environment as the runtime builds it (kubelet ``makeEnvironmentVariables`` on top of containerd's
    image ``Env``): the image's ``Env``, then each ``envFrom`` source in order, then ``env`` (last wins).

    ``sources`` gives the ConfigMaps/Secrets podsec knows (``run`` has the manifest's own). An ``envFrom``
    source it cannot read may set anything; only :data:`ID_NAMES` are then entered, with value ``None``
    (other names such as ``LSIO_NON_ROOT_USER`` stay as they were: guessing them set would hide advice).
    """
    out: dict[str, EnvValue] = {}
    for item in image.env if image else ():
        name, sep, value = item.partition("=")
        if sep:
            out[name] = EnvValue(name, value, "image env")
    for label, prefix, data in env_from(container, sources):
        if data is None:
            for name in ID_NAMES:
                if name.startswith(prefix) and name != prefix:
                    out[name] = EnvValue(name, None, label)
            continue
        for k, v in data.items():
            key = prefix + str(k)
            if _ENV_NAME.match(key):
                out[key] = EnvValue(key, str(v), label)
    for e in container.get("env") or ():
        if not isinstance(e, dict) or not isinstance(e.get("name"), str):
            continue
        name = e["name"]
        value = e.get("value")
        if isinstance(e.get("valueFrom"), dict) and not (isinstance(value, str) and value):
            kind = next(iter(e["valueFrom"]), "valueFrom")
            is_set, known = _value_from(e["valueFrom"], sources)
            if is_set:
                out[name] = EnvValue(name, known, f"container env, valueFrom {kind}")
        else:
            out[name] = EnvValue(name, value if isinstance(value, str) else "", "container env")
    return out


def _parse_id(v: EnvValue | None) -> tuple[int | None, str | None]:
    """A PUID/PGID value as usermod/groupmod would take it, or a warning."""
    if v is None or v.value is None:
        return None, None
    text = v.value
    if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
        return int(text), None
    kind = "user" if v.name == "PUID" else "group"
    tool = "usermod" if v.name == "PUID" else "groupmod"
    return None, (f"{v.name}={text!r} is not a numeric id: {tool} rejects it ({tool}: invalid {kind} ID "
                  f"'{text}') and {LSIO_USER} keeps the image's id")


def _truthy(env: Mapping[str, EnvValue], name: str) -> bool:
    v = env.get(name)
    return v is not None and (v.value is None or v.value not in ("", "0", "false"))


# -- the verdict -----------------------------------------------------------------------------------


def _sc_path(rc: ResolvedContainer, name: str) -> Path:
    return (*rc.path, "securityContext", name)


def _id_source(rc: ResolvedContainer, pod_field: str) -> tuple[str, Path]:
    """Where the start uid came from: ``securityContext.runAsUser: 1000`` with its field path."""
    ident = rc.identity
    if ident.uid_source in ("container", "pod"):
        path: Path = _sc_path(rc, pod_field) if ident.uid_source == "container" else (
            "spec", "securityContext", pod_field)
        return f"{render_path(path)}: {ident.uid}", path
    return f"image USER {ident.username or ident.cri_run_as_username or ident.uid}", (*rc.path, "image")


def _preinit(uid: int, gid: int | None, run: tuple[int, int, int], world_ok: bool) -> str | None:
    """s6-overlay's preinit check of /run for an unprivileged start: None if it accepts it, else its message."""
    run_uid, run_gid, mode = run
    if uid == run_uid:
        return None
    if gid == 0 and run_gid == 0:
        if mode & 0o070 == 0o070 and not mode & 0o002:
            return None
        return "wrong permissions on /run for a gid 0 setup"
    group = run_gid == gid
    bits = (mode >> 3) & 7 if group else mode & 7
    if run_uid == 0 and bits == 7 and mode & 0o1000 and (not group or mode & 0o2000):
        return None
    if run_uid == 0 and mode & 0o777 == 0o777 and world_ok:
        return None
    return (f"/run belongs to uid {run_uid} instead of {uid}, has insecure and/or unworkable permissions, "
            "and we're lacking the privileges to fix it.")


def _run_dir(rc: ResolvedContainer, pod: ResolvedPod, facts: ImageFacts | None) -> tuple[tuple[int, int, int], str]:
    """/run as the init will find it: a writable volume (an emptyDir is 0777, 2777 with fsGroup) or the image's."""
    for m in rc.writable_mounts:
        if m.mount_path.rstrip("/") in ("/run", "/var/run"):
            if m.volume_type == "emptyDir":
                if pod.fs_group is not None:
                    return (0, pod.fs_group, 0o2777), f"emptyDir at {m.mount_path} (root:{pod.fs_group}, 2777)"
                return (0, 0, 0o777), f"emptyDir at {m.mount_path} (root:root, 0777)"
            return (0, 0, 0o755), f"{m.volume_type} at {m.mount_path}"
    if facts is not None and facts.run_owner is not None:
        u, g, mode = facts.run_owner
        return (u, g, mode), f"the image's /run ({u}:{g}, {mode:04o})"
    return (0, 0, 0o755), "the image's /run (assumed root's, 0755)"


def _has_run_volume(rc: ResolvedContainer) -> bool:
    return any(m.mount_path.rstrip("/") in ("/run", "/var/run") for m in rc.writable_mounts)


def detect(
    container: Mapping, rc: ResolvedContainer, pod: ResolvedPod, pod_spec: Mapping,
    image: ImageInfo | None, facts: ImageFacts | None, *, sources: EnvSources | None = None,
) -> Verdict | None:
    """The verdict for one container, or ``None`` when it is not a PUID/PGID (s6-overlay ``/init``) image.

    It is one when PUID or PGID is in its environment (or the image is a linuxserver one) *and* something
    shows the s6-overlay init: ``/init`` as the program, s6-overlay files in the image, or a linuxserver name.
    When the image is not known (not in the store), PUID/PGID alone count when nothing else names the program,
    with a warning that ``/init`` is assumed: check, explain and run judge such a container the same way.
    ``sources``: the ConfigMaps/Secrets podsec knows, for ``envFrom`` and ``valueFrom`` (else unknown).
    """
    env = container_env(container, image, sources)
    puid, pgid = env.get("PUID"), env.get("PGID")
    markers = facts.markers if facts else ()
    lsio = rc.image.startswith(LSIO_PREFIXES) or "/docker-mods" in markers
    prog, prog_source = argv0(container, image)
    image_init = bool(image and image.entrypoint and image.entrypoint[0] == INIT)
    guessed = prog is None and image is None and (puid is not None or pgid is not None)
    if not (prog == INIT or image_init or markers or lsio or guessed):
        return None
    if puid is None and pgid is None and not lsio:
        return None
    evidence = [f"{v.name}={v.value if v.value is not None else '?'} ({v.source})" for v in (puid, pgid) if v]
    if prog == INIT:
        evidence.append(f"{INIT} is the {prog_source}")
    elif image_init:
        evidence.append(f"{INIT} is the image ENTRYPOINT")
    if markers:
        evidence.append("in the image: " + ", ".join(markers))
    if rc.image.startswith(LSIO_PREFIXES):
        evidence.append(f"linuxserver image {rc.image}")
    ident = rc.identity
    start = (ident.uid, ident.gid, ident.groups)
    base = {"container": rc.name, "evidence": tuple(evidence), "puid": puid, "pgid": pgid, "start": start}
    warnings: list[str] = []
    if prog != INIT and prog_source == "container command":
        return Verdict(mode="no-init", app=start, app_user=ident.username, **base,
                       warnings=(f"the container command starts {prog}, not {INIT}: PUID/PGID have no effect",))
    if prog is None:
        warnings.append(f"the image is not in the local store: assuming its ENTRYPOINT is {INIT}")
    elif prog != INIT:
        warnings.append(f"the {prog_source} is {prog}, not {INIT}: assuming it ends in s6-overlay's {INIT}")
    if rc.run_as_non_root.ok is False:
        return Verdict(
            mode="not-started", app=(None, None, None), app_user=None, **base,
            conflicts=(Conflict(
                f"{render_path(_sc_path(rc, 'runAsNonRoot'))}: true", _sc_path(rc, "runAsNonRoot"),
                f"the kubelet refuses to start the container (CreateContainerConfigError: "
                f"{rc.run_as_non_root.message}); the image has no USER because its {INIT} must start as root",
                "remove runAsNonRoot (the app still runs as PUID:PGID, not root) or run the image non-root "
                "from the start with runAsUser/runAsGroup (see podsec explain's advice then)",
                error=rc.run_as_non_root.message),),
        )
    return _verdict(container, rc, pod, pod_spec, image, facts, env, base, warnings, lsio)


def _verdict(
    container: Mapping, rc: ResolvedContainer, pod: ResolvedPod, pod_spec: Mapping, image: ImageInfo | None,
    facts: ImageFacts | None, env: Mapping[str, EnvValue], base: dict, warnings: list[str], lsio: bool,
) -> Verdict:
    puid, pgid = env.get("PUID"), env.get("PGID")
    ident = rc.identity
    conflicts: list[Conflict] = []
    fine: list[str] = []
    for v in (puid, pgid):
        if v is not None and v.value is None:
            warnings.append(f"{v.name} comes from {v.source.split(', ', 1)[-1]}: its value is known only when "
                            "the pod runs")
    uid, w1 = _parse_id(puid)
    gid, w2 = _parse_id(pgid)
    warnings += [w for w in (w1, w2) if w]
    entry = image.user_by_name(LSIO_USER) if image else None
    image_ids = (entry.uid, entry.gid) if entry else (None, None)
    if puid is None:
        uid = LSIO_DEFAULT_ID
    elif uid is None and puid.value is not None:
        uid = image_ids[0]
    if pgid is None:
        gid = LSIO_DEFAULT_ID
    elif gid is None and pgid.value is not None:
        gid = image_ids[1]
    if uid == 0:
        warnings.append("PUID=0: the app runs as root")
    pid1 = _pid1_conflict(rc, pod_spec, facts)
    if pid1:
        conflicts.append(pid1)
    start_root = ident.uid == 0 or ident.uid is None
    if not start_root:
        mode = "non-root"
        app = base["start"]
        conflicts += _non_root(rc, pod, facts, env, uid, gid, lsio)
    elif rc.readonly_rootfs:
        mode = "read-only"
        app = (image_ids[0], image_ids[1], _groups(image, image_ids[1]))
        conflicts += _read_only(rc, uid, gid, image_ids)
    else:
        mode = "drop"
        app = (uid, gid, _groups(image, gid))
        conflicts += _caps(rc, uid, gid, fine)
    if mode in ("drop", "read-only"):
        if rc.no_new_privileges:
            fine.append("allowPrivilegeEscalation: false: /init is root calling setgroups()/setgid()/setuid(); "
                        "no setuid binary is involved, so no_new_privs changes nothing")
        if ident.gid not in (0, None):
            fine.append(f"runAsGroup {ident.gid}: only the init runs with it; the app's group is PGID")
        known = app[2] is not None
        have = app[2] if known else ((app[1],) if app[1] is not None else None)
        lost = _lost_ids(pod, have)
        if lost:
            names = [f"spec.securityContext.fsGroup: {g}" if g == pod.fs_group
                     else f"spec.securityContext.supplementalGroups: {g}" for g in lost]
            mine = (f"{LSIO_USER}: {','.join(map(str, have or ()))}" if known
                    else f"{LSIO_USER}: PGID {_id(app[1])} plus what the image's /etc/group lists it in")
            conflicts.append(Conflict(
                ", ".join(names),
                ("spec", "securityContext", "fsGroup" if pod.fs_group in lost else "supplementalGroups"),
                f"the app loses group(s) {','.join(map(str, lost))}: s6-setuidgid sets its groups from the image's "
                f"/etc/group ({mine}), so volume files writable only by those groups are read-only for it",
                f"set PGID to the volume group (PGID={pod.fs_group if pod.fs_group is not None else '<gid>'}) "
                "so the app's primary group owns it, or make the volume's files owned by PUID:PGID",
                fatal=False))
    return Verdict(mode=mode, app=app, app_user=LSIO_USER if mode != "non-root" else ident.username,
                   conflicts=tuple(conflicts), fine=tuple(fine), warnings=tuple(warnings), **base)


def _groups(image: ImageInfo | None, gid: int | None) -> tuple[int, ...] | None:
    """abc's groups after ``s6-setuidgid abc``: its primary gid plus every image group that lists it."""
    if gid is None:
        return None
    if image is None or image.group is None:
        return None  # the memberships are the image's: unknown here
    extra = {g.gid for g in image.group if LSIO_USER in g.members and g.name != LSIO_USER}
    return tuple(sorted({gid} | extra))


def _lost_ids(pod: ResolvedPod, groups: tuple[int, ...] | None) -> list[int]:
    if groups is None:
        return []
    wanted = ([pod.fs_group] if pod.fs_group is not None else []) + list(pod.supplemental_groups)
    return [g for g in dict.fromkeys(wanted) if g not in groups]


def _pid1_conflict(rc: ResolvedContainer, pod_spec: Mapping, facts: ImageFacts | None) -> Conflict | None:
    """s6-overlay v3's /init runs only as PID 1; a shared or host PID namespace makes it something else."""
    if facts is not None and facts.markers and not any(m.startswith(V3_MARKERS) for m in facts.markers) \
            and "/etc/s6" in facts.markers:
        return None  # s6-overlay v2 has no such check
    for key in ("shareProcessNamespace", "hostPID"):
        if pod_spec.get(key) is True:
            return Conflict(
                f"{key}: true", ("spec", key),
                f"{INIT} is not PID 1 in a {'shared' if key == 'shareProcessNamespace' else 'host'} PID namespace, "
                "and s6-overlay v3 refuses to run otherwise: the container exits 100 at once",
                f"remove {key} (s6-overlay is the container's own init and must be its PID 1)",
                error="s6-overlay-suexec: fatal: can only run as pid 1")
    return None


def _caps(rc: ResolvedContainer, uid: int | None, gid: int | None, fine: list[str]) -> list[Conflict]:
    """Root without CHOWN/SETGID/SETUID cannot chown /config or switch to PUID:PGID."""
    have = set(rc.capabilities.bounding)  # root: effective = bounding (also when the USER is unknown)
    missing = [c for c in ROOT_CAPS if c not in have]
    target = f"{_id(uid)}:{_id(gid)}"
    if not missing:
        short = [c for c in HELPFUL_CAPS if c not in have]
        if short and rc.capabilities.source != "default":
            fine.append(f"capabilities: CHOWN, SETGID, SETUID are kept, enough for the init; without "
                        f"{', '.join(c[4:] for c in short)} it cannot touch /config files root cannot read")
        return []
    breaks: list[str] = []
    if "CAP_CHOWN" in missing:
        breaks.append(f"chown of /config to {target} fails (Operation not permitted; linuxserver's lsiown "
                      "prints '**** Permissions could not be set ...' and goes on, leaving /config unwritable "
                      "for the app)")
    if "CAP_SETGID" in missing:
        breaks.append(f"the drop to PUID:PGID fails at setgroups() ({SETGROUPS_FAILED}) and the app never starts "
                      f"(exit {S6_EXIT_FAILED})")
    if "CAP_SETUID" in missing and "CAP_SETGID" not in missing:
        breaks.append(f"the drop fails at setuid() ({SETUID_FAILED}) and the app never starts (exit {S6_EXIT_FAILED})")
    caps = rc.capabilities
    where = render_path(_sc_path(rc, "capabilities"))
    drop_all = caps.source == "container" and not caps.bounding
    setting = f"{where}.drop: [ALL]" if drop_all else f"{where} without {', '.join(c[4:] for c in missing)}"
    keep = ", ".join(c[4:] for c in ROOT_CAPS)
    return [Conflict(
        setting, _sc_path(rc, "capabilities"), "; ".join(breaks) + " — /init starts as root but without "
        f"{', '.join(c[4:] for c in missing)}",
        f"keep root for the init but only the capabilities it needs: drop: [ALL], add: [{keep}] (plus "
        "DAC_OVERRIDE, FOWNER if /config holds files root cannot read or change); the app itself runs as "
        f"{target} with no capabilities. Pod Security 'baseline' allows this, 'restricted' does not (it wants "
        "runAsNonRoot and only NET_BIND_SERVICE): there, only the image's non-root operation is possible",
        fatal="CAP_SETGID" in missing or "CAP_SETUID" in missing, error="Operation not permitted")]


def _read_only(rc: ResolvedContainer, uid: int | None, gid: int | None,
               image_ids: tuple[int | None, int | None]) -> list[Conflict]:
    out: list[Conflict] = []
    path = _sc_path(rc, "readOnlyRootFilesystem")
    setting = f"{render_path(path)}: true"
    if not _has_run_volume(rc):
        out.append(Conflict(
            setting, path,
            "s6-overlay writes its state under /run at boot (/run/s6, /run/service): on a read-only root that "
            "fails (Read-only file system) before any service starts",
            "mount an emptyDir at /run (emptyDir mounts are exec, as s6 needs) and set S6_READ_ONLY_ROOT=1",
            error="Read-only file system"))
    ids = f"{_id(image_ids[0])}:{_id(image_ids[1])}"
    out.append(Conflict(
        f"{setting} (PUID/PGID)", path,
        f"PUID/PGID have no effect: /etc/passwd cannot be rewritten on a read-only root (linuxserver's init "
        f"detects it and skips init-adduser), so the app runs as {LSIO_USER}'s image ids {ids}, not "
        f"{_id(uid)}:{_id(gid)}",
        f"if {ids} is not who should own the data, run non-root from the start instead: runAsUser: {_id(uid)}, "
        f"runAsGroup: {_id(gid)} (and drop PUID/PGID)",
        fatal=False))
    return out


def _non_root(rc: ResolvedContainer, pod: ResolvedPod, facts: ImageFacts | None, env: Mapping[str, EnvValue],
              uid: int | None, gid: int | None, lsio: bool) -> list[Conflict]:
    """/init started by a non-root uid: PUID/PGID are ignored; it works only with the non-root recipe."""
    ident = rc.identity
    setting, path = _id_source(rc, "runAsUser")
    if rc.run_as_non_root.required:
        setting += " (runAsNonRoot: true)"
    start_uid = ident.uid if ident.uid is not None else -1
    run, run_desc = _run_dir(rc, pod, facts)
    fail = _preinit(start_uid, ident.gid, run, _truthy(env, S6_WORLD_WRITABLE_RUN))
    steps: list[str] = []
    todo: list[str] = []
    error = None
    head = (f"/init starts as uid {start_uid}, not root: s6-overlay cannot gain root ('s6-overlay-suexec: "
            "warning: unable to gain root privileges')")
    if fail:
        error = f"preinit: fatal: {fail}"
        steps.append(f"its preinit rejects {run_desc}: '{error}' (exit 100)")
        if not _has_run_volume(rc):
            todo.append("an emptyDir mounted at /run")
        if not _truthy(env, S6_WORLD_WRITABLE_RUN):
            todo.append(f"env {S6_WORLD_WRITABLE_RUN}=1 (an emptyDir is world-writable)")
    if lsio and not _truthy(env, "LSIO_NON_ROOT_USER"):
        steps.append("linuxserver's init-adduser cannot rewrite /etc/passwd as non-root ('usermod: cannot lock "
                     "/etc/passwd; try again later.') and its services' s6-setuidgid fails at setgroups() "
                     "(a non-root process never has CAP_SETGID)")
        todo.append("env LSIO_NON_ROOT_USER=true (the image cannot detect it when /run is an emptyDir)")
        error = error or "usermod: cannot lock /etc/passwd; try again later."
    if pod.fs_group is None:
        todo.append(f"fsGroup: {_id(gid if gid is not None else ident.gid)} so the volumes are writable")
    who = f"{_id(ident.uid)}:{_id(ident.gid)}"
    if not steps:
        breaks = (f"/init starts as {who}, not root, and copes (non-root operation): PUID/PGID are ignored; "
                  f"the app runs as {who}")
        instead = "remove PUID/PGID (they do nothing here)" + ("; also set " + ", ".join(todo) if todo else "")
        return [Conflict(setting, path, breaks, instead, fatal=False)]
    breaks = head + "; " + "; ".join(steps) + f". PUID/PGID are ignored: if it starts at all, the app runs as {who}"
    want = (f"runAsUser: {uid if uid is not None else '<PUID>'}, "
            f"runAsGroup: {gid if gid is not None else '<PGID>'}")
    instead = (f"either let /init start as root (remove runAsUser/runAsNonRoot; the app still ends up as "
               f"{_id(uid)}:{_id(gid)}, not root) and drop capabilities to CHOWN, SETUID, SETGID (Pod Security "
               "'baseline' allows that, 'restricted' does not); or, for an image "
               f"that supports non-root operation, run non-root from the start with {want}"
               + (", " + ", ".join(todo) if todo else "") + ", and remove PUID/PGID (they are ignored then)")
    return [Conflict(setting, path, breaks, instead, error=error)]


# -- whole pods and the words for run/describe ------------------------------------------------------


def verdicts(
    spec: Mapping, pod: ResolvedPod, images: Callable[[str], ImageInfo | None] | None,
    facts: Callable[[str], ImageFacts | None] | None = None, sources: EnvSources | None = None,
) -> dict[str, Verdict]:
    """The PUID/PGID verdicts of a pod, as check, explain and run all ask for them: ``images`` looks an image
    up by reference (``None``: images not read), ``facts`` reads its rootfs, ``sources`` the ConfigMaps/Secrets
    of ``envFrom``/``valueFrom``. The cheap spec-only pre-check (:func:`podsec.puid_spec.pod_has_candidate`)
    comes first, so an ordinary pod reads no rootfs."""
    by_name = {c.name: images(c.image) if images is not None and c.image else None for c in pod.containers}
    if not pod_has_candidate(spec, by_name, sources):
        return {}
    return pod_verdicts(spec, pod, by_name, facts, sources=sources)


def pod_verdicts(
    spec: Mapping, pod: ResolvedPod, images: Mapping[str, ImageInfo | None],
    facts: Callable[[str], ImageFacts | None] | None = None, *, sources: EnvSources | None = None,
) -> dict[str, Verdict]:
    """Verdicts by container name. ``images`` maps a container name to its image (if known); ``facts`` reads
    an image's rootfs by reference, and is called only for containers that may be PUID/PGID ones;
    ``sources`` looks up the ConfigMaps/Secrets that ``envFrom``/``valueFrom`` name (``None``: unknown)."""
    out: dict[str, Verdict] = {}
    for rc in pod.containers:
        key = rc.path[1] if len(rc.path) > 2 else "containers"
        items = spec.get(key) or ()
        container = items[rc.index] if isinstance(key, str) and rc.index < len(items) else {}
        if not isinstance(container, dict):
            continue
        image = images.get(rc.name)
        if not _candidate(container, rc, image, sources):
            continue
        f = facts(rc.image) if facts is not None and rc.image_known else None
        v = detect(container, rc, pod, spec, image, f, sources=sources)
        if v is not None:
            out[rc.name] = v
    return out


def _candidate(container: Mapping, rc: ResolvedContainer, image: ImageInfo | None,
               sources: EnvSources | None = None) -> bool:
    """Cheap pre-check before any rootfs is read (:func:`podsec.puid_spec.candidate`)."""
    return candidate(container, rc.image, image, sources)


def event(v: Verdict) -> tuple[str, str, str]:
    """(type, reason, message) of the event ``run``/``apply`` record for a PUID/PGID container."""
    message = f"container {v.container}: {v.summary()}"
    fatal = v.fatal
    if v.conflicts:
        message += "; conflicts: " + "; ".join(f"{c.setting} ({'fatal' if c.fatal else 'degrades'})"
                                                for c in v.conflicts)
    else:
        message += "; no securityContext conflicts"
    return ("Warning" if fatal else "Normal"), "PUIDPGID", message


def note(v: Verdict) -> str:
    """The one line ``podsec run`` prints on stderr for a PUID/PGID container."""
    line = f"podsec: note: {v.container}: PUID/PGID image: {v.summary()}"
    if v.conflicts:
        line += f"; {len(v.conflicts)} securityContext conflict(s): podsec explain says what breaks and what to do"
    return line


def verdict_dict(v: Verdict) -> dict:
    """The JSON/YAML form of a verdict (explain -o json)."""

    def ident(t: tuple[int | None, int | None, tuple[int, ...] | None]) -> dict:
        return {"uid": t[0], "gid": t[1], "groups": list(t[2]) if t[2] is not None else None}

    def env(e: EnvValue | None) -> dict | None:
        return None if e is None else {"value": e.value, "source": e.source}

    return {
        "mode": v.mode,
        "summary": v.summary(),
        "evidence": list(v.evidence),
        "PUID": env(v.puid),
        "PGID": env(v.pgid),
        "start": ident(v.start),
        "app": {**ident(v.app), "user": v.app_user},
        "conflicts": [{"setting": c.setting, "field": render_path(c.field), "fatal": c.fatal, "breaks": c.breaks,
                       "instead": c.instead, "error": c.error} for c in v.conflicts],
        "fine": list(v.fine),
        "warnings": list(v.warnings),
    }
