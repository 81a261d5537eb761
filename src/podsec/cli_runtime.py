"""The runtime half of the command line: images, and pods run with kubelet/containerd semantics.

``register(cli)`` adds ``image``, ``run``, ``apply``, ``get``, ``describe``, ``exec``, ``logs``,
``delete`` and ``gc`` to the main group. Every import of the runtime is inside a command, so
``podsec run`` loads only what it uses.

Exit codes: 0 success; 2 bad input (unreadable file, a pod the API server would reject, a missing
image); 1 a failed pod (``run``: a container that never ran, a sandbox that did not start) or
a failed operation; ``run`` otherwise exits with the highest exit code of the app containers, 124 after
``--timeout`` and 130 after Ctrl-C (the pod is deleted).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

import click

from podsec.api.strict import click_option as _validate_option
from podsec.duration import duration_param
from podsec.errors import InputError, NotFound, RuntimeFailure, require_root
from podsec.features import click_option as _feature_gates_option


def _root(ctx: click.Context) -> str:
    return str(ctx.obj["root"])


def _state(ctx: click.Context) -> str:
    return str(ctx.obj["state"])


def _store(ctx: click.Context) -> Any:
    from pathlib import Path

    from podsec.image.store import ImageStore

    return ImageStore(Path(_root(ctx)))


def _paths(ctx: click.Context, namespace: str, name: str) -> Any:
    from podsec.runtime.run import pod_paths

    return pod_paths(_state(ctx), namespace, name)


def _record(ctx: click.Context, namespace: str, name: str) -> tuple[Any, Any]:
    from podsec.runtime import state

    paths = _paths(ctx, namespace, name)
    record = state.load(paths)
    if record is None:
        raise NotFound(f'pods "{name}" not found' + ("" if namespace == "default" else f' in namespace "{namespace}"'))
    return paths, record


runtime_option = click.option("--runtime", type=click.Choice(("runc", "crun")), default="runc", show_default=True,
                              help="OCI runtime to run the pod with.")
namespace_option = click.option("-n", "--namespace", default=None,
                                help="Namespace (default: the manifest's, else default).")


def register(cli: click.Group) -> None:
    """Add the runtime commands to podsec's main group."""
    cli.add_command(image)
    for cmd in (run, apply, get, describe, exec_, logs, delete, gc):
        cli.add_command(cmd)


# -- images ----------------------------------------------------------------------------------------


@click.group()
def image() -> None:
    """Manage the local image store (--root)."""


@image.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.pass_context
def image_load(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Load a docker-archive, an oci-archive or an OCI layout directory."""
    require_root("image load", "it unpacks image layers with their owners and modes")
    store = _store(ctx)
    for p in paths:
        from pathlib import Path

        for ref in store.load(Path(p)):
            click.echo(f"Loaded image: {ref}")


@image.command("pull")
@click.argument("source")
@click.option("--tls-verify/--no-tls-verify", default=None, help="Verify registry TLS (default: not for localhost).")
@click.pass_context
def image_pull(ctx: click.Context, source: str, tls_verify: bool | None) -> None:
    """Copy an image in: docker://REF, containers-storage:REF, docker-daemon:REF, oci:/oci-archive:/docker-archive:."""
    require_root("image pull", "it unpacks image layers with their owners and modes")
    store = _store(ctx)
    for ref in store.pull(source, insecure=None if tls_verify is None else not tls_verify):
        click.echo(f"Pulled image: {ref}")


def _human_size(n: int) -> str:
    """docker/crictl ``units.HumanSize``: decimal units, 3 significant digits."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if size < 1000:
            return f"{size:.4g}{unit}"
        size /= 1000
    return f"{size:.4g}PB"


@image.command("ls")
@click.pass_context
def image_ls(ctx: click.Context) -> None:
    """List images (crictl's columns)."""
    from podsec.runtime.render import table

    rows = [["IMAGE", "TAG", "IMAGE ID", "SIZE"]]
    for rec in sorted(_store(ctx).list(), key=lambda r: r.ref):
        name, tag = rec.ref, "<none>"
        if "@" in name:
            name, tag = name.split("@", 1)[0], "<none>"
        elif ":" in name.rsplit("/", 1)[-1]:
            name, tag = name.rsplit(":", 1)
        rows.append([name, tag, rec.config_digest.split(":", 1)[-1][:13], _human_size(rec.size)])
    click.echo(table(rows), nl=False)


@image.command("rm")
@click.argument("refs", nargs=-1, required=True)
@click.pass_context
def image_rm(ctx: click.Context, refs: tuple[str, ...]) -> None:
    """Remove image names (and what nothing else references)."""
    require_root("image rm", "it removes layers unpacked with their owners")
    store = _store(ctx)
    for ref in refs:
        rec = store.remove(ref)
        click.echo(f"Deleted: {rec.ref}")


# -- run / apply -----------------------------------------------------------------------------------


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True,
              help="Pod manifest (with its ConfigMaps/Secrets).")
@click.option("--rm", "remove", is_flag=True, help="Delete the pod when it has finished.")
@runtime_option
@click.option("--volume-dir", multiple=True, metavar="CLAIM=DIR", help="Back a persistentVolumeClaim with a directory.")
@click.option("--timeout", default=None, callback=duration_param, metavar="DURATION",
              help="Stop the pod after this long (30s, 2m, 1m30s, plain seconds; exit 124).")
@namespace_option
@_validate_option()
@_feature_gates_option()
@click.pass_context
def run(ctx: click.Context, files: tuple[str, ...], remove: bool, runtime: str, volume_dir: tuple[str, ...],
        timeout: float | None, namespace: str | None, validate: str, feature_gates: Any) -> None:
    """Run a pod in the foreground and stream its output; exit with the app containers' exit code.

    With one container its output is copied as is; with several each line is prefixed ``[name] ``.
    Ctrl-C stops and deletes the pod.
    """
    require_root("run", "it starts containers with runc/crun, mounts and cgroups")
    from podsec.runtime import run as runner
    from podsec.volumes.claims import volume_dir_strings

    code = runner.run(files, root=_root(ctx), state_dir=_state(ctx), runtime=runtime, gates=feature_gates,
                      dirs=volume_dir_strings(volume_dir), remove=remove, timeout=timeout, namespace=namespace,
                      field_validation=validate, err=lambda line: click.echo(line, err=True))
    # Everything is cleaned up and written: skip the interpreter's teardown (~20ms of module cleanup).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, help="Pod manifests.")
@runtime_option
@click.option("--volume-dir", multiple=True, metavar="CLAIM=DIR", help="Back a persistentVolumeClaim with a directory.")
@namespace_option
@_validate_option()
@_feature_gates_option()
@click.pass_context
def apply(ctx: click.Context, files: tuple[str, ...], runtime: str, volume_dir: tuple[str, ...],
          namespace: str | None, validate: str, feature_gates: Any) -> None:
    """Start pods detached: a supervisor per pod runs (and restarts) its containers."""
    require_root("apply", "it starts containers with runc/crun, mounts and cgroups")
    from podsec.runtime import run as runner
    from podsec.volumes.claims import volume_dir_strings

    runner.apply(files, root=_root(ctx), state_dir=_state(ctx), runtime=runtime, gates=feature_gates,
                 dirs=volume_dir_strings(volume_dir), namespace=namespace, field_validation=validate,
                 out=click.echo, err=lambda line: click.echo(line, err=True))


# -- get / describe ----------------------------------------------------------------------------------


def _records(ctx: click.Context, namespace: str | None, all_namespaces: bool, names: tuple[str, ...]) -> list[Any]:
    from podsec.runtime import state
    from podsec.runtime.state import PodPaths

    out = []
    for d in state.list_pod_dirs(_state(ctx)):
        rec = state.load(PodPaths.from_dir(d))
        if rec is None:
            continue
        if not all_namespaces and rec.namespace != (namespace or "default"):
            continue
        if names and rec.name not in names:
            continue
        out.append(rec)
    return out


def _pod_names(args: tuple[str, ...]) -> tuple[str, ...]:
    """kubectl spellings: ``get pods``, ``get pod x``, ``get po/x``, ``describe pod x``, ``delete x``."""
    out: list[str] = []
    for i, a in enumerate(args):
        if i == 0 and a in ("pod", "pods", "po"):
            continue
        for prefix in ("pod/", "pods/", "po/"):
            if a.startswith(prefix):
                a = a[len(prefix):]
        out.append(a)
    return tuple(out)


@click.command()
@click.argument("what", nargs=-1)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True)
@click.option("-o", "--output", type=click.Choice(("wide", "json", "yaml", "name")), default=None)
@click.pass_context
def get(ctx: click.Context, what: tuple[str, ...], namespace: str | None, all_namespaces: bool,
        output: str | None) -> None:
    """List pods: NAME READY STATUS RESTARTS AGE, with kubectl's status words."""
    from podsec.runtime.render import get_rows, pod_object

    if what and what[0] not in ("pod", "pods", "po") and not what[0].startswith(("pod/", "pods/", "po/")):
        raise InputError(f'the server doesn\'t have a resource type "{what[0]}" (podsec knows only pods)')
    names = _pod_names(what)
    records = _records(ctx, namespace, all_namespaces, names)
    missing = [n for n in names if n not in {r.name for r in records}]
    if output in ("json", "yaml"):
        objs = [pod_object(r) for r in records]
        doc: Any = objs[0] if len(names) == 1 and len(objs) == 1 else {"apiVersion": "v1", "kind": "List",
                                                                       "items": objs}
        if output == "json":
            click.echo(json.dumps(doc, indent=4))
        else:
            import yaml

            click.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)
    elif output == "name":
        for r in records:
            click.echo(f"pod/{r.name}")
    elif records:
        click.echo(get_rows(records, wide=output == "wide", all_namespaces=all_namespaces), nl=False)
    elif not names:
        where = "" if all_namespaces else f" in {namespace or 'default'} namespace"
        click.echo(f"No resources found{where}.", err=True)
    if missing:
        raise NotFound(f'pods "{missing[0]}" not found')


@click.command()
@click.argument("what", nargs=-1, required=True)
@namespace_option
@click.pass_context
def describe(ctx: click.Context, what: tuple[str, ...], namespace: str | None) -> None:
    """Show a pod's containers, their states, reasons, messages, and the pod's events."""
    from podsec.runtime.render import describe as render

    names = _pod_names(what)
    if not names:
        raise InputError("give a pod name")
    for i, name in enumerate(names):
        _, record = _record(ctx, namespace or "default", name)
        if i:
            click.echo()
        click.echo(render(record), nl=False)


# -- exec / logs -----------------------------------------------------------------------------------


def _container(record: Any, name: str | None) -> Any:
    if name is None:
        default = (record.metadata.get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        apps = record.app_containers
        return next((c for c in apps if c.name == default), apps[0] if apps else record.containers[0])
    for c in record.containers:
        if c.name == name:
            return c
    raise NotFound(f"container {name} is not valid for pod {record.name}")


@click.command("exec")
@click.argument("pod")
@click.option("-c", "--container", default=None)
@click.option("-i", "--stdin", "interactive", is_flag=True, help="Pass stdin to the command.")
@click.option("-t", "--tty", is_flag=True, help="Allocate a terminal.")
@namespace_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def exec_(ctx: click.Context, pod: str, container: str | None, interactive: bool, tty: bool,
          namespace: str | None, command: tuple[str, ...]) -> None:
    """Run a command in a running container (its user, groups, capabilities and env); exits with its code."""
    require_root("exec", "it enters the container's namespaces with runc/crun")
    from podsec.runtime.execute import run_exec, want_tty
    from podsec.runtime.ociruntime import OCIRuntime

    paths, record = _record(ctx, namespace or "default", _pod_names((pod,))[0])
    c = _container(record, container)
    if c.state != "running" or record.released:
        phase = "Succeeded" if all(x.terminated_ok for x in record.app_containers) else "Failed"
        if not record.released:
            raise RuntimeFailure(f"container {c.name} is not running (state: {c.state}"
                                 f"{', ' + c.reason if c.reason else ''})")
        raise RuntimeFailure(f"cannot exec into a container in a completed pod; current phase is {phase}")
    bundle = paths.container_dir(c.name) / "bundle"
    tty, warning = want_tty(tty, interactive, os.isatty(0))
    if warning:
        click.echo(warning, err=True)
    code, error = run_exec(OCIRuntime(record.runtime), c.runtime_id, bundle, list(command), tty=tty,
                           interactive=interactive)
    if error:
        click.echo(f"podsec: {error}", err=True)
    sys.exit(code)


@click.command()
@click.argument("pod")
@click.option("-c", "--container", default=None)
@click.option("-f", "--follow", is_flag=True, help="Keep printing while the container runs.")
@namespace_option
@click.pass_context
def logs(ctx: click.Context, pod: str, container: str | None, follow: bool, namespace: str | None) -> None:
    """Print a container's output (stdout and stderr in the order written; restarts append)."""
    from podsec.runtime import state
    from podsec.runtime.logs import Inotify, LogStreamer, wait_readable

    paths, record = _record(ctx, namespace or "default", _pod_names((pod,))[0])
    c = _container(record, container)
    if c.state == "waiting" and c.last_state is None and not paths.log(c.name).exists():
        raise RuntimeFailure(f'container "{c.name}" in pod "{record.name}" is waiting to start: '
                             f"{c.reason or 'ContainerCreating'}")
    streamer = LogStreamer({c.name: paths.log(c.name)}, sys.stdout.buffer, prefix=False)
    streamer.pump()
    if not follow:
        return
    watch = Inotify([paths.log(c.name).parent])
    try:
        while True:
            rec = state.load(paths)
            if rec is None or rec.released or not state.owner_alive(rec):
                break
            cur = rec.container(c.name)
            if cur.state == "terminated" or (cur.state == "waiting" and cur.last_state is None and cur.reason
                                                not in ("ContainerCreating", "PodInitializing")):
                break
            wait_readable([watch.fd], 0.2 if watch.fd >= 0 else 0.05)
            watch.drain()
            streamer.pump()
    finally:
        watch.close()
        streamer.finish()


# -- delete / gc -----------------------------------------------------------------------------------


def _delete_one(ctx: click.Context, paths: Any, record: Any, grace: float | None) -> None:
    from podsec.runtime import state
    from podsec.runtime.cleanup import cleanup_pod
    from podsec.runtime.records import grace_period

    if record is not None and not record.released and state.owner_alive(record):
        if grace is not None:
            state.write_atomic(paths.delete_request, json.dumps({"grace": grace}).encode(), sync=False)
        wait = grace_period(record, paths) + 15
        os.kill(record.owner_pid, signal.SIGTERM)
        end = time.monotonic() + wait
        delay = 0.002
        while state.owner_alive(record) and time.monotonic() < end:
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        if state.owner_alive(record):
            os.kill(record.owner_pid, signal.SIGKILL)
    report = cleanup_pod(paths, record)
    if report.problems:
        raise RuntimeFailure("; ".join(report.problems))


@click.command()
@click.argument("what", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True, help="Delete the pods in these manifests.")
@click.option("--all", "all_pods", is_flag=True, help="Delete every pod in the namespace.")
@click.option("--grace-period", type=int, default=-1, help="Seconds before SIGKILL (default: the pod's).")
@click.option("--now", is_flag=True, help="Same as --grace-period=1.")
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True)
@click.pass_context
def delete(ctx: click.Context, what: tuple[str, ...], files: tuple[str, ...], all_pods: bool, grace_period: int,
           now: bool, namespace: str | None, all_namespaces: bool) -> None:
    """Stop pods gracefully (SIGTERM, SIGKILL after the grace period) and remove everything they used."""
    require_root("delete", "it stops containers and removes their mounts and cgroups")
    from podsec.runtime import state

    targets: list[tuple[str, str]] = []
    if files:
        from podsec.api.controllers import RESOURCES
        from podsec.runtime.admission import load_pods

        for p in load_pods(files, namespace, validate=False):
            if p.controller is None:
                targets.append((p.namespace, p.name))
                continue
            ctl = p.controller
            found = state.workload_pods(_state(ctx), p.namespace, ctl.workload)
            if not found:
                raise NotFound(f'{RESOURCES[ctl.kind][1]} "{ctl.name}" not found')
            for paths, record in found:
                _delete_one(ctx, paths, record, _grace(grace_period, now))
                click.echo(f'pod "{record.name}" deleted')
            click.echo(f'{RESOURCES[ctl.kind][0]} "{ctl.name}" deleted')
    if all_pods:
        targets += [(r.namespace, r.name) for r in _records(ctx, namespace, all_namespaces, ())]
        for d in state.list_pod_dirs(_state(ctx)):  # half-created pods have no readable record
            ns, _, name = d.name.partition("_")
            if (all_namespaces or ns == (namespace or "default")) and (ns, name) not in targets:
                targets.append((ns, name))
    targets += [(namespace or "default", n) for n in _pod_names(what)]
    if not targets:
        if all_pods:
            click.echo("No resources found", err=True)
            return
        if files:
            return
        raise InputError("give pod names, -f FILE or --all")
    grace = _grace(grace_period, now)
    missing: list[str] = []
    for ns, name in targets:
        paths = _paths(ctx, ns, name)
        if not paths.dir.exists():
            missing.append(name)
            continue
        _delete_one(ctx, paths, state.load(paths), grace)
        click.echo(f'pod "{name}" deleted')
    if missing:
        raise NotFound(f'pods "{missing[0]}" not found')


def _grace(grace_period: int, now: bool) -> float | None:
    return 1.0 if now else (float(grace_period) if grace_period >= 0 else None)


@click.command()
@click.pass_context
def gc(ctx: click.Context) -> None:
    """Remove what killed podsec processes left: containers, mounts, cgroups, pod directories."""
    require_root("gc", "it removes containers, mounts and cgroups")
    from pathlib import Path

    from podsec.runtime.cleanup import collect

    report = collect(Path(_state(ctx)))
    for cid in report.containers:
        click.echo(f"removed container {cid}")
    for cg in report.cgroups:
        click.echo(f"removed cgroup {cg}")
    if report.mounts:
        click.echo(f"unmounted {report.mounts} mount(s)")
    for d in report.dirs:
        click.echo(f"removed {d}")
    for p in report.problems:
        click.echo(f"podsec: gc: {p}", err=True)
    if report.problems:
        sys.exit(1)
