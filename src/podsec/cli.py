"""The ``podsec`` command line: parse arguments, call the library, render. Nothing else lives here.

Imports are lazy so ``podsec check`` starts fast; every PodsecError becomes one line and exit 2.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any

import click

from podsec import __version__
from podsec.api.strict import click_option as _validate_option
from podsec.errors import PodsecError
from podsec.features import click_option as _feature_gates_option
from podsec.image.lookup import image_facts, image_lookup

NO_WORKLOAD = ("no workload (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob, ReplicaSet, ReplicationController, "
               "PodTemplate) in the input")
DEFAULT_ROOT = "/var/lib/podsec"
DEFAULT_STATE = "/run/podsec"
FORMATS_CHECK = ("table", "json", "yaml", "sarif", "junit")
SEVERITY_CHOICES = ("critical", "high", "medium", "low", "info")


GLOBAL_OPTIONS = ("--root", "--state", "--max-file-size", "--max-layer-size")
"""Options of ``podsec`` itself (each takes a value); accepted after the subcommand too, as kubectl's are."""


def hoist_global_options(args: list[str], command_options: Callable[[str], set[str]]) -> list[str]:
    """``podsec run --root X -f p.yaml`` → ``podsec --root X run -f p.yaml``: global options given after the
    subcommand move before it (unless the subcommand has an option of that name; nothing after ``--`` moves)."""
    i = 0
    while i < len(args):
        a = args[i]
        if a in GLOBAL_OPTIONS:
            i += 2
            continue
        if not a.startswith("-") or a == "-":
            break
        i += 1
    if i >= len(args):
        return args
    own = command_options(args[i])
    front: list[str] = []
    rest: list[str] = []
    j = i + 1
    while j < len(args):
        a = args[j]
        if a == "--":
            rest += args[j:]
            break
        name = a.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and name not in own:
            if "=" in a:
                front.append(a)
                j += 1
                continue
            front += args[j:j + 2]
            j += 2
            continue
        rest.append(a)
        j += 1
    return args[:i] + front + [args[i]] + rest


class PodsecGroup(click.Group):
    """Turns podsec errors into one line and an exit code instead of a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        def command_options(name: str) -> set[str]:
            cmd = self.get_command(ctx, name)
            return {o for p in (cmd.params if cmd else ()) for o in getattr(p, "opts", ())}

        return super().parse_args(ctx, hoist_global_options(list(args), command_options))

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
            if isinstance(exc, PermissionError) and os.geteuid() != 0:  # a file of root's, read by another user
                click.echo(f"podsec: {exc.filename or 'a file'}: permission denied (podsec runs as uid "
                           f"{os.geteuid()}; run {ctx.invoked_subcommand or 'it'} as root)", err=True)
                sys.exit(1)
            click.echo(f"podsec: internal error: {type(exc).__name__}: {exc} (set PODSEC_DEBUG=1 for details)",
                       err=True)
            sys.exit(3)


@click.group(cls=PodsecGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="podsec")
@click.option("--root", default=DEFAULT_ROOT, show_default=True, envvar="PODSEC_ROOT", show_envvar=True,
              metavar="DIR", help="Image store directory (images, their layers and unpacked roots).")
@click.option("--state", default=DEFAULT_STATE, show_default=True, envvar="PODSEC_STATE", show_envvar=True,
              metavar="DIR", help="Directory for running pods' state.")
@click.option("--max-file-size", default="64Mi", show_default=True, envvar="PODSEC_MAX_FILE_SIZE", show_envvar=True,
              metavar="SIZE", callback=lambda _c, _p, v: _file_size(v),
              help="The most a manifest file may hold (64Mi, 1Gi, bytes): a device or runaway file is never read "
                   "without bound.")
@click.option("--max-layer-size", default="16Gi", show_default=True, envvar="PODSEC_MAX_LAYER_SIZE", show_envvar=True,
              metavar="SIZE", callback=lambda _c, _p, v: _layer_size(v),
              help="The most one image layer may expand to when unpacked (16Gi, 500Mi, bytes); a layer beyond it, "
                   "or beyond the free space, is refused with its size.")
@click.pass_context
def cli(ctx: click.Context, root: str, state: str, max_file_size: int, max_layer_size: str) -> None:
    """Make Kubernetes securityContext real on one machine: check, explain and run pods.

    The global options (--root, --state, --max-file-size, --max-layer-size) may also follow the subcommand.
    """
    from podsec.manifest import loader

    loader.MAX_FILE_BYTES = max_file_size
    os.environ["PODSEC_MAX_LAYER_SIZE"] = max_layer_size  # read where layers are unpacked, the pod supervisor too
    ctx.obj = {"root": root, "state": state}


def _layer_size(value: str) -> str:
    """``16Gi`` → ``"17179869184"``: the unpacker (and a pod supervisor, through the environment) reads bytes."""
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti)?", value.strip())
    if m:  # the common spellings without the quantity parser (fractions): run's start-up stays lean
        size = int(m.group(1)) << {None: 0, "Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40}[m.group(2)]
    else:
        from podsec.errors import InputError
        from podsec.quantity import quantity_value

        try:
            size = quantity_value(value)
        except InputError:
            size = 0
    if size <= 0:
        raise click.BadParameter(f"{value!r}: not a size (e.g. 16Gi, 500Mi, or bytes)", param_hint="--max-layer-size")
    return str(size)


def _file_size(value: str) -> int:
    from podsec.manifest.loader import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--max-file-size") from None


def _load(files: tuple[str, ...]) -> Any:
    from podsec.manifest.loader import load

    if not files:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin (or -f FILE)")
    return load(files)


@cli.command(epilog="Exit status: 0 clean; 1 a Pod Security denial or a finding at or above --fail-on; 2 a file or "
                    "document could not be used (the rest is still checked and reported).")
@click.argument("files", nargs=-1, metavar="[FILE|DIR|-]...")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Manifests to check (repeatable; the same as giving them as arguments).")
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
def check(ctx: click.Context, files: tuple[str, ...], filenames: tuple[str, ...], level: str | None,
          pss_version: str | None, output: str, fail_on: str, min_severity: str, no_images: bool, validate: str,
          feature_gates: Any) -> None:
    """Validate manifests as the API server would and judge them against Pod Security Standards."""
    from podsec.check import iter_results
    from podsec.gcpause import no_cyclic_gc
    from podsec.policy.pss import parse_version
    from podsec.report import check_report as rep

    if pss_version is not None:
        try:
            parse_version(pss_version)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--version") from None
    files = files + filenames
    if not files:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin (or -f FILE)")
    images = None if no_images else image_lookup(ctx.obj["root"])

    def say(line: str) -> None:
        click.echo(line, err=True)

    sink = rep.sink_for(output, sys.stdout, fail_on, min_severity)
    with no_cyclic_gc():  # a batch: see podsec.gcpause (rendering big outputs gains too)
        for item in iter_results(list(files), jobs=None if images is None else 1, warn=say, level=level,
                                 version=pss_version, images=images, feature_gates=feature_gates.enabled_names,
                                 validate=validate,
                                 image_facts=None if images is None else image_facts(ctx.obj["root"])):
            if isinstance(item, rep.Problem):
                say(f"podsec: {item.message}")
                sink.problem(item)
            else:
                sink.result(item)
        if not sink.count and not sink.problems:
            say(f"podsec: note: {NO_WORKLOAD}")
        sink.close()
    sys.stdout.flush()
    sys.exit(2 if sink.problems else 1 if sink.failed else 0)


@cli.command()
@click.argument("files", nargs=-1, metavar="[FILE|DIR|-]...")
@click.option("-f", "--filename", "filenames", multiple=True, metavar="FILE|DIR|-",
              help="Manifests to explain (repeatable; the same as giving them as arguments).")
@click.option("-o", "--output", type=click.Choice(("text", "json", "yaml", "oci")), default="text", show_default=True,
              help="oci: the config.json run would write for the sandbox and each container, as one JSON object.")
@click.option("--no-images", is_flag=True, help="Do not read images from the local store.")
@_validate_option()
@_feature_gates_option()
@click.pass_context
def explain(ctx: click.Context, files: tuple[str, ...], filenames: tuple[str, ...], output: str, no_images: bool,
            validate: str, feature_gates: Any) -> None:
    """Say who each container runs as and what it can do, as the kubelet and containerd decide it."""
    if output == "oci":
        _explain_oci(ctx, files + filenames, feature_gates, validate)
        return
    from podsec.check import explain_objects

    images = None if no_images else image_lookup(ctx.obj["root"])
    result = explain_objects(_load(files + filenames).objects, images=images,
                             image_facts=None if images is None else image_facts(ctx.obj["root"]),
                             feature_gates=feature_gates, validate=validate)
    for line in result.warnings:
        click.echo(line, err=True)
    if not result.pods:
        click.echo(f"podsec: note: {NO_WORKLOAD}", err=True)
    if output == "json":
        import json

        click.echo(json.dumps({"pods": result.docs()}, indent=2))
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump({"pods": result.docs()}, sort_keys=False), nl=False)
    else:
        click.echo(result.text(), nl=False)


def _explain_oci(ctx: click.Context, files: tuple[str, ...], gates: Any, validate: str) -> None:
    """The pod plan, without running anything: ``{"sandbox": …, "containers": {name: …}}`` per Pod."""
    import json

    from podsec.runtime.run import plan_files

    if not files:
        raise click.UsageError("give at least one FILE, DIRECTORY or - for stdin")
    plans = plan_files(files, root=ctx.obj["root"], state=ctx.obj["state"], gates=gates, field_validation=validate)
    docs = [plan.oci() for _, plan in plans]
    click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=2))


#: Command modules kept apart from this file (they touch the machine or pull in heavier imports); each has
#: ``register(cli)`` and imports its library code inside the commands, so ``podsec check`` stays fast.
COMMAND_MODULES = ("podsec.cli_runtime", "podsec.cli_trace", "podsec.cli_perms", "podsec.cli_fix", "podsec.cli_vap",
                   "podsec.cli_cluster")


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
