"""``python -m remediate`` / ``remediate``: list, show, plan, apply, resume, runs, scenario."""
# PYTHON_ARGCOMPLETE_OK (argcomplete's global completion looks for this marker)

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import structlog
from rich.console import Console
from tenacity import RetryCallState

from remediate import __version__
from remediate.cli.completion import enable_completion
from remediate.cli.console import ProgressBars, RunLog, StepLines
from remediate.cli.durability import (
    DurableWorld,
    check_writable,
    save_left_world,
    services_left_stopped,
)
from remediate.cli.logs import configure_logging, console_format
from remediate.cli.options import CommandOptions
from remediate.cli.prompt import prompt_text
from remediate.cli.render import (
    FINDINGS_PER_KIND,
    ROWS_PER_STEP,
    render_json,
    render_markdown,
    render_text,
)
from remediate.cli.saved import describe_playbook
from remediate.cli.scenario_options import add_scenario_options, chosen_cases
from remediate.cli.ticket import TicketContext, write_attachment
from remediate.cli.timeline import render_timeline, timeline_json
from remediate.engine.changes import JsonValue
from remediate.engine.journal import RunStore, read_journal
from remediate.engine.listener import RunListener
from remediate.engine.parallel import DEFAULT_PARALLEL, checked_parallel
from remediate.engine.planfile import SavedPlan, read_plan, write_plan
from remediate.engine.playbook import Playbook
from remediate.engine.reads import retried_reads
from remediate.engine.retry import RetryPolicy
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
from remediate.engine.savedresult import saved_result
from remediate.engine.step import Options
from remediate.engine.stopping import stop_on_signals
from remediate.errors import InputError, RemediateError
from remediate.fakes import FakeWorld, load_world, save_world, world_from_json
from remediate.fakes.scenarios import SCENARIOS, scenario_world
from remediate.gcpolicy import program_collector, settled
from remediate.inventory import live_world, load_inventory
from remediate.playbooks import PLAYBOOKS, find_playbook, get_playbook
from remediate.ports import World
from remediate.snapshot import snapshot

FORMATS = ("text", "json", "markdown")
# At a terminal a plan shows this many rows of each step's table, an apply only its line:
# a 2,000-user run fits on a screen or two; -v shows every row, --format json every value.
PLAN_ROWS_AT_TERMINAL = 5

Command = Callable[[CommandOptions], int]


def _parameters(pairs: Sequence[str]) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(
                f"-p {pair!r} is not key=value",
                target="command line",
                hint="e.g. -p ou=OU=Migrated,DC=corp,DC=example",
            )
        key = key.strip()
        if not _is_text(pair):  # bytes that are not UTF-8 in argv arrive as lone surrogates
            raise InputError(
                f"-p {key}: the value is not UTF-8 text",
                target="command line",
                hint="give the value in UTF-8 (check the terminal's locale)",
            )
        if key in parameters:
            raise InputError(
                f"-p {key} is given twice ({parameters[key]!r} and {value!r})",
                target="command line",
                hint="give each parameter once",
            )
        parameters[key] = value
    return parameters


def _state_dir_for_completion() -> Path:
    return Path(os.environ.get("REMEDIATE_STATE_DIR") or ".remediate")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _world(options: CommandOptions) -> World:
    if options.inventory:
        world: World = live_world(load_inventory(Path(options.inventory)))
    elif not options.world:
        raise InputError(
            "no world given",
            target="command line",
            hint="pass --world FILE; `remediate scenario` writes one",
        )
    else:
        world = load_world(Path(options.world))
    settled()  # the world lives as long as the command
    return world


def _say(options: CommandOptions, text: str) -> None:
    """A note for the operator on stderr; -q leaves it out."""
    if not options.quietened:
        print(text, file=sys.stderr)


def _with_scenario_defaults(
    options: CommandOptions,
    playbook: Playbook[Any, Any],
    world: World,
    parameters: dict[str, str],
) -> dict[str, str]:
    """A world made by ``remediate scenario`` records the parameters that select its broken
    objects; they are used when none are given, and said so."""
    scenario = getattr(world, "scenario", None) or {}
    if parameters or scenario.get("name") != playbook.name:
        return parameters
    recorded = scenario.get("parameters")
    if not isinstance(recorded, dict) or not recorded:
        return parameters
    chosen = {str(k): str(v) for k, v in recorded.items()}
    shown = " ".join(f"-p {k}={v}" for k, v in chosen.items())
    _say(options, f"using the parameters recorded in the world file: {shown}")
    return chosen


def _emit(result: RunResult, options: CommandOptions, ticket: TicketContext | None = None) -> None:
    """The result on stdout; ``ticket``: the change ticket's header (--format markdown)."""
    if options.format == "json":
        print(render_json(result))
    elif options.format == "markdown":
        print(render_markdown(result, _ticket(result, ticket or TicketContext())))
    elif options.verbose > 0:
        render_text(_not_shown_again(result, options), _console(), rows=None, findings=None)
    elif sys.stdout.isatty():
        rows = PLAN_ROWS_AT_TERMINAL if result.mode == "plan" else 0
        render_text(
            _not_shown_again(result, options), _console(), rows=rows, findings=FINDINGS_PER_KIND
        )
    else:
        render_text(result, _console(), rows=ROWS_PER_STEP, findings=FINDINGS_PER_KIND)


def _not_shown_again(result: RunResult, options: CommandOptions) -> RunResult:
    """The result to summarise, less the manual actions the step lines printed (stderr) as
    they came where the summary (stdout) goes to the same terminal: there each is read once.
    Into a file, the summary keeps them all."""
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        return result
    shown = {
        instructions
        for listener in options.listeners
        if isinstance(listener, StepLines)
        for instructions in listener.manual_actions
    }
    return replace(
        result,
        manual_actions=[
            instructions for instructions in result.manual_actions if instructions not in shown
        ],
    )


def _ticket(result: RunResult, ticket: TicketContext) -> TicketContext:
    """The ticket's header as the command set it up; a run's ticket gets every change as
    ``changes.csv`` in its run directory."""
    if result.run_dir and ticket.attachment is None and result.changes:
        path = Path(result.run_dir) / "changes.csv"
        ticket = replace(
            ticket, attachment=str(path), attachment_sha256=write_attachment(result.changes, path)
        )
    return ticket


def _console() -> Console:
    """At a terminal rich wraps to its width; into a pipe or a file each row stays on one line
    (no DN folded in two, so grep finds it), unless COLUMNS sets a width."""
    unwrapped = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    return Console(highlight=False, width=100_000 if unwrapped else None)


def _confirmer(options: CommandOptions, run_dirs: list[Path]) -> Callable[[str], bool] | None:
    """``--yes``; else, at a terminal, a prompt naming the counts (on stderr, so that
    ``--format json > file`` still shows it); else None: the run is refused."""
    if options.yes:
        return lambda text: True
    if not sys.stdin.isatty():
        return None

    def ask(text: str) -> bool:
        plan = run_dirs[-1] / "plan.json" if run_dirs else None
        sys.stderr.write(f"{prompt_text(plan, text)}\nType 'yes' to continue: ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:  # end of input (Ctrl-D)
            sys.stderr.write("\n")
        return answer.strip().lower() == "yes"

    return ask


def cmd_list(options: CommandOptions) -> int:
    for playbook in PLAYBOOKS.values():
        print(f"{playbook.name}\t{playbook.title}")
    return EXIT_DONE


def cmd_show(options: CommandOptions) -> int:
    """A playbook (its parameters and every step its plans can run), or a saved plan rendered
    in any format (the change ticket with --format markdown)."""
    if find_playbook(options.playbook) is None and Path(options.playbook).is_file():
        plan = read_plan(Path(options.playbook))
        ticket = TicketContext(
            organisation=plan.organisation,
            date=plan.created,
            plan_file=options.playbook,
            plan_sha256=plan.sha256,
        )
        path = Path(options.playbook)
        result = saved_result(plan, options.playbook, find_playbook(plan.playbook))
        if options.format == "markdown" and result.changes:
            attachment = path.with_name(path.stem + ".changes.csv")
            ticket = replace(
                ticket,
                attachment=str(attachment),
                attachment_sha256=write_attachment(result.changes, attachment),
            )
        _emit(result, options, ticket)
        return EXIT_DONE
    print("\n".join(describe_playbook(get_playbook(options.playbook))))
    return EXIT_DONE


def cmd_plan(options: CommandOptions) -> int:
    playbook = get_playbook(options.playbook)
    world = _world(options)
    parameters = _with_scenario_defaults(options, playbook, world, _parameters(options.param))
    step_options = _step_options(options)
    result = _engine(options).plan(
        playbook, world, parameters, step_options, fingerprint=bool(options.out)
    )
    if result.state in ("failed", "interrupted"):  # nothing discovered: nothing to show
        print(
            "interrupted" if result.state == "interrupted" else f"error: {result.error}",
            file=sys.stderr,
        )
        return result.exit_code
    ticket = TicketContext(organisation=world.organisation)
    if options.out and result.exit_code in (EXIT_DONE, EXIT_PENDING):
        out = Path(options.out)
        sealed = write_plan(_saved_plan(result, world, step_options, _world_source(options)), out)
        attachment = out.with_name(out.stem + ".changes.csv")
        ticket = replace(
            ticket,
            plan_file=str(out),
            plan_sha256=sealed,
            attachment=str(attachment),
            attachment_sha256=write_attachment(result.changes, attachment),
        )
        _say(
            options,
            f"wrote the plan to {options.out} (every change also in {attachment}): "
            f"apply it with `remediate apply {options.out}`",
        )
    _emit(result, options, ticket)
    return result.exit_code


def _world_source(options: CommandOptions) -> dict[str, JsonValue]:
    if options.inventory:
        return {"kind": "inventory", "path": str(Path(options.inventory).resolve())}
    return {"kind": "world", "path": str(Path(str(options.world)).resolve())}


def _lease_container(options: CommandOptions) -> str | None:
    """Runs against an inventory take the organisation's lease in its directory, so that two
    operators on two machines never repair one organisation at once."""
    if not options.inventory:
        return None
    return load_inventory(Path(options.inventory)).lease_container


def _lease_breaker(options: CommandOptions) -> Callable[[str], bool] | None:
    """``--break-lease``: take over the lease of a run that is gone, once confirmed (``--yes``,
    or 'yes' at the prompt naming the holder); without it a held lease always refuses."""
    if not options.break_lease:
        return None
    if options.yes:
        return lambda text: True
    if not sys.stdin.isatty():
        return lambda text: False

    def ask(text: str) -> bool:
        sys.stderr.write(f"{text}?\nType 'yes' to take the lease over: ")
        sys.stderr.flush()
        return sys.stdin.readline().strip().lower() == "yes"

    return ask


def _budget(options: CommandOptions) -> int | None:
    """--max-deletions, else the inventory's [safety] max_deletions."""
    if options.max_deletions is not None or not options.inventory:
        return int(options.max_deletions) if options.max_deletions is not None else None
    return load_inventory(Path(options.inventory)).max_deletions


def _saved_plan(
    result: RunResult, world: World, step_options: Options, source: dict[str, JsonValue]
) -> SavedPlan:
    return SavedPlan(
        playbook=result.playbook,
        parameters=dict(result.parameters),
        options=step_options.to_json(),
        organisation=world.organisation,
        source=source,
        created=datetime.now(UTC),
        selection=result.selection_json(),
        fingerprints=result.fingerprints,
        changes=[change.to_json() for change in result.changes],
        deletes=[change.deletes for change in result.changes],
        findings=[finding.to_json() for finding in result.findings],
        manual_actions=list(result.manual_actions),
        rehearsed_s=dict(result.rehearsed_s),
        manual_steps=list(result.manual_steps),
    )


def cmd_apply(options: CommandOptions) -> int:
    check_writable("--save-world", options.save_world)
    if options.playbook.lower() not in PLAYBOOKS and Path(options.playbook).is_file():
        return _apply_saved_plan(options)
    if options.skip_drifted:
        raise InputError(
            "--skip-drifted applies to a saved plan",
            target="command line",
            hint="remediate apply PLAN_FILE --skip-drifted",
        )
    playbook = get_playbook(options.playbook)
    world = _world(options)
    parameters = _with_scenario_defaults(options, playbook, world, _parameters(options.param))
    source = _world_source(options)
    ticket = TicketContext(organisation=world.organisation)
    run_dirs: list[Path] = []
    durable = DurableWorld(world if options.durable_world else None)
    safety = Safety(max_deletions=_budget(options), confirm=_confirmer(options, run_dirs))
    return _run_and_report(
        options,
        world,
        run_dirs,
        ticket,
        lambda: _engine(
            options, durable, world_file=options.world, lease_container=_lease_container(options)
        ).apply(
            playbook,
            world,
            parameters,
            options=_step_options(options),
            safety=safety,
            source=source,
            on_run_dir=_run_dir_noted(durable, run_dirs),
        ),
    )


def _apply_saved_plan(options: CommandOptions) -> int:
    """``apply PLAN``: exactly what was approved, refused where the world drifted."""
    plan = read_plan(Path(options.playbook))
    if options.param:
        raise InputError(
            "a saved plan carries its own parameters",
            target=options.playbook,
            hint="drop -p, or plan again with the parameters you want",
        )
    if options.leave_out_dc:
        raise InputError(
            "a saved plan carries its own options",
            target=options.playbook,
            hint="drop --leave-out-dc, or plan again with it",
        )
    recorded = plan.source.get("path")
    if not options.world and not options.inventory:
        if not isinstance(recorded, str) or plan.source.get("kind") not in ("world", "inventory"):
            raise InputError(
                "the plan names no world file or inventory",
                target=options.playbook,
                hint="pass --world FILE or --inventory FILE",
            )
        options = (
            replace(options, world=recorded)
            if plan.source["kind"] == "world"
            else replace(options, inventory=recorded)
        )
    world = _world(options)
    run_dirs: list[Path] = []
    durable = DurableWorld(world if options.durable_world else None)
    safety = Safety(max_deletions=_budget(options), confirm=_confirmer(options, run_dirs))
    # The run records which plan it applied, sealed as the approver saw it.
    applied: dict[str, JsonValue] = {
        "path": str(Path(options.playbook).resolve()),
        "sha256": plan.sha256,
    }
    ticket = TicketContext(
        organisation=world.organisation, plan_file=options.playbook, plan_sha256=plan.sha256
    )
    return _run_and_report(
        options,
        world,
        run_dirs,
        ticket,
        lambda: _engine(
            options, durable, world_file=options.world, lease_container=_lease_container(options)
        ).apply_saved(
            plan,
            world,
            PLAYBOOKS,
            safety=safety,
            skip_drifted=options.skip_drifted,
            max_age_s=options.max_plan_age,
            source={**_world_source(options), "plan": applied},
            on_run_dir=_run_dir_noted(durable, run_dirs),
        ),
    )


def _run_dir_noted(durable: DurableWorld, run_dirs: list[Path]) -> Callable[[Path], None]:
    def noted(run_dir: Path) -> None:
        run_dirs.append(run_dir)
        durable.attach(run_dir)

    return noted


def cmd_resume(options: CommandOptions) -> int:
    check_writable("--save-world", options.save_world)
    run_dir = RunStore(options.state_path()).path(options.run_id)
    state = load_run_state(run_dir)
    saved = run_dir / "world.json"
    recorded = state.source.get("path")
    world: World
    lease_container = None
    if state.source.get("kind") == "inventory" and isinstance(recorded, str):
        inventory = load_inventory(Path(options.inventory or recorded))
        world, lease_container = live_world(inventory), inventory.lease_container
    elif state.source.get("kind") == "world" and saved.exists():
        world = load_world(saved)
    else:
        raise InputError(
            "this run has no saved world to resume against",
            target=f"run {options.run_id}",
            hint="runs against real endpoints resume with --inventory FILE",
        )
    ticket = TicketContext(organisation=world.organisation)
    # The run's world file is written only once this resume holds the organisation's lock: a
    # resume refused because the run is still live must leave that run's files alone.
    durable = DurableWorld(world if options.durable_world else None)
    run_dirs: list[Path] = []
    original = recorded if state.source.get("kind") == "world" else None
    engine = _engine(
        options,
        durable,
        world_file=original if isinstance(original, str) else None,
        lease_container=lease_container,
    )
    return _run_and_report(
        options,
        world,
        run_dirs,
        ticket,
        lambda: engine.resume(
            options.run_id,
            world,
            PLAYBOOKS,
            on_run_dir=_run_dir_noted(durable, run_dirs),
            leave_out_dcs=options.leave_out_dc,
        ),
    )


def _run_and_report(
    options: CommandOptions,
    world: World,
    run_dirs: list[Path],
    ticket: TicketContext,
    body: Callable[[], RunResult],
) -> int:
    """Run, then always save the world the run leaves (the fake servers' state) so it can be
    resumed or inspected, whatever happened. A run that stopped is reported like one that
    finished (what it changed, its id, the error) and says what to do next."""
    try:
        result = body()
    finally:
        if isinstance(world, FakeWorld):  # real servers keep their own state
            save_left_world(options.save_world, world, run_dirs)
    if result.stop is not None:
        _emit(result, options, ticket)
        # the text result at a terminal ends with the error already: say it once there
        shown = options.format == "text" and sys.stdout.isatty()
        print(_next_step(result, error_shown=shown), file=sys.stderr)
        return result.exit_code
    _world_file_note(options, world, result)  # before the result: its grand total ends it
    _emit(result, options, ticket)
    return result.exit_code


def _world_file_note(options: CommandOptions, world: World, result: RunResult) -> None:
    """A world file stands for servers, but is not written back: say where the state the run
    left went, so nobody plans again on the unchanged file and wonders."""
    given = options.world
    if not given or options.save_world or not result.changes or not isinstance(world, FakeWorld):
        return
    left = Path(result.run_dir) / "world.json" if result.run_dir else None
    _say(
        options,
        f"the world file {given} is unchanged; the state this run left is in {left} "
        "(--save-world FILE writes it where you want)",
    )


def _next_step(result: RunResult, *, error_shown: bool) -> str:
    made = f"{len(result.changes)} change(s) made"
    stopped = services_left_stopped(Path(result.run_dir)) if result.run_dir else []
    if stopped and result.state != "refused":
        made += f"; left stopped until the run is resumed: {', '.join(stopped)}"
    resume = f"remediate resume {result.run_id}"
    stated = "" if error_shown else f"error: {result.stop}\n"
    if result.state == "paused" and not result.approved:  # the rehearsal itself could not finish
        return (
            f"paused: run {result.run_id} stopped before any change: {result.error}\n"
            "nothing was changed; when the manual action is done, run apply again"
        )
    if result.state == "paused":
        return (
            f"paused: run {result.run_id} waits for a manual action ({made}): "
            f"{result.error}\nwhen it is done, continue with: {resume}"
        )
    if result.state == "refused":
        return f"{stated}run {result.run_id} refused; nothing was changed"
    if result.state == "interrupted":
        return f"interrupted: run {result.run_id} stopped ({made}); continue with: {resume}"
    return (
        f"{stated}run {result.run_id} failed ({made}); fix the cause, then continue with: {resume}"
    )


RUNS_HEADER = ("run id", "playbook", "started (UTC)", "state", "changes", "source")


def cmd_runs(options: CommandOptions) -> int:
    engine = _engine(options)
    rows: list[dict[str, JsonValue]] = []
    for run_id in engine.store.run_ids():
        try:
            state = load_run_state(engine.store.runs_dir / run_id)
        except InputError as error:  # one damaged run must not hide the others
            print(f"warning: {error}", file=sys.stderr)
            rows.append(
                {
                    "run_id": run_id,
                    "playbook": "",
                    "started": None,
                    "state": "damaged",
                    "applied": 0,
                    "failed": 0,
                    "in_doubt": 0,
                    "completed_steps": 0,
                    "source": {},
                }
            )
            continue
        rows.append(
            {
                "run_id": run_id,
                "playbook": state.playbook,
                "started": state.started,
                "state": state.state,
                "applied": state.counts["applied"],
                "failed": state.counts["failed"],
                "in_doubt": state.counts["in_doubt"],
                "completed_steps": len(state.completed),
                "source": dict(state.source),
            }
        )
    # oldest first: run ids sort by the second they were made, then by a random suffix
    rows.sort(key=lambda row: (str(row["started"] or ""), str(row["run_id"])))
    if options.format == "json":
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no runs under {engine.store.runs_dir}")
    else:
        print("\t".join(RUNS_HEADER))
        for row in rows:  # tab-separated, for people and for cut(1)
            when = str(row["started"] or "")[:19].replace("T", " ")
            failed = f", {row['failed']} failed" if row["failed"] else ""
            source = row["source"] if isinstance(row["source"], dict) else {}
            if row["in_doubt"]:  # sent by a process that was killed: resume observes them
                failed += f", {row['in_doubt']} in doubt until resumed"
            print(
                f"{row['run_id']}\t{row['playbook']}\t{when}\t{row['state']}\t"
                f"{row['applied']} change(s){failed}\t{_source_cell(source)}"
            )
    return EXIT_DONE


def _source_cell(source: dict[str, JsonValue]) -> str:
    """'world /srv/w.json', 'inventory corp.toml', and the saved plan a run applied."""
    where = f"{source.get('kind')} {source.get('path')}" if source.get("path") else "-"
    plan = source.get("plan")
    return f"{where}, plan {plan.get('path')}" if isinstance(plan, dict) else where


def cmd_show_run(options: CommandOptions) -> int:
    """A run's journal as a timeline (text), or every record of it (JSON)."""
    run_dir = RunStore(options.state_path()).path(options.run_id)
    state = load_run_state(run_dir)
    records = read_journal(run_dir / "journal.jsonl").records
    if options.format == "json":
        print(json.dumps(timeline_json(state, records, run_dir), indent=2, ensure_ascii=False))
    else:
        print("\n".join(render_timeline(state, records, run_dir, every=options.all)))
    return EXIT_DONE


def _log_snapshot_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    structlog.get_logger("remediate").warning(
        "snapshot.retried", attempt=state.attempt_number, error=str(error)
    )


def cmd_snapshot(options: CommandOptions) -> int:
    world = _world(options)
    reads = retried_reads(world, _retry_policy(options), _log_snapshot_retry)
    data = snapshot(reads, base_dn=options.base_dn)
    out = options.required_out()
    save_world(world_from_json(data, source=str(out)), out)
    directory = data["directory"]
    count = (
        len(directory["objects"])
        if isinstance(directory, dict) and isinstance(directory["objects"], list)
        else 0
    )
    _say(options, f"wrote {out}: {count} directory objects of {world.organisation}")
    return EXIT_DONE


def cmd_scenario(options: CommandOptions) -> int:
    if options.name not in SCENARIOS:
        raise InputError(
            "no such scenario", target=options.name, hint=f"known scenarios: {', '.join(SCENARIOS)}"
        )
    if options.size < 1:
        raise InputError("--size must be at least 1", target="command line")
    try:
        # Built without the scenario's JSON document: only the saved one is ever in memory.
        world = scenario_world(
            options.name,
            options.size,
            options.seed,
            version=options.version or None,
            servers=options.servers,
            cases=chosen_cases(options.name, list(options.case)),
        )
    except ValueError as error:
        raise InputError(str(error), target=f"scenario {options.name}") from None
    out = options.required_out()
    save_world(world, out)
    _say(options, f"wrote {out}: scenario {options.name}, size {options.size}, seed {options.seed}")
    return EXIT_DONE


def _engine(
    options: CommandOptions,
    *listeners: RunListener,
    world_file: str | None = None,
    lease_container: str | None = None,
) -> Engine:
    """With the console's listeners (progress bars, the run's log file) set up by main; a
    run against a world file takes the organisation's lock beside that file, one against an
    inventory its lease in the directory."""
    console = options.listeners
    beside = Path(world_file).resolve() if world_file else None
    return Engine(
        state_dir=options.state_path(),
        retry=_retry_policy(options),
        listeners=listeners + console,
        lock_beside=beside,
        parallel=_parallel(options),
        lease_container=lease_container,
        break_lease=_lease_breaker(options),
    )


def _retry_policy(options: CommandOptions) -> RetryPolicy:
    deadline = options.retry_deadline
    return RetryPolicy() if deadline is None else RetryPolicy.within(deadline)


def _progress_bars(options: CommandOptions, console: Console) -> ProgressBars | None:
    """On a terminal, for people: not with JSON output or JSON events, not with -q."""
    if options.format == "json" or options.quietened:
        return None
    if not sys.stderr.isatty() or (options.log_format or "console") != "console":
        return None
    return ProgressBars(console)


def _console_listeners(options: CommandOptions) -> tuple[RunListener, ...]:
    """For people (console events): the step lines, under progress bars at a terminal. One
    rich console for both, so a line printed while the bars run goes above them."""
    if console_format(options.log_format) != "console":
        return ()
    console = Console(file=sys.stderr, highlight=False)
    lines = StepLines(console, quiet=options.quietened)
    progress = _progress_bars(options, console)
    return (lines, progress) if progress else (lines,)


def _step_options(options: CommandOptions) -> Options:
    return Options(
        allow_protected=options.allow_protected,
        replication_timeout_s=options.replication_timeout,
        leave_out_dcs=options.leave_out_dc,
    )


def _leave_out_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--leave-out-dc",
        action="append",
        default=[],
        metavar="NAME",
        help="a DC (or global catalog) that is down: the replication waits "
        "leave it out, and the result says what that means (repeatable)",
    )


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 (error), not argparse's 2, which means "changes pending" here."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """On the top-level parser with their defaults, and on every command without (so that
    ``remediate plan ... -q`` works as well as ``remediate -q plan ...``)."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "--state-dir",
        default=default(None),
        help="where runs are kept (default ./.remediate, or $REMEDIATE_STATE_DIR)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="more events on stderr (every target)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="count",
        default=default(0),
        help="fewer events on stderr (warnings and errors only)",
    )
    parser.add_argument(
        "--log-format",
        choices=("console", "json"),
        default=default(None),
        help="events on stderr: console for people, json for machines "
        "(default: console at a terminal, else json)",
    )


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return value


def _positive_seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return seconds


def _world_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Commands that write world files: broken ones to rehearse on, and snapshots."""
    scenario = command("scenario", "write a broken world for a KB")
    scenario.add_argument("name", choices=sorted(SCENARIOS))
    scenario.add_argument("--size", type=int, default=20, help="affected users (default 20)")
    scenario.add_argument(
        "--seed", type=int, default=1, help="the same seed gives the same file (default 1)"
    )
    scenario.add_argument("--version", help="Exchange version of the servers")
    scenario.add_argument("--out", required=True, metavar="FILE")
    add_scenario_options(scenario)
    scenario.set_defaults(func=cmd_scenario)

    snap = command("snapshot", "read an organisation into a world file, to rehearse offline")
    where = snap.add_mutually_exclusive_group(required=True)
    where.add_argument("--inventory", metavar="FILE", help="real endpoints (TOML)")
    where.add_argument("--world", metavar="FILE", help="a world file (read through the ports)")
    snap.add_argument("--base-dn", metavar="DN", help="only users under this container")
    snap.add_argument("--out", required=True, metavar="WORLD")
    _retry_option(snap)
    snap.set_defaults(func=cmd_snapshot)


def _inspection_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    """Commands that only read: the playbooks, saved plans, runs."""
    command("list", "list the playbooks").set_defaults(func=cmd_list)
    show = command("show", "describe a playbook (parameters, steps), or render a saved plan")
    show.add_argument("playbook", metavar="PLAYBOOK|PLAN")
    show.add_argument(
        "--format",
        choices=FORMATS,
        default="text",
        help="for a saved plan: text, json, or markdown (the change ticket)",
    )
    show.set_defaults(func=cmd_show)

    runs = command("runs", "list runs")
    runs.add_argument("--format", choices=("text", "json"), default="text")
    runs.set_defaults(func=cmd_runs)

    show_run = command("show-run", "a run's journal as a timeline")
    show_run.add_argument("run_id")
    show_run.add_argument("--format", choices=("text", "json"), default="text")
    show_run.add_argument(
        "--all", action="store_true", help="every per-target event too (each change, each poll)"
    )
    show_run.set_defaults(func=cmd_show_run)


def _run_options(command: argparse.ArgumentParser) -> None:
    """What plan, apply and resume share: retries and servers at a time."""
    _retry_option(command)
    command.add_argument(
        "--parallel",
        type=_parallel_count,
        metavar="N",
        help="how many of a step's servers to work on at a time (default: the "
        f"inventory's [safety] parallel, else {DEFAULT_PARALLEL}; 1: one by one)",
    )


def _parallel_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    try:
        return checked_parallel(value, repr(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parallel(options: CommandOptions) -> int:
    """--parallel, else the inventory's [safety] parallel, else the default."""
    chosen: int | None = options.parallel
    if chosen is None and options.inventory:
        chosen = load_inventory(Path(options.inventory)).parallel
    return chosen or DEFAULT_PARALLEL


def _break_lease_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--break-lease",
        action="store_true",
        help="with --inventory: take over the organisation's lease from a run "
        "that is gone (stopped, or not renewed for 30 minutes), after a "
        "confirmation naming it; a live run's lease is never taken",
    )


def _retry_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--retry-deadline",
        type=_positive_seconds,
        metavar="SECONDS",
        help="how long to retry a server that does not answer, or another "
        "transient error, before giving up (default: 6 attempts, about 30 s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="remediate",
        description="Preview, apply, resume and audit Exchange / AD repair playbooks.",
        epilog="exit codes: 0 done or nothing to do; 2 changes pending (plan) or paused for a "
        "manual action; 3 refused before any change; 1 error",
    )
    _global_options(parser, defaults=True)
    parser.add_argument("--version", action="version", version=f"remediate {__version__}")
    common = _Parser(add_help=False)
    _global_options(common, defaults=False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=summary, parents=[common])

    def target_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("playbook")
        command.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
        where = command.add_mutually_exclusive_group()
        where.add_argument("--world", metavar="FILE", help="a world file (fakes)")
        where.add_argument("--inventory", metavar="FILE", help="real endpoints (TOML)")
        command.add_argument("--format", choices=FORMATS, default="text")
        command.add_argument(
            "--allow-protected",
            action="store_true",
            help="delete objects protected from accidental deletion",
        )
        command.add_argument(
            "--replication-timeout",
            type=_positive_seconds,
            metavar="SECONDS",
            help="how long to wait for every DC to show the changes (default 14400)",
        )
        _leave_out_option(command)
        _run_options(command)

    plan = command("plan", "rehearse a playbook and show what apply would do")
    target_options(plan)
    plan.add_argument(
        "--out",
        metavar="PLAN",
        help="save the plan (with fingerprints of everything selected) for `remediate apply PLAN`",
    )
    plan.set_defaults(func=cmd_plan)

    apply = command("apply", "apply a playbook, or a plan saved with plan --out")
    target_options(apply)
    apply.add_argument(
        "--skip-drifted",
        action="store_true",
        help="with a saved plan: leave out targets that drifted, apply the rest",
    )
    apply.add_argument(
        "--max-plan-age",
        type=_positive_seconds,
        default=24 * 3600.0,
        metavar="SECONDS",
        help="warn when a saved plan is older (default 86400)",
    )
    apply.add_argument(
        "--yes", action="store_true", help="confirm destructive changes (and --break-lease)"
    )
    _break_lease_option(apply)
    apply.add_argument(
        "--max-deletions",
        type=_count,
        default=None,
        metavar="N",
        help="refuse the run if it would delete more objects or mailboxes",
    )
    apply.add_argument("--save-world", metavar="FILE", help="write the world the run leaves")
    apply.add_argument(
        "--durable-world",
        action="store_true",
        help="with --world: save the fake world in the run directory after every "
        "change, so a killed process can be resumed (one world save per "
        "change)",
    )
    apply.set_defaults(func=cmd_apply)

    resume = command("resume", "continue an interrupted or paused run")
    resume.add_argument("run_id")
    _leave_out_option(resume)
    resume.add_argument(
        "--inventory",
        metavar="FILE",
        help="real endpoints (default: the inventory the run was started with)",
    )
    resume.add_argument("--format", choices=FORMATS, default="text")
    _break_lease_option(resume)
    resume.add_argument("--yes", action="store_true", help="confirm --break-lease")
    _run_options(resume)
    resume.add_argument("--save-world", metavar="FILE", help="write the world the run leaves")
    resume.add_argument(
        "--durable-world",
        action="store_true",
        help="with --world: save the fake world in the run directory after every "
        "change, so a killed process can be resumed (one world save per "
        "change)",
    )
    resume.set_defaults(func=cmd_resume)

    _inspection_commands(command)
    _world_commands(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    enable_completion(parser, _state_dir_for_completion)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (1)
        return stop.code if isinstance(stop.code, int) else EXIT_ERROR
    command: Command = args.func
    given = CommandOptions.from_args(args)
    run_log = RunLog(given.state_path() / "runs")
    configure_logging(verbosity=given.verbose - given.quiet, fmt=given.log_format, run_log=run_log)
    options = replace(given, listeners=(run_log, *_console_listeners(given)))
    try:
        # SIGTERM, SIGHUP: stop after the operation in flight, as Ctrl-C
        with program_collector(), stop_on_signals():
            return _dispatch(command, options)
    finally:
        for listener in options.listeners:
            if isinstance(listener, ProgressBars):
                listener.stop()
        run_log.close()


def _dispatch(command: Command, options: CommandOptions) -> int:
    try:
        code = command(options)
    except RemediateError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code if error.exit_code in (EXIT_REFUSED, EXIT_PENDING) else EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR
    except EOFError:  # Ctrl-D, or no terminal, at a prompt (a password)
        print(
            "\nerror: the input ended at a prompt, so nothing was read (a password: name an "
            "environment variable in the inventory instead of prompting)",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except BrokenPipeError:  # `remediate plan ... | head`: the reader is gone, stay quiet
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
    except OSError as error:  # a file that cannot be read or written
        name = error.filename2 or error.filename  # os.replace(temporary, destination)
        where = f"{name}: " if name else ""
        print(f"error: {where}{error.strerror or error}", file=sys.stderr)
        return EXIT_ERROR
    return code
