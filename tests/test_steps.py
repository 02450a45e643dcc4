"""The one step executor (alice/steps.py): make-like runs on real subprocesses (targets, a failure's
dependants skipped, resume, GPU shares, the status file), the step-by-step in-process mode
experiment.py uses, and a stage step's command read off its config."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from alice.config import to_argv
from alice.errors import AliceError
from alice.stages.train import TrainConfig
from alice.steps import Executor, Step, needed_steps, reordered, stage_config, steps_waiting_for


def writer(path: Path, text: str, fail: bool = False) -> list[str]:
    """A helper command that writes ``text`` to ``path``, or fails without writing it."""
    code = f"import pathlib,sys; sys.exit(1) if {fail} else pathlib.Path({str(path)!r}).write_text({text!r})"
    return [sys.executable, "-c", code]


def test_make_runs_what_targets_need_skips_after_a_failure_and_resumes(tmp_path):
    out = {name: tmp_path / f"{name}.txt" for name in ("a", "b", "c", "d", "unused")}

    def step(name: str, needs=(), fail=False) -> Step:
        return Step(name, needs=needs, helper=writer(out[name], name, fail), done=lambda: out[name].is_file())

    steps = [step("a"), step("b", ("a",)), step("c", ("a",), fail=True), step("d", ("c",)), step("unused")]
    assert [s.name for s in needed_steps(steps, ["b", "d"])] == ["a", "b", "c", "d"]

    def make() -> dict:
        return Executor(steps, log_dir=tmp_path / "logs", status_path=tmp_path / "steps.json").make(["b", "d"])

    status = make()
    assert status["a"]["status"] == status["b"]["status"] == "done"
    assert status["c"]["status"] == "failed" and status["d"] == {"status": "skipped", "error": "needs c"}
    assert not out["unused"].exists() and not out["d"].exists()
    assert "$ " in (tmp_path / "logs" / "a.log").read_text()  # the log starts with the command
    assert json.loads((tmp_path / "steps.json").read_text())["steps"]["c"]["error"] == "exit code 1"
    # A rerun starts only what is still missing: a and b are done, c runs again (and fails again).
    out["b"].write_text("kept")
    again = make()
    assert set(again) == {"c", "d"} and out["b"].read_text() == "kept"
    # The status file keeps the first run's steps (their time is part of the whole run's cost).
    status_file = json.loads((tmp_path / "steps.json").read_text())
    assert set(status_file["steps"]) == {"c", "d"}
    assert [set(r["steps"]) for r in status_file["earlier_runs"]] == [{"a", "b", "c", "d"}]
    assert status_file["earlier_runs"][0]["steps"]["b"]["began_s"] >= status_file["earlier_runs"][0]["steps"]["a"]["began_s"]


def test_a_failed_subprocess_starts_again_up_to_its_retries(tmp_path):
    # Fails on its first try only (as a training that met another's memory peak would), then succeeds.
    tries, out = tmp_path / "tries", tmp_path / "out.txt"
    code = (f"import pathlib,sys; t=pathlib.Path({str(tries)!r}); t.write_text(t.read_text()+'x' if t.exists() "
            f"else 'x'); sys.exit(1) if len(t.read_text()) < 2 else pathlib.Path({str(out)!r}).write_text('ok')")
    flaky = Step("flaky", helper=[sys.executable, "-c", code], done=out.is_file, retries=1)
    status = Executor([flaky], log_dir=tmp_path / "logs", status_path=tmp_path / "steps.json").make(["flaky"])
    assert status["flaky"]["status"] == "done" and status["flaky"]["retries"] == 1
    assert tries.read_text() == "xx" and status["flaky"]["earlier_tries_wall_s"] > 0
    # Without retries the same first failure is final.
    tries.unlink()
    once = Step("flaky", helper=[sys.executable, "-c", code], done=out.is_file)
    out.unlink()
    assert Executor([once], log_dir=tmp_path / "logs").make(["flaky"])["flaky"]["status"] == "failed"
    assert tries.read_text() == "x"


def test_gpu_shares_limit_what_runs_at_once(tmp_path):
    # Two steps of 0.6 of a GPU cannot share one card: the second starts after the first ends.
    marks = tmp_path / "marks"
    marks.mkdir()
    code = ("import pathlib,time,os; p=pathlib.Path({d!r}); (p/'{n}.start').write_text(str(time.time())); "
            "time.sleep(1.0); (p/'{n}.end').write_text(os.environ['CUDA_VISIBLE_DEVICES'])")
    steps = [Step(n, helper=[sys.executable, "-c", code.format(d=str(marks), n=n)], gpu=0.6,
                  done=lambda n=n: (marks / f"{n}.end").is_file()) for n in ("x", "y")]
    status = Executor(steps, gpus=["7"], log_dir=tmp_path / "logs").make(["x", "y"])
    assert all(s["status"] == "done" and s["gpu"] == "7" for s in status.values())
    assert (marks / "x.end").read_text() == "7"
    first, second = sorted(float((marks / f"{n}.start").read_text()) for n in ("x", "y"))
    assert second - first >= 1.0


def test_a_step_may_start_before_some_needs_and_is_stopped_when_one_fails(tmp_path):
    """starts_after: a step starts once those needs are done and runs beside the others (it waits for their
    outputs itself, as an evaluation batch waits for each training); if one of them fails it is stopped
    and recorded as failed for it, not left waiting."""
    first, second, seen = tmp_path / "first.txt", tmp_path / "second.txt", tmp_path / "seen.txt"
    wait = (f"import pathlib,time; p=pathlib.Path({str(second)!r})\nwhile not p.exists(): time.sleep(0.1)\n"
            f"pathlib.Path({str(seen)!r}).write_text(p.read_text())")
    slow = ("import pathlib,sys,time; time.sleep(1.5); sys.exit(1) if {fail} else "
            f"pathlib.Path({str(second)!r}).write_text('second')")

    def table(fail: bool) -> list[Step]:
        return [Step("first", helper=writer(first, "first"), done=first.is_file),
                Step("second", needs=("first",), helper=[sys.executable, "-c", slow.format(fail=fail)], done=second.is_file),
                Step("reader", needs=("first", "second"), helper=[sys.executable, "-c", wait], done=seen.is_file,
                     starts_after=("first",))]

    status = Executor(table(fail=False), log_dir=tmp_path / "logs", cpu_slots=3).make(["reader"])
    assert all(s["status"] == "done" for s in status.values()) and seen.read_text() == "second"
    assert status["reader"]["began_s"] < status["second"]["began_s"] + status["second"]["wall_s"]  # it ran beside
    for path in (first, second, seen):
        path.unlink()
    status = Executor(table(fail=True), log_dir=tmp_path / "logs", cpu_slots=3).make(["reader"])
    assert status["second"]["status"] == "failed"
    assert status["reader"]["status"] == "failed" and status["reader"]["error"] == "needs second"
    assert status["reader"]["wall_s"] < 30 and not seen.exists()


def test_a_step_starts_early_on_a_gpu_only_where_what_it_waits_for_can_still_run(tmp_path):
    """starts_after on a card: three trainings of 0.45 (two fit at once; t2 the longest) and an evaluation of
    0.1 that waits for all three. It does not start while a training yet to start would find no room beside
    it; once every training it waits for is running or done, it starts beside them, not after the last."""
    marks = tmp_path / "marks"
    marks.mkdir()
    train = "import pathlib,time; time.sleep({s}); pathlib.Path({d!r}, {n!r}).write_text('trained')"
    wait = (f"import pathlib,time; d=pathlib.Path({str(marks)!r})\n"
            "while not all((d/n).exists() for n in ('t1','t2','t3')): time.sleep(0.1)\n(d/'read').write_text('ok')")
    trainings = [Step(n, helper=[sys.executable, "-c", train.format(s=seconds, d=str(marks), n=n)], gpu=0.45,
                      done=lambda n=n: (marks / n).is_file()) for n, seconds in (("t1", 1), ("t2", 8), ("t3", 3))]
    reader = Step("reader", needs=("t1", "t2", "t3"), helper=[sys.executable, "-c", wait], gpu=0.1,
                  done=(marks / "read").is_file, starts_after=("t1",))
    status = Executor([*trainings, reader], gpus=["0"], log_dir=tmp_path / "logs", poll_s=0.2).make(["reader"])
    assert all(s["status"] == "done" for s in status.values())
    t1_end, t3_end = (status[n]["began_s"] + status[n]["wall_s"] for n in ("t1", "t3"))
    assert t1_end <= status["reader"]["began_s"] < t3_end  # beside t2 and t3, once t3 had started


def test_a_step_starts_early_beside_a_card_full_of_what_it_waits_for(tmp_path):
    """An evaluation batch of 0.09 that waits for six trainings of 0.4 on a card of 0.95 (two trainings fit,
    and the batch beside them; the first is the shortest): it starts once the first training is done, beside the two that run, not once
    the last has started (before, it waited for free room for a whole training beside it); the trainings
    still run two at once."""
    marks = tmp_path / "marks"
    marks.mkdir()
    names = [f"t{i}" for i in range(1, 7)]
    train = "import pathlib,time; time.sleep({s}); pathlib.Path({d!r}, {n!r}).write_text('trained')"
    wait = (f"import pathlib,time; d=pathlib.Path({str(marks)!r})\n"
            f"while not all((d/n).exists() for n in {names!r}): time.sleep(0.1)\n(d/'read').write_text('ok')")
    trainings = [Step(n, helper=[sys.executable, "-c", train.format(s=1 if n == "t1" else 2, d=str(marks), n=n)], gpu=0.4,
                      done=lambda n=n: (marks / n).is_file()) for n in names]
    reader = Step("reader", needs=tuple(names), helper=[sys.executable, "-c", wait], gpu=0.09,
                  done=(marks / "read").is_file, starts_after=("t1",))
    status = Executor([*trainings, reader], gpus=["0"], capacity=0.95, log_dir=tmp_path / "logs",
                      poll_s=0.2).make(["reader"])
    assert all(s["status"] == "done" for s in status.values())
    span = {n: (s["began_s"], s["began_s"] + s["wall_s"]) for n, s in status.items()}
    assert span["t1"][1] <= span["reader"][0] < span["t4"][0]  # beside t2 and t3, not after t6 started
    assert all(span[b][0] < span[a][1] for a, b in (("t1", "t2"), ("t3", "t4"), ("t5", "t6")))  # two at once


def test_steps_waiting_early_do_not_lower_how_many_of_their_needs_run_at_once(tmp_path):
    """Two readers of 0.1 (evaluation batches of two seeds) that may start at once and wait for their own
    two trainings of 0.45 (two fit a card at once). The second reader does not start while the first one
    waits: both waiting would leave room for one training at a time (before, it started beside the first)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    train = "import pathlib,time; time.sleep(1.5); pathlib.Path({d!r}, {n!r}).write_text('trained')"
    wait = ("import pathlib,time; d=pathlib.Path({d!r})\n"
            "while not all((d/n).exists() for n in {needs!r}): time.sleep(0.1)\n(d/{out!r}).write_text('ok')")
    trainings = [Step(n, helper=[sys.executable, "-c", train.format(d=str(marks), n=n)], gpu=0.45,
                      done=lambda n=n: (marks / n).is_file()) for n in ("a1", "a2", "b1", "b2")]
    readers = [Step(f"read {g}", needs=(f"{g}1", f"{g}2"), gpu=0.1, starts_after=(), done=(marks / g).is_file,
                    helper=[sys.executable, "-c", wait.format(d=str(marks), needs=(f"{g}1", f"{g}2"), out=g)])
               for g in ("a", "b")]
    status = Executor([*readers, *trainings], gpus=["0"], log_dir=tmp_path / "logs", poll_s=0.2).make(
        ["read a", "read b"])
    assert all(s["status"] == "done" for s in status.values())
    span = {n: (s["began_s"], s["began_s"] + s["wall_s"]) for n, s in status.items()}
    assert span["a2"][0] < span["a1"][1] and span["b2"][0] < span["b1"][1]  # each seed's two trainings at once
    assert span["read b"][0] >= span["a2"][0]  # not while "read a" held its share with both a's yet to start


def test_among_ready_steps_the_one_more_steps_wait_for_starts_first(tmp_path):
    """Two ready steps of 0.6 (one fits the card at a time): "leaf", first in the table, that nothing needs,
    and "root", which a step and a check after it need; "root" starts first, then "child" waits for "leaf"
    (both need the card). A priority still comes before that; ties keep table order."""
    marks = tmp_path / "marks"
    marks.mkdir()

    def hold(name: str) -> list[str]:
        code = f"import pathlib,time; time.sleep(0.5); pathlib.Path({str(marks)!r}, {name!r}).write_text('ok')"
        return [sys.executable, "-c", code]

    def table(leaf_priority: int = 5) -> list[Step]:
        return [Step("leaf", helper=hold("leaf"), gpu=0.6, priority=leaf_priority),
                Step("root", helper=hold("root"), gpu=0.6),
                Step("child", helper=hold("child"), needs=("root",), gpu=0.6),
                Step("check", action=lambda: None, needs=("child",))]

    status = Executor(table(), gpus=["0"], log_dir=tmp_path / "logs", poll_s=0.1).make(["leaf", "check"])
    assert all(s["status"] == "done" for s in status.values())
    began = {n: s["began_s"] for n, s in status.items() if n != "check"}
    assert began["root"] < began["leaf"] and began["root"] < began["child"]
    status = Executor(table(leaf_priority=1), gpus=["0"], log_dir=tmp_path / "logs2", poll_s=0.1).make(
        ["leaf", "check"])
    assert status["leaf"]["began_s"] < status["root"]["began_s"]
    assert steps_waiting_for(table()) == {"leaf": 0, "root": 1, "child": 0, "check": 0}


def test_reordered_puts_the_named_steps_in_order_in_the_places_they_held():
    steps = [Step(name, action=lambda: None) for name in "abcde"]
    assert [s.name for s in reordered(steps, ["d", "b"])] == ["a", "d", "c", "b", "e"]
    assert [s.name for s in reordered(steps, ["b", "d"])] == list("abcde")


def test_in_process_steps_one_by_one_skip_what_needs_a_failure(tmp_path, capsys):
    """experiment.py's mode: stage functions called with their configs, in the caller's order; a failure is
    recorded and what needs it is skipped; ``call`` lets an error through; a helper runs as a subprocess."""
    config = TrainConfig(data="arc_challenge", student="smollm2", lr=3e-5)

    def broken(_config: TrainConfig) -> None:
        raise AliceError("no training rows")

    steps = [Step("train a", "train", config, lambda c: c.lr), Step("train b", "train", config, broken),
             Step("eval b", "train", config, lambda c: "never", ("train b",)),
             Step("note", action=lambda: "noted", needs=("train a",))]
    executor = Executor(total=len(steps))
    assert [executor.run(s) for s in steps] == [3e-5, None, None, "noted"]
    assert executor.results == {"train a": 3e-5, "note": "noted"}
    assert executor.failed == {"train b": "no training rows", "eval b": "needs train b"}
    out = capsys.readouterr().out
    assert "== [1 of 4" in out and "== [2 of 4" in out and "train b failed: no training rows" in out
    assert "] eval b: skipped (needs train b)" in out and "== [4 of 4" in out
    with pytest.raises(AliceError, match="no training rows"):
        executor.call(steps[1])
    target = tmp_path / "helper.txt"
    executor.call(Step("helper", helper=writer(target, "ran"), done=target.is_file))
    assert target.read_text() == "ran"
    with pytest.raises(AliceError, match="exit code 1"):
        executor.call(Step("failing", helper=writer(target, "", fail=True)))


def test_a_stage_step_runs_its_config_and_a_dry_run_prints_it(capsys):
    """A stage's command is its config's flags, never a hand-built list; a stage script is no helper."""
    config = stage_config("train", ["--data", "gsm_symbolic", "--student", "smollm2", "--seed", "2", "--seed", "3",
                                    "--lora"])
    assert config.seed == 3 and config.lora
    step = Step("train s", "train", config, gpu=0.4)
    assert step.argv() == [sys.executable, "train.py", *to_argv(config)] and not step.in_process
    assert Step("train s", "train", config, lambda c: None).command().startswith("python train.py --data gsm_symbolic")
    with pytest.raises(ValueError, match="is a stage script"):
        Step("by hand", helper=[sys.executable, "train.py", "--lora"])
    with pytest.raises(ValueError, match="a stage"):
        Step("both", "train", config, action=lambda: None)
    with pytest.raises(AliceError, match="not settings that script takes"):
        stage_config("train", ["--no-such-flag"])
    capsys.readouterr()
    executor = Executor([step], dry_run=True)
    assert executor.make(["train s"]) == {}
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "train s  [gpu 0.40; needs -]" and lines[1].strip() == step.command()
    assert json.loads(lines[2].removeprefix("    settings: "))["seed"] == 3
    assert executor.planned[0]["argv"] == to_argv(config)
