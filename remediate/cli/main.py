"""``python -m remediate`` / ``remediate``: list, show, plan, apply, resume, runs, scenario."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from remediate.cli.logs import configure_logging
from remediate.cli.render import render_json, render_markdown, render_text
from remediate.engine.playbook import Playbook
from remediate.engine.runner import (
    EXIT_DONE,
    EXIT_ERROR,
    EXIT_PENDING,
    EXIT_REFUSED,
    Engine,
    RunResult,
    Safety,
    load_run_state,
)
from remediate.engine.step import Options
from remediate.errors import InputError, RemediateError, RunPaused
from remediate.fakes import FakeWorld, load_world, save_world
from remediate.fakes.scenarios import SCENARIOS
from remediate.playbooks import PLAYBOOKS, get_playbook

FORMATS = ("text", "json", "markdown")


def _parameters(pairs: Sequence[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"-p {pair!r} is not key=value", target="command line",
                             hint="e.g. -p ou=OU=Migrated,DC=corp,DC=example")
        parameters[key.strip()] = value
    return parameters


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir or os.environ.get("REMEDIATE_STATE_DIR") or ".remediate")


def _world(args: argparse.Namespace) -> FakeWorld:
    if getattr(args, "inventory", None):
        raise InputError(
            "real endpoints are not available yet in this version",
            target=str(args.inventory),
            hint="rehearse against a world file with --world (see: remediate scenario)",
        )
    if not getattr(args, "world", None):
        raise InputError("no world given", target="command line",
                         hint="pass --world FILE (or --inventory FILE)")
    return load_world(Path(args.world))


def _with_scenario_defaults(
    playbook: Playbook[Any, Any], world: FakeWorld, parameters: dict[str, str]
) -> dict[str, str]:
    """A world made by ``remediate scenario`` records the parameters that select its broken
    objects; they are used when none are given, and said so."""
    scenario = world.scenario or {}
    if parameters or scenario.get("name") != playbook.name:
        return parameters
    recorded = scenario.get("parameters")
    if not isinstance(recorded, dict) or not recorded:
        return parameters
    chosen = {str(k): str(v) for k, v in recorded.items()}
    shown = " ".join(f"-p {k}={v}" for k, v in chosen.items())
    print(f"using the parameters recorded in the world file: {shown}", file=sys.stderr)
    return chosen


def _emit(result: RunResult, fmt: str) -> None:
    if fmt == "json":
        print(render_json(result))
    elif fmt == "markdown":
        print(render_markdown(result))
    else:
        render_text(result, Console(highlight=False))


def _confirmer(args: argparse.Namespace) -> Callable[[str], bool] | None:
    if args.yes:
        return lambda text: True
    if not sys.stdin.isatty():
        return None

    def ask(text: str) -> bool:
        print(f"About to make these changes: {text}", file=sys.stderr)
        answer = input("Type 'yes' to continue: ")
        return answer.strip().lower() == "yes"

    return ask


def cmd_list(args: argparse.Namespace) -> int:
    for playbook in PLAYBOOKS.values():
        print(f"{playbook.name}\t{playbook.title}")
    return EXIT_DONE


def cmd_show(args: argparse.Namespace) -> int:
    playbook = get_playbook(args.playbook)
    print(f"{playbook.name}: {playbook.title}\n{playbook.kb}\n\n{playbook.description}\n")
    print("Parameters:")
    for parameter in playbook.parameters:
        print(f"  -p {parameter.name}=...   {parameter.help} (e.g. {parameter.example})")
    print("\nSteps:")
    for number, step in enumerate(playbook.outline, start=1):
        print(f"  {number}. {step.name} [{step.impact.value}] {step.summary}")
    return EXIT_DONE


def cmd_plan(args: argparse.Namespace) -> int:
    playbook = get_playbook(args.playbook)
    world = _world(args)
    parameters = _with_scenario_defaults(playbook, world, _parameters(args.param))
    result = _engine(args).plan(playbook, world, parameters, _options(args))
    _emit(result, args.format)
    return result.exit_code


def cmd_apply(args: argparse.Namespace) -> int:
    playbook = get_playbook(args.playbook)
    world = _world(args)
    parameters = _with_scenario_defaults(playbook, world, _parameters(args.param))
    source = {"kind": "world", "path": str(Path(args.world).resolve())}
    run_dirs: list[Path] = []
    safety = Safety(max_deletions=args.max_deletions, confirm=_confirmer(args))
    return _run_and_report(
        args, world, run_dirs,
        lambda: _engine(args).apply(playbook, world, parameters, options=_options(args),
                                    safety=safety, source=source, on_run_dir=run_dirs.append),
    )


def cmd_resume(args: argparse.Namespace) -> int:
    engine = _engine(args)
    run_dir = engine.store.path(args.run_id)
    state = load_run_state(run_dir)
    snapshot = run_dir / "world.json"
    if state.source.get("kind") != "world" or not snapshot.exists():
        raise InputError("this run has no saved world to resume against",
                         target=f"run {args.run_id}",
                         hint="runs against real endpoints resume with --inventory")
    world = load_world(snapshot)
    return _run_and_report(args, world, [run_dir],
                           lambda: engine.resume(args.run_id, world, PLAYBOOKS))


def _run_and_report(
    args: argparse.Namespace, world: FakeWorld, run_dirs: list[Path],
    body: Callable[[], RunResult],
) -> int:
    """Run, then always save the world the run leaves (the fake servers' state) so it can be
    resumed or inspected, whatever happened."""
    try:
        result = body()
    except RunPaused as paused:
        print(str(paused), file=sys.stderr)
        return EXIT_PENDING
    finally:
        for run_dir in run_dirs:
            save_world(world, run_dir / "world.json")
        if args.save_world:
            save_world(world, Path(args.save_world))
    _emit(result, args.format)
    return result.exit_code


def cmd_runs(args: argparse.Namespace) -> int:
    engine = _engine(args)
    rows = []
    for run_id in engine.store.run_ids():
        state = load_run_state(engine.store.runs_dir / run_id)
        rows.append({"run_id": run_id, "playbook": state.playbook, "started": state.started,
                     "state": state.state, "applied": state.counts["applied"],
                     "completed_steps": len(state.completed)})
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['run_id']}\t{row['playbook']}\t{row['state']}\t"
                  f"{row['applied']} change(s)")
        if not rows:
            print(f"no runs under {engine.store.runs_dir}")
    return EXIT_DONE


def cmd_scenario(args: argparse.Namespace) -> int:
    builder = SCENARIOS.get(args.name)
    if builder is None:
        raise InputError("no such scenario", target=args.name,
                         hint=f"known scenarios: {', '.join(SCENARIOS)}")
    if args.size < 1:
        raise InputError("--size must be at least 1", target="command line")
    kwargs = {"version": args.version} if args.version else {}
    try:
        data = builder(args.size, args.seed, **kwargs)
    except ValueError as error:
        raise InputError(str(error), target=f"scenario {args.name}") from None
    out = Path(args.out)
    save_world(_load_generated(data), out)
    print(f"wrote {out}: scenario {args.name}, size {args.size}, seed {args.seed}",
          file=sys.stderr)
    return EXIT_DONE


def _load_generated(data: dict[str, object]) -> FakeWorld:
    from remediate.fakes import world_from_json

    return world_from_json(data, source="scenario")


def _engine(args: argparse.Namespace) -> Engine:
    return Engine(state_dir=_state_dir(args))


def _options(args: argparse.Namespace) -> Options:
    return Options(allow_protected=getattr(args, "allow_protected", False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="remediate",
        description="Preview, apply, resume and audit Exchange / AD repair playbooks.",
    )
    parser.add_argument("--state-dir", help="where runs are kept (default ./.remediate, "
                        "or $REMEDIATE_STATE_DIR)")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("--log-format", choices=("console", "json"), default=None,
                        help="events on stderr: console for people, json for machines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="list the playbooks").set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="describe a playbook: parameters and steps")
    show.add_argument("playbook")
    show.set_defaults(func=cmd_show)

    def target_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("playbook")
        command.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
        where = command.add_mutually_exclusive_group()
        where.add_argument("--world", metavar="FILE", help="a world file (fakes)")
        where.add_argument("--inventory", metavar="FILE", help="real endpoints (TOML)")
        command.add_argument("--format", choices=FORMATS, default="text")
        command.add_argument("--allow-protected", action="store_true",
                             help="delete objects protected from accidental deletion")

    plan = sub.add_parser("plan", help="rehearse a playbook and show what apply would do")
    target_options(plan)
    plan.set_defaults(func=cmd_plan)

    apply = sub.add_parser("apply", help="apply a playbook")
    target_options(apply)
    apply.add_argument("--yes", action="store_true", help="confirm destructive changes")
    apply.add_argument("--max-deletions", type=int, default=None,
                       help="refuse the run if it would delete more objects or mailboxes")
    apply.add_argument("--save-world", metavar="FILE", help="write the world the run leaves")
    apply.set_defaults(func=cmd_apply)

    resume = sub.add_parser("resume", help="continue an interrupted or paused run")
    resume.add_argument("run_id")
    resume.add_argument("--format", choices=FORMATS, default="text")
    resume.add_argument("--save-world", metavar="FILE", help="write the world the run leaves")
    resume.set_defaults(func=cmd_resume)

    runs = sub.add_parser("runs", help="list runs")
    runs.add_argument("--format", choices=("text", "json"), default="text")
    runs.set_defaults(func=cmd_runs)

    scenario = sub.add_parser("scenario", help="write a broken world for a KB")
    scenario.add_argument("name", choices=sorted(SCENARIOS))
    scenario.add_argument("--size", type=int, default=20)
    scenario.add_argument("--seed", type=int, default=1)
    scenario.add_argument("--version", help="Exchange version of the servers")
    scenario.add_argument("--out", required=True, metavar="FILE")
    scenario.set_defaults(func=cmd_scenario)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbosity=args.verbose - args.quiet, fmt=args.log_format)
    try:
        code: int = args.func(args)
    except RemediateError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code if error.exit_code in (EXIT_REFUSED, EXIT_PENDING) else EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: resume the run with `remediate resume RUN_ID`", file=sys.stderr)
        return EXIT_ERROR
    return code
