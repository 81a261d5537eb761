"""The ``podsec`` command line: parse arguments, call the library, render. Nothing else lives here.

Imports are lazy so ``podsec check`` starts fast; every PodsecError becomes one line and exit 2.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import click

from podsec import __version__
from podsec.api.strict import click_option as _validate_option
from podsec.errors import PodsecError
from podsec.features import click_option as _feature_gates_option

NO_WORKLOAD = ("no workload (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, ReplicationController, "
               "PodTemplate) in the input")
DEFAULT_ROOT = "/var/lib/podsec"
DEFAULT_STATE = "/run/podsec"
FORMATS_CHECK = ("table", "json", "yaml", "sarif", "junit")
SEVERITY_CHOICES = ("critical", "high", "medium", "low", "info")


class PodsecGroup(click.Group):
    """Turns podsec errors into one line and an exit code instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PodsecError as exc:
            click.echo(f"podsec: {exc.render()}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("podsec: interrupted", err=True)
            sys.exit(130)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, SystemExit):
            raise
        except Exception as exc:
            if os.environ.get("PODSEC_DEBUG"):
                raise
            click.echo(f"podsec: internal error: {type(exc).__name__}: {exc} (set PODSEC_DEBUG=1 for details)",
                       err=True)
            sys.exit(3)


@click.group(cls=PodsecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="podsec")
@click.option("--root", default=DEFAULT_ROOT, show_default=True, envvar="PODSEC_ROOT",
              help="Image store directory.")
@click.option("--state", default=DEFAULT_STATE, show_default=True, envvar="PODSEC_STATE",
              help="Directory for running pods' state.")
@click.pass_context
def cli(ctx: click.Context, root: str, state: str) -> None:
    """Make Kubernetes securityContext real on one machine: check, explain and run pods."""
    ctx.obj = {"root": root, "state": state}


def image_lookup(root: str) -> Callable[[str], Any] | None:
    """Image info from the local store, when there is one, so resolve can use USER and /etc/passwd."""
    if not os.path.exists(os.path.join(root, "oci", "index.json")):
        return None
    from podsec.image.store import ImageStore

    store = ImageStore(__import__("pathlib").Path(root))
    cache: dict[str, Any] = {}

    def lookup(ref: str) -> Any:
        if ref not in cache:
            try:
                cache[ref] = store.info(ref) if store.resolve(ref) is not None else None
            except PodsecError:
                cache[ref] = None
        return cache[ref]

    return lookup


def _load(files: tuple[str, ...]) -> Any:
    from podsec.manifest.loader import load

    if not files:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin")
    return load(files)


@cli.command()
@click.argument("files", nargs=-1, metavar="FILE|DIR|-")
@click.option("--level", type=click.Choice(("privileged", "baseline", "restricted")),
              help="Pod Security Standards level (default: a Namespace's enforce label, else restricted).")
@click.option("--version", "pss_version", metavar="v1.N|latest",
              help="Pod Security Standards version (default: latest = v1.37).")
@click.option("-o", "--output", type=click.Choice(FORMATS_CHECK), default="table", show_default=True)
@click.option("--fail-on", type=click.Choice(SEVERITY_CHOICES), default="high", show_default=True,
              help="Exit 1 when a finding is at least this severe (a Pod Security denial always fails).")
@click.option("--min-severity", type=click.Choice(SEVERITY_CHOICES), default="low", show_default=True,
              help="Hide table rows below this severity.")
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@_validate_option()
@_feature_gates_option()
@click.pass_context
def check(ctx: click.Context, files: tuple[str, ...], level: str | None, pss_version: str | None, output: str,
          fail_on: str, min_severity: str, no_images: bool, validate: str, feature_gates: Any) -> None:
    """Validate manifests as the API server would and judge them against Pod Security Standards."""
    from podsec.check import check_paths
    from podsec.gcpause import no_cyclic_gc
    from podsec.policy.pss import parse_version
    from podsec.report import check_report as rep

    if pss_version is not None:
        try:
            parse_version(pss_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--version") from None
    if not files:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin")
    images = None if no_images else image_lookup(ctx.obj["root"])
    with no_cyclic_gc():  # a batch: see podsec.gcpause (rendering big outputs gains too)
        results, warnings = check_paths(list(files), level=level, version=pss_version, images=images,
                                        jobs=None if images is None else 1,
                                        feature_gates=feature_gates.enabled_names, validate=validate)
        for e in warnings:
            click.echo(e if e.startswith("Warning: ") else f"podsec: warning: {e}", err=True)
        if not results:
            click.echo(f"podsec: note: {NO_WORKLOAD}", err=True)
        out = sys.stdout
        if output == "json":
            rep.write_json(results, out)
        elif output == "yaml":
            rep.write_yaml(results, out)
        elif output == "sarif":
            rep.write_sarif(results, out)
        elif output == "junit":
            rep.write_junit(results, out, fail_on)
        else:
            rep.write_table(results, out, min_severity)
        sys.exit(1 if rep.failed(results, fail_on) else 0)


@cli.command()
@click.argument("files", nargs=-1, metavar="FILE|DIR|-")
@click.option("-o", "--output", type=click.Choice(("text", "json", "yaml")), default="text", show_default=True)
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@_validate_option()
@_feature_gates_option()
@click.pass_context
def explain(ctx: click.Context, files: tuple[str, ...], output: str, no_images: bool, validate: str,
            feature_gates: Any) -> None:
    """Say who each container runs as and what it can do, as the kubelet and containerd decide it."""
    from podsec.admit import AdmitOptions, admit
    from podsec.puid import pod_verdicts
    from podsec.report.explain_report import pod_dict, render_text
    from podsec.resolve import resolve_pod

    loaded = _load(files)
    admission = admit(loaded.objects, AdmitOptions(feature_gates=feature_gates, field_validation=validate))
    admission.raise_invalid()  # the API server would refuse it: nothing to explain (check lists every error)
    for line in admission.warnings():
        click.echo(line, err=True)
    images = None if no_images else image_lookup(ctx.obj["root"])
    facts = None if images is None else _image_facts(ctx.obj["root"])
    pods = []
    puid = []  # PUID/PGID (linuxserver/s6-overlay) verdicts, by container name, one dict per pod
    notes: list[list[str]] = []  # volume file owners (fsUser, defaultUser/user and their feature gates)
    for admitted in admission.pods:
        wl, obj = admitted.workload, admitted.workload.obj
        pod = resolve_pod(wl.pod_metadata(), wl.spec, images, kind=wl.kind)
        pods.append((pod, obj.source.display, obj.line_of()))
        notes.append(_ownership_notes(pod, wl, feature_gates))
        by_name = {c.name: images(c.image) if images and c.image else None for c in pod.containers}
        puid.append(pod_verdicts(wl.spec, pod, by_name, facts,
                                 sources=_manifest_env_sources(admission.config_objects, wl)))
    docs = [pod_dict(p, f, ln, v) for (p, f, ln), v in zip(pods, puid)]
    for doc, n in zip(docs, notes):
        if n:
            doc["volumeOwnership"] = n
    if not docs:
        click.echo(f"podsec: note: {NO_WORKLOAD}", err=True)
    if output == "json":
        import json

        click.echo(json.dumps({"pods": docs}, indent=2))
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump({"pods": docs}, sort_keys=False), nl=False)
    elif any(notes):  # each pod's block, then its volume notes (same text as below when there are none)
        blocks = []
        for p, v, n in zip(pods, puid, notes):
            block = render_text([p], [v])
            if n:
                block += "  volume files:\n" + "".join(f"    - {line}\n" for line in n)
            blocks.append(block)
        click.echo("\n".join(blocks), nl=False)
    else:
        click.echo(render_text(pods, puid), nl=False)


def _ownership_notes(pod: Any, wl: Any, gates: Any) -> list[str]:
    """Who will own each volume's files, when fsUser/defaultUser/user or their gates are involved."""
    from podsec.features import ATOMIC_WRITE_VOLUME_USER_FIELDS, POD_SECURITY_CONTEXT_FS_USER
    from podsec.volumes.plan import ownership_notes

    return ownership_notes(pod, wl.spec, wl.pod_metadata(),
                           atomic_write_user_fields=gates.enabled(ATOMIC_WRITE_VOLUME_USER_FIELDS),
                           pod_fs_user=gates.enabled(POD_SECURITY_CONTEXT_FS_USER))


def _manifest_env_sources(config_objects: list[dict], wl: Any) -> Callable[[str, str], Any]:
    """ConfigMaps/Secrets in the same input, for PUID/PGID from ``envFrom``/``valueFrom``; one not given here may
    still exist in the cluster, so it is unknown (``None``), not absent."""
    from podsec.runtime.process import Objects

    objects = Objects.from_documents(config_objects)
    return objects.env_sources(wl.namespace or "default", missing_is_absent=False)


def _image_facts(root: str) -> Callable[[str], Any]:
    """s6-overlay files in an image's rootfs (read only for PUID/PGID candidates), from the local store."""
    from pathlib import Path

    from podsec.image.s6 import store_facts
    from podsec.image.store import ImageStore

    return store_facts(ImageStore(Path(root)))


#: Command modules kept apart from this file (they touch the machine or pull in heavier imports); each has
#: ``register(cli)`` and imports its library code inside the commands, so ``podsec check`` stays fast.
COMMAND_MODULES = ("podsec.cli_runtime", "podsec.cli_trace", "podsec.cli_perms", "podsec.cli_fix", "podsec.cli_vap")


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # not built into this install
                continue
            raise
        module.register(cli)


_register_commands()


def main() -> None:
    cli(prog_name="podsec")


if __name__ == "__main__":
    main()
