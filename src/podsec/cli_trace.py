"""``podsec trace``: where does an app write? ``register(cli)`` adds the command; the library is imported
inside it.

Exit codes: 0 traced; 2 bad input (files, duration, a pod the API server would reject, a missing image);
1 a pod that could not run (sandbox or volumes failed, a container never started); 130 after Ctrl-C
(the report of what ran so far is still printed, and everything is cleaned up).
"""

from __future__ import annotations

import os
import sys

import click

from podsec.api.strict import click_option as _validate_option
from podsec.duration import duration_param


def register(cli: click.Group) -> None:
    """Add ``trace`` to podsec's main group."""
    cli.add_command(trace)


@click.command()
@click.option("-f", "--filename", "files", multiple=True, required=True, metavar="FILE|DIR|-",
              help="Manifests: any workload kind (its pod template runs), with its ConfigMaps/Secrets.")
@click.option("--duration", default="30s", show_default=True, callback=duration_param, metavar="DURATION",
              help="How long to let each pod work (30s, 2m, 1m30s, plain seconds); it ends earlier when "
                   "every container has exited.")
@click.option("-o", "--output", type=click.Choice(("text", "table", "json", "yaml")), default="text",
              show_default=True, help="yaml: the manifests patched with readOnlyRootFilesystem and the mounts.")
@click.option("--runtime", type=click.Choice(("runc", "crun")), default="runc", show_default=True,
              help="OCI runtime to run the pods with.")
@click.option("--volume-dir", multiple=True, metavar="CLAIM=DIR", help="Back a persistentVolumeClaim with a directory.")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the manifest's, else default).")
@click.option("--logs", is_flag=True, help="Copy the containers' output to stderr while they run.")
@click.option("--grace-period", "grace", type=click.IntRange(min=0), default=5, show_default=True, metavar="S",
              help="When the trace stops a container: seconds from SIGTERM to SIGKILL (the pod's own if shorter).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=4, show_default=True,
              help="Pods traced at the same time (several workloads in the files).")
@click.option("--max-files", type=click.IntRange(min=0), default=40, show_default=True,
              help="Text output: list at most this many paths per container, then summarise.")
@click.option("--no-verify", is_flag=True,
              help="Do not run each pod again under the proposed mounts (faster; the proposal is then unchecked).")
@_validate_option()
@click.pass_context
def trace(ctx: click.Context, files: tuple[str, ...], duration: float, output: str, runtime: str,
          volume_dir: tuple[str, ...], namespace: str | None, logs: bool, grace: int, jobs: int,
          max_files: int, no_verify: bool, validate: str) -> None:
    """Run each workload with a writable root filesystem and report every path it writes.

    Each container's created, changed and deleted paths are grouped into the fewest directories to
    mount as emptyDir, so the workload can run with readOnlyRootFilesystem: true. A mount may hide empty
    image entries the app recreates; image content that matters is copied in by an init container of the
    same image (when it has cp); anything else is reported as a problem. The pod then runs again under the
    mounts for as long, and they are kept only if it runs as well and writes nothing more outside them.
    Writes inside already-mounted volumes are listed apart. Several workloads are traced at the same time.
    Exit 0 only when every container can run read-only that way; 1 otherwise.
    """
    from podsec.errors import require_root
    from podsec.trace.runner import TraceOptions, read_inputs, trace_texts
    from podsec.volumes.claims import volume_dir_strings

    require_root("trace", "it runs the workloads with runc/crun, mounts and cgroups")

    inputs = read_inputs(files)
    opts = TraceOptions(duration=duration, root=str(ctx.obj["root"]), state=str(ctx.obj["state"]), runtime=runtime,
                        volume_dirs=volume_dir_strings(volume_dir), namespace=namespace,
                        logs=sys.stderr.buffer if logs else None, jobs=jobs, grace=grace, verify=not no_verify,
                        validate=validate)
    pods = trace_texts(inputs, opts)
    if output == "json":
        import json

        from podsec.trace.report import traces_dict

        click.echo(json.dumps(traces_dict(pods), indent=2))
    elif output == "yaml":
        _print_patched(inputs, pods)
    else:
        from podsec.trace.report import render_text

        click.echo(render_text(pods, max_files), nl=False)
    interrupted = any(p.interrupted for p in pods)
    for p in pods:
        if p.error:
            click.echo(f"podsec: {p.kind}/{p.name}: the pod could not run: {p.error}", err=True)
    if interrupted:
        click.echo("podsec: interrupted: the report covers what ran until then", err=True)
    # Everything is cleaned up and written: skip the interpreter's teardown, as ``run`` does.
    sys.stdout.flush()
    sys.stderr.flush()
    ok = all(p.ok and all(c.fixable for c in p.containers) for p in pods)
    os._exit(130 if interrupted else 0 if ok else 1)


def _print_patched(inputs: list[tuple[str, str, str]], pods: list) -> None:
    """Every input file, with each traced container made read-only and given its emptyDir mounts."""
    from podsec.trace.report import left_alone, patched_texts

    for line in left_alone(pods):
        click.echo(f"podsec: {line}", err=True)
    for i, patched in enumerate(patched_texts(inputs, pods)):
        if i:
            click.echo("---")
        click.echo(patched, nl=not patched.endswith("\n"))
