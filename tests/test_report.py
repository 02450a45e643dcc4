"""report.py on real files: PGR arithmetic on known results, a folder with missing results."""

import csv
import json
from pathlib import Path

from conftest import run_script

from alice.metrics import summarize_scores
from alice.report import build_report

IDS = [f"q{i}" for i in range(10)]


def write_eval(folder: Path, method: str, correct_ids: set[str], parsed_ids: set[str] | None = None,
               ids: list[str] = IDS) -> None:
    """An eval result as eval.py writes it: per-question JSONL plus the summary beside it."""
    parsed_ids = set(ids) if parsed_ids is None else parsed_ids
    rows = [{"id": i, "response": "My choice is A.", "prediction": "A", "parsed": i in parsed_ids,
             "correct": i in correct_ids} for i in ids]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"eval-{method}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"dataset": "arc_challenge", "split": "test", "model": {"path": method},
               **summarize_scores([r["correct"] for r in rows], [r["parsed"] for r in rows])}
    (folder / f"eval-{method}.summary.json").write_text(json.dumps(summary))


def test_pgr_from_known_results(tmp_path):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "experiment.json").write_text(json.dumps({"dataset": "arc_challenge", "teacher_label": "1.5B",
                                                     "student_label": "3B"}))
    write_eval(run, "weak", set(IDS[:4]))                       # 0.4
    write_eval(run, "ceiling", set(IDS[:8]))                    # 0.8
    write_eval(run, "alice", set(IDS[:6]), parsed_ids=set(IDS[:9]))  # 0.6 -> PGR (0.6-0.4)/(0.8-0.4) = 0.5
    write_eval(run, "w2s-cot", set(IDS[:2]))                    # 0.2 -> PGR -0.5
    write_eval(run, "zero-shot", set(IDS[:8]))                  # 0.8 -> PGR 1.0

    report = build_report(run, samples=500)
    rows = {r["method"]: r for r in report["rows"]}
    assert abs(rows["alice"]["pgr"] - 0.5) < 1e-9
    assert abs(rows["w2s-cot"]["pgr"] + 0.5) < 1e-9
    assert abs(rows["zero-shot"]["pgr"] - 1.0) < 1e-9
    assert rows["alice"]["accuracy"] == 0.6 and rows["alice"]["parse_rate"] == 0.9
    low, high = rows["alice"]["pgr_ci_low"], rows["alice"]["pgr_ci_high"]
    assert low <= 0.5 <= high and low < high
    assert rows["weak"]["pgr"] is None and rows["ceiling"]["pgr"] is None  # the ends are not rated
    # Methods not run are listed as missing, in the markdown too.
    missing = report["missing"][str(run)]
    assert any(m.startswith("w2s-qa") for m in missing) and any(m.startswith("cascade") for m in missing)
    text = Path(report["markdown"]).read_text()
    assert "1.5B -> 3B" in text and "| Alice | 10 | 60.0 |" in text and "0.50" in text
    assert "Missing:" in text and "w2s-qa" in text
    with open(report["csv"]) as handle:
        table = list(csv.DictReader(handle))
    assert [r["method"] for r in table] == ["weak", "ceiling", "zero-shot", "w2s-cot", "alice"]
    assert abs(float(next(r for r in table if r["method"] == "alice")["pgr"]) - 0.5) < 1e-9
    assert Path(report["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pgr_joins_by_question_id_not_position(tmp_path):
    # The same outcomes, rows written in another order: the PGR must not change.
    write_eval(tmp_path, "weak", set(IDS[:4]))
    write_eval(tmp_path, "ceiling", set(IDS[:8]))
    write_eval(tmp_path, "alice", set(IDS[:6]), ids=list(reversed(IDS)))
    rows = {r["method"]: r for r in build_report(tmp_path, samples=200)["rows"]}
    assert abs(rows["alice"]["pgr"] - 0.5) < 1e-9


def test_report_script_on_folder_with_missing_results(tmp_path):
    sweep = tmp_path / "sweep"
    write_eval(sweep / "runA", "weak", set(IDS[:4]))
    write_eval(sweep / "runA", "alice", set(IDS[:6]))           # no ceiling: no PGR, but no crash
    (sweep / "runB").mkdir(parents=True)
    (sweep / "runB" / "experiment.json").write_text(json.dumps({"dataset": "gsm8k", "teacher_label": "1B",
                                                                "student_label": "8B"}))
    (sweep / "runA" / "eval-w2s-qa.summary.json").write_text("{not json")  # a torn file
    done = run_script("report.py", str(sweep))
    text = (sweep / "report.md").read_text()
    assert "PGR needs ceiling" in text
    assert "ceiling (no eval-ceiling.summary.json)" in text
    assert "w2s-qa (unreadable eval-w2s-qa.summary.json)" in text
    assert "gsm8k: 1B -> 8B" in text  # a run with no results yet still gets its (empty) section
    assert "report.md" in done.stdout
    with open(sweep / "report.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {r["method"] for r in table} == {"weak", "alice"} and table[1]["pgr"] == ""


def test_report_script_error_for_missing_folder(tmp_path):
    done = run_script("report.py", str(tmp_path / "nope"), check=False)
    assert done.returncode == 2 and "no such folder" in done.stderr
