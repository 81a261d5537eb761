"""What ``podsec fix`` changes in one workload, decided from its resolved pod; no text is touched here.

The plan moves a pod toward Pod Security Standards ``restricted`` (latest) with changes that keep the
app working and never loosen anything:

- ``runAsNonRoot: true`` at pod level (per container when a container must keep its own setting);
  plus a concrete ``runAsUser`` where the kubelet could not verify the user otherwise: the image's
  ``/etc/passwd`` uid of a named non-root USER, else ``DEFAULT_UID`` (65532, the "nonroot" uid of
  distroless images, not in typical ``/etc/passwd`` files). It goes at pod level when every
  container that would inherit it needs the same uid.
- ``allowPrivilegeEscalation: false``; ``capabilities.drop: [ALL]``; every ``capabilities.add`` that
  restricted forbids is removed. ``NET_BIND_SERVICE`` is never added: for the non-root user the plan
  ensures it is only in the bounding set (never effective, and no_new_privs stops file capabilities), and
  ports below 1024 bind without it because containerd sets ``net.ipv4.ip_unprivileged_port_start=0`` in
  the pod's network namespace. An exact ``NET_BIND_SERVICE`` the author wrote is left (restricted allows it).
- ``seccompProfile: {type: RuntimeDefault}`` at pod level; explicit ``Unconfined`` seccomp and
  AppArmor profiles become ``RuntimeDefault``.

What cannot change without changing what the app does (host namespaces, hostPath and other restricted
volumes, hostPort, privileged, procMount, SELinux, sysctls, probe hosts, Windows HostProcess, images that
drop privileges themselves through PUID/PGID) is left alone and reported as needing a human.
``readOnlyRootFilesystem`` is not set here: only a trace knows which paths need an emptyDir.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from podsec.manifest.kinds import Workload
from podsec.manifest.rewrite import MapPatch, SeqPatch, merge, patch_at
from podsec.model import ResolvedContainer, render_path
from podsec.resolve import CONTAINER_KINDS, ImageLookup, image_user, resolve_pod

DEFAULT_UID = 65532
AccountLookup = Callable[[str, Sequence[str]], Any]
"""(image ref, command) → :class:`podsec.fix.account.AccountChoice` or None."""
LEVEL = "restricted"
VERSION = "latest"

#: Pod Security checks whose failures podsec fix leaves to a human, with why.
NEEDS_HUMAN = {
    "hostNamespaces": "sharing the node's namespaces is what the pod does",
    "hostPathVolumes": "the app reads or writes the node's files",
    "restrictedVolumes": "the app uses this storage; replace it with a persistentVolumeClaim or emptyDir",
    "hostPorts": "the app is reached on the node's port",
    "privileged": "the app needs full device and kernel access (allowPrivilegeEscalation: false cannot be set "
    "while it is privileged)",
    "procMount": "the app needs an unmasked /proc",
    "procMount_restricted": "the app needs an unmasked /proc",
    "seLinuxOptions": "the SELinux label is a site policy",
    "sysctls": "the app needs these kernel settings",
    "windowsHostProcess": "the app runs as a Windows host process",
    "hostProbesAndHostLifecycle": "the probe or hook targets another host",
}

_BAD_CAPS_OK = frozenset({"NET_BIND_SERVICE"})
_NBS_NOT_NEEDED = ("never effective for a non-root user; ports below 1024 bind without it: containerd sets "
                   "net.ipv4.ip_unprivileged_port_start=0")
_SECCOMP_OK = ("RuntimeDefault", "Localhost")
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_ANNOTATION = "container.seccomp.security.alpha.kubernetes.io/"


@dataclass(slots=True)
class Change:
    """One summary line: what changed in the pod (``where == "pod"``) or one container."""

    where: str
    line: int
    what: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Human:
    """Something restricted denies that podsec leaves alone."""

    line: int
    field: str
    message: str


@dataclass(slots=True)
class WorkloadPlan:
    workload: Workload
    patch: MapPatch  # rooted at the document root
    changes: list[Change]
    humans: list[Human]
    notes: list[str]
    containers_writable_root: list[str]  # containers left with a writable root filesystem
    unknown_images: list[str]  # images whose USER podsec could not read (runAsUser = the default uid)

    @property
    def label(self) -> str:
        return self.workload.obj.label()


def _d(v: object) -> dict:
    return v if isinstance(v, dict) else {}


def _int(v: object) -> int | None:
    return v if type(v) is int else None


@dataclass(slots=True)
class _Container:
    key: str
    index: int
    c: dict
    sc: dict
    rc: ResolvedContainer | None
    puid: bool
    patch: MapPatch = field(default_factory=MapPatch)
    what: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.c.get("name") or "")

    def set_sc(self, key: str, value: Any, text: str) -> None:
        self.patch = merge(self.patch, MapPatch(set={"securityContext": MapPatch(set={key: value})}))
        self.what.append(text)


class _Planner:
    def __init__(self, wl: Workload, images: ImageLookup | None, uid: int, accounts: AccountLookup | None = None,
                 ) -> None:
        from podsec.policy.pss import evaluate

        self.wl = wl
        self.spec = wl.spec
        self.psc = _d(self.spec.get("securityContext"))
        self.images = images
        self.uid = uid
        self.accounts = accounts
        self.pod_patch = MapPatch()
        self.pod_what: list[str] = []
        self.humans: list[Human] = []
        self.notes: list[str] = []
        self.meta_patch = MapPatch()
        self.unknown_images: list[str] = []
        resolved = resolve_pod(wl.pod_metadata(), self.spec, images, kind=wl.kind)
        by_path = {rc.path: rc for rc in resolved.containers}
        self.containers: list[_Container] = []
        for key, _ in CONTAINER_KINDS:
            for i, c in enumerate(self.spec.get(key) or ()):
                if not isinstance(c, dict):
                    continue
                self.containers.append(_Container(key, i, c, _d(c.get("securityContext")),
                                                  by_path.get(("spec", key, i)), is_puid_container(c, images)))
        self.pss = evaluate(wl.metadata, self.spec, LEVEL, VERSION)
        self.windows = _d(self.spec.get("os")).get("name") == "windows"
        self.userns = self.spec.get("hostUsers") is False

    # -- helpers
    def line(self, path: tuple[str | int, ...]) -> int:
        return self.wl.line_of(path)

    def set_pod(self, key: str, value: Any, text: str) -> None:
        self.pod_patch = merge(self.pod_patch, MapPatch(set={"securityContext": MapPatch(set={key: value})},
                                                        before={"securityContext": ("initContainers", "containers",
                                                                                    "ephemeralContainers")}))
        self.pod_what.append(text)

    def human(self, path: tuple[str | int, ...], message: str) -> None:
        self.humans.append(Human(self.line(path), self.wl.field(path), message))

    # -- the plan
    def plan(self) -> None:
        self.report_human()
        for ct in self.containers:
            if ct.puid:
                self.human(("spec", ct.key, ct.index, "env"),
                           f'container "{ct.name}" sets PUID/PGID: its image starts as root and drops privileges '
                           "itself, so runAsNonRoot, allowPrivilegeEscalation: false and drop ALL would stop it; "
                           "use an image that runs as a non-root USER")
        if not self.userns:
            self.run_as_non_root()
            if not self.windows:
                self.run_as_user()
        if not self.windows:
            for ct in self.containers:
                if not ct.puid:
                    self.privilege_escalation(ct)
                    self.capabilities(ct)
            self.seccomp()
        self.apparmor()

    def report_human(self) -> None:
        for fail in self.pss.failures:
            if fail.id not in NEEDS_HUMAN:
                continue
            path = tuple(fail.fields[0]) if fail.fields else ("spec",)
            detail = f"{fail.reason} ({fail.detail})" if fail.detail else fail.reason
            self.human(path, f"{detail}: {NEEDS_HUMAN[fail.id]}")

    def run_as_non_root(self) -> None:
        pod_v = self.psc.get("runAsNonRoot")
        targets = [ct for ct in self.containers if not ct.puid and ct.sc.get("runAsNonRoot") is not True
                   and not (pod_v is True and ct.sc.get("runAsNonRoot") is None)]
        if not targets:
            return
        inherit_puid = [ct for ct in self.containers if ct.puid and ct.sc.get("runAsNonRoot") is None]
        if inherit_puid:
            for ct in targets:
                ct.set_sc("runAsNonRoot", True, "runAsNonRoot: true")
            return
        if pod_v is not True:
            self.set_pod("runAsNonRoot", True, "runAsNonRoot: true" + (" (was false)" if pod_v is False else ""))
        for ct in targets:
            if ct.sc.get("runAsNonRoot") is False:
                ct.set_sc("runAsNonRoot", True, "runAsNonRoot: true (was false)")

    def _image(self, ct: _Container) -> Any:
        ref = ct.c.get("image")
        return self.images(ref) if self.images and isinstance(ref, str) and ref else None

    def _uid_choice(self, ct: _Container) -> tuple[int, str]:
        """The uid to run as when the current one is root or cannot be verified, and why."""
        image = self._image(ct)
        ref = ct.c.get("image")
        if image is None:
            if isinstance(ref, str) and ref and ref not in self.unknown_images:
                self.unknown_images.append(ref)
            return self.uid, "image not in podsec's store"
        uid, name = image_user(image.user)
        if uid is not None and uid != 0:
            return uid, f"the image's USER {uid}"
        if name:
            entry = image.user_by_name(name)
            if entry is not None and entry.uid != 0:
                return entry.uid, f"image USER {name} is uid {entry.uid} in its /etc/passwd"
            if entry is None:
                return self.uid, f"image USER {name} is not in its /etc/passwd"
        own = self._own_account(ct, image)
        if own is not None:
            return own.entry.uid, (f"image {ref} runs as root; {own.entry.name} (uid {own.entry.uid}) is the app's "
                                   f"own account, which its files belong to: {own.why}")
        return self.uid, f"image {ref} runs as root"

    def _own_account(self, ct: _Container, image: Any) -> Any:
        """The image's account for the program the container runs (:mod:`podsec.fix.account`), if any."""
        if self.accounts is None or not isinstance(ct.c.get("image"), str):
            return None
        command = ct.c.get("command") if isinstance(ct.c.get("command"), list) else list(image.entrypoint or ())
        if not command:
            command = ct.c.get("args") if isinstance(ct.c.get("args"), list) else list(image.cmd or ())
        return self.accounts(ct.c["image"], [str(x) for x in command or ()])

    def _needs_uid(self, ct: _Container, covered_before: bool) -> tuple[int, str] | None:
        """None when the container's user already passes the kubelet's runAsNonRoot check."""
        run_as = ct.rc.identity.run_as_user if ct.rc is not None else None  # resolve's container-else-pod merge
        if run_as is not None:
            return self._uid_choice(ct) if run_as == 0 else None
        image = self._image(ct)
        if image is None:
            if covered_before:
                self.notes.append(f'container "{ct.name}": runAsNonRoot was already set without runAsUser; it '
                                  f"starts only if image {ct.c.get('image')} has a numeric non-zero USER "
                                  "(load it with `podsec image pull` so podsec can check)")
                return None
            return self._uid_choice(ct)
        uid, _ = image_user(image.user)
        if uid is not None and uid != 0:
            return None
        return self._uid_choice(ct)

    def run_as_user(self) -> None:
        pod_v = self.psc.get("runAsNonRoot")
        needs: dict[int, tuple[int, str]] = {}
        for n, ct in enumerate(self.containers):
            if ct.puid:
                continue
            covered = ct.sc.get("runAsNonRoot") is True or (pod_v is True and ct.sc.get("runAsNonRoot") is None)
            need = self._needs_uid(ct, covered)
            if need is not None:
                needs[n] = need
        if not needs:
            return
        inherit = [n for n, ct in enumerate(self.containers) if _int(ct.sc.get("runAsUser")) is None]
        pod_user = _int(self.psc.get("runAsUser"))
        pod_uid: int | None = None
        if pod_user == 0:
            if any(self.containers[n].puid for n in inherit):
                pass  # a PUID container relies on it: left for a human (reported above)
            else:
                pod_uid = Counter(needs[n][0] for n in inherit).most_common(1)[0][0]
        elif pod_user is None and inherit and all(n in needs for n in inherit):
            uids = {needs[n][0] for n in inherit}
            if len(uids) == 1:
                pod_uid = uids.pop()
        if pod_uid is not None:
            why = sorted({needs[n][1] for n in inherit if needs[n][0] == pod_uid})
            was = " (was 0)" if pod_user == 0 else ""
            self.set_pod("runAsUser", pod_uid, f"runAsUser: {pod_uid}{was} ({'; '.join(why)})")
        for n, (uid, why) in needs.items():
            ct = self.containers[n]
            if n in inherit and pod_uid == uid:
                continue
            was = " (was 0)" if _int(ct.sc.get("runAsUser")) == 0 else ""
            ct.set_sc("runAsUser", uid, f"runAsUser: {uid}{was} ({why})")

    def privilege_escalation(self, ct: _Container) -> None:
        if ct.sc.get("allowPrivilegeEscalation") is False:
            return
        if ct.sc.get("privileged") is True:
            # false is invalid together with privileged (API validation): part of the privileged finding
            return
        was = " (was true)" if ct.sc.get("allowPrivilegeEscalation") is True else ""
        ct.set_sc("allowPrivilegeEscalation", False, f"allowPrivilegeEscalation: false{was}")

    def capabilities(self, ct: _Container) -> None:
        caps = ct.sc.get("capabilities")
        caps = caps if isinstance(caps, dict) else None
        cpatch = MapPatch()
        what: list[str] = []
        add = caps.get("add") if caps else None
        add = add if isinstance(add, list) else []
        removed: list[str] = []
        ineffective: list[str] = []
        seq = SeqPatch()
        for j, a in enumerate(add):
            if a in _BAD_CAPS_OK:
                continue
            seq.delete.append(j)
            nbs = isinstance(a, str) and a.upper().removeprefix("CAP_") == "NET_BIND_SERVICE"
            (ineffective if nbs else removed).append(str(a))
        if removed:
            what.append(f"removed capabilities.add {', '.join(removed)} (restricted allows only NET_BIND_SERVICE)")
        if ineffective:
            what.append(f"removed capabilities.add {', '.join(ineffective)} ({_NBS_NOT_NEEDED})")
        drop = caps.get("drop") if caps else None
        if isinstance(drop, list):
            if "ALL" not in drop:
                j = next((j for j, d in enumerate(drop) if isinstance(d, str) and d.upper() == "ALL"), None)
                cpatch.set["drop"] = SeqPatch(items={j: "ALL"}) if j is not None else SeqPatch(append=["ALL"])
                what.insert(0, "capabilities.drop: ALL")
        else:
            cpatch.set["drop"] = ["ALL"]
            what.insert(0, "capabilities.drop: [ALL]")
        if add and len(seq.delete) == len(add):
            cpatch.delete.append("add")
        elif seq:
            cpatch.set["add"] = seq
        if cpatch:
            if caps is None:
                ct.patch = merge(ct.patch, MapPatch(set={"securityContext": MapPatch(
                    set={"capabilities": {k: v for k, v in cpatch.set.items()}})}))
            else:
                ct.patch = merge(ct.patch, MapPatch(set={"securityContext": MapPatch(set={"capabilities": cpatch})}))
            ct.what += what

    def seccomp(self) -> None:
        prof = self.psc.get("seccompProfile")
        pod_ok = isinstance(prof, dict) and prof.get("type") in _SECCOMP_OK
        if isinstance(prof, dict) and not pod_ok:
            self.set_pod("seccompProfile", MapPatch(set={"type": "RuntimeDefault"}),
                         f"seccompProfile: RuntimeDefault (was {prof.get('type')})")
            self.seccomp_annotation(_SECCOMP_POD_ANNOTATION)
            pod_ok = True
        uncovered = False
        for ct in self.containers:
            cprof = ct.sc.get("seccompProfile")
            if isinstance(cprof, dict):
                if cprof.get("type") not in _SECCOMP_OK:
                    ct.set_sc("seccompProfile", MapPatch(set={"type": "RuntimeDefault"}),
                              f"seccompProfile: RuntimeDefault (was {cprof.get('type')})")
                    self.seccomp_annotation(_SECCOMP_CONTAINER_ANNOTATION + ct.name)
            elif cprof is None:
                uncovered = True
        if uncovered and not pod_ok and prof is None:
            self.set_pod("seccompProfile", {"type": "RuntimeDefault"}, "seccompProfile: RuntimeDefault")
            self.seccomp_annotation(_SECCOMP_POD_ANNOTATION)

    def seccomp_annotation(self, key: str) -> None:
        """The API server rejects a seccomp field that contradicts the legacy annotation: make it agree."""
        ann = _d(self.wl.metadata.get("annotations"))
        value = ann.get(key)
        if key in ann and value not in ("runtime/default", "docker/default"):
            self.set_annotation(key, "runtime/default", f"annotation {key}: runtime/default (was {value})")

    def set_annotation(self, key: str, value: str, text: str) -> None:
        self.meta_patch = merge(self.meta_patch, MapPatch(set={"annotations": MapPatch(set={key: value})}))
        self.pod_what.append(text)

    def apparmor(self) -> None:
        prof = self.psc.get("appArmorProfile")
        if isinstance(prof, dict) and prof.get("type") not in _SECCOMP_OK:
            self.set_pod("appArmorProfile", MapPatch(set={"type": "RuntimeDefault"}),
                         f"appArmorProfile: RuntimeDefault (was {prof.get('type')})")
        for ct in self.containers:
            cprof = ct.sc.get("appArmorProfile")
            if isinstance(cprof, dict) and cprof.get("type") not in _SECCOMP_OK:
                ct.set_sc("appArmorProfile", MapPatch(set={"type": "RuntimeDefault"}),
                          f"appArmorProfile: RuntimeDefault (was {cprof.get('type')})")
        ann = _d(self.wl.metadata.get("annotations"))
        for k, v in ann.items():
            if isinstance(k, str) and k.startswith(_APPARMOR_ANNOTATION) and isinstance(v, str) and v and \
                    v != "runtime/default" and not v.startswith("localhost/"):
                self.set_annotation(k, "runtime/default", f"annotation {k}: runtime/default (was {v})")

    # -- assembling
    def result(self) -> WorkloadPlan:
        wl = self.wl
        spec_patch = self.pod_patch
        changes: list[Change] = []
        if self.pod_what:
            changes.append(Change("pod", self.line(("spec", "securityContext")), self.pod_what))
        by_key: dict[str, SeqPatch] = {}
        writable: list[str] = []
        for ct in self.containers:
            if ct.patch:
                _order(ct.patch.set.get("securityContext"))
                ct.what.sort(key=_what_rank)
                by_key.setdefault(ct.key, SeqPatch()).items[ct.index] = ct.patch
                changes.append(Change(f'container "{ct.name}"', self.line(("spec", ct.key, ct.index)), ct.what))
            if ct.sc.get("readOnlyRootFilesystem") is not True and not self.windows:
                writable.append(ct.name)
        for key, seq in by_key.items():
            spec_patch = merge(spec_patch, MapPatch(set={key: seq}))
        tmpl = MapPatch()
        if spec_patch:
            tmpl.set["spec"] = spec_patch
        if self.meta_patch:
            tmpl.set["metadata"] = self.meta_patch
        root = patch_at((*wl.obj.root, *wl.template), tmpl) if tmpl else MapPatch()
        return WorkloadPlan(wl, root if isinstance(root, MapPatch) else MapPatch(), changes, self.humans,
                            self.notes, writable, self.unknown_images)


_SC_ORDER = ("allowPrivilegeEscalation", "readOnlyRootFilesystem", "runAsNonRoot", "runAsUser", "capabilities",
             "seccompProfile", "appArmorProfile")


def _order(patch: object) -> None:
    """New securityContext keys in the order people write them, not the order the plan found them."""
    if isinstance(patch, MapPatch):
        rank = {k: i for i, k in enumerate(_SC_ORDER)}
        patch.set = dict(sorted(patch.set.items(), key=lambda kv: rank.get(kv[0], len(rank))))


def _what_rank(text: str) -> int:
    """Summary items in the same order as the keys they wrote."""
    head = text.split(" (")[0]
    return next((i for i, k in enumerate(_SC_ORDER) if k in head), len(_SC_ORDER))


def is_puid_container(container: dict, images: ImageLookup | None) -> bool:
    """A container that may be a PUID/PGID (s6-overlay) one, decided as check, explain and run decide it
    (:func:`podsec.puid_spec.candidate`: PUID/PGID in its env or its image's, ``/init``, a linuxserver image);
    fix leaves its user to the image's own privilege drop."""
    from podsec.puid_spec import candidate

    ref = str(container.get("image") or "")
    return candidate(container, ref, images(ref) if images is not None and ref else None)


def plan_workload(wl: Workload, images: ImageLookup | None = None, *, uid: int = DEFAULT_UID,
                  accounts: AccountLookup | None = None) -> WorkloadPlan:
    """The changes that bring one workload toward restricted, with its summary and what needs a human.
    ``accounts`` finds an image's own account for a program (a root image then runs as that, not ``uid``)."""
    p = _Planner(wl, images, uid, accounts)
    p.plan()
    return p.result()


def field_of(wl: Workload, path: tuple[str | int, ...]) -> str:
    return render_path(wl.template + path)
