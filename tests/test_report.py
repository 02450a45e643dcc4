"""report.py on real files: PGR arithmetic on known results, paired statistics over seeds checked
against scipy and hand counts, report.json's shape, legacy hyphenated names, a folder with missing results."""

import csv
import json
from pathlib import Path
from statistics import stdev

import numpy as np
from conftest import run_script
from scipy import stats

from alice.metrics import summarize_scores
from alice.report import build_report, collect, compute, figure

IDS = [f"q{i}" for i in range(10)]


def write_eval(folder: Path, method: str, correct_ids: set[str], parsed_ids: set[str] | None = None,
               ids: list[str] = IDS, seed: int | None = None) -> None:
    """An eval result as eval.py writes it: per-question JSONL plus the summary beside it."""
    parsed_ids = set(ids) if parsed_ids is None else parsed_ids
    rows = [{"id": i, "response": "My choice is A.", "prediction": "A", "parsed": i in parsed_ids,
             "correct": i in correct_ids} for i in ids]
    folder.mkdir(parents=True, exist_ok=True)
    name = f"eval-{method}" if seed is None else f"eval-{method}-seed{seed}"
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"dataset": "arc_challenge", "split": "test", "model": {"path": method},
               **summarize_scores([r["correct"] for r in rows], [r["parsed"] for r in rows])}
    (folder / f"{name}.summary.json").write_text(json.dumps(summary))


def test_pgr_from_known_results(tmp_path):
    run = tmp_path / "run"
    (run).mkdir()
    (run / "experiment.json").write_text(json.dumps({"dataset": "arc_challenge", "teacher_label": "1.5B",
                                                     "student_label": "3B"}))
    write_eval(run, "weak", set(IDS[:4]))                       # 0.4
    write_eval(run, "ceiling", set(IDS[:8]))                    # 0.8
    write_eval(run, "alice", set(IDS[:6]), parsed_ids=set(IDS[:9]))  # 0.6 -> PGR (0.6-0.4)/(0.8-0.4) = 0.5
    write_eval(run, "w2s-cot", set(IDS[:2]), parsed_ids=set(IDS[:3]))  # 0.2 -> PGR -0.5; parse rate 30%
    write_eval(run, "zero-shot", set(IDS[:8]))                  # 0.8 -> PGR 1.0 (legacy hyphenated names)

    report = build_report(run, samples=500)
    rows = {r["method"]: r for r in report["rows"]}
    assert abs(rows["alice"]["pgr"] - 0.5) < 1e-9
    assert abs(rows["w2s_cot"]["pgr"] + 0.5) < 1e-9
    assert abs(rows["zero_shot"]["pgr"] - 1.0) < 1e-9
    assert rows["alice"]["accuracy"] == 0.6 and rows["alice"]["parse_rate"] == 0.9
    low, high = rows["alice"]["pgr_ci_low"], rows["alice"]["pgr_ci_high"]
    assert low <= 0.5 <= high and low < high
    assert rows["weak"]["pgr"] is None and rows["ceiling"]["pgr"] is None  # the ends are not rated
    # Methods not run are listed as missing, in the markdown too.
    missing = report["missing"][str(run)]
    assert any(m.startswith("w2s_qa") for m in missing) and any(m.startswith("cascade") for m in missing)
    text = Path(report["markdown"]).read_text()
    assert "1.5B -> 3B" in text and "| Alice | 10 | 60.0 |" in text and "0.50" in text
    assert "Missing:" in text and "w2s_qa" in text
    assert "parse-rate collapse (30.0%)" in text and "collapse" not in rows["alice"]["note"]
    with open(report["csv"]) as handle:
        table = list(csv.DictReader(handle))
    assert [r["method"] for r in table] == ["weak", "ceiling", "zero_shot", "w2s_cot", "alice"]
    assert table[-1]["seeds"] == "0.6" and table[-1]["accuracy_sd"] == ""
    # Single runs: one seed pair; questions are the units (no templates named); gate and noise floor -> null.
    top = json.loads(Path(report["json"]).read_text())
    assert set(top) == {"schema", "command", "git_commit", "versions", "groups"} and "torch" in top["versions"]
    result = top["groups"][0]
    assert result["gate"] is None and result["noise_floor"] is None
    assert result["setting"]["teacher_label"] == "1.5B" and set(result["methods"]) == set(rows)
    pair = next(p for p in result["paired"] if (p["a"], p["b"]) == ("alice", "zero_shot"))
    assert abs(pair["delta"] + 0.2) < 1e-9 and pair["delta_sd"] is None and "over questions" in pair["test"]
    assert (pair["clusters_a_better"], pair["clusters_b_better"], pair["clusters"]) == (0, 2, 10)
    assert pair["p_clusters"] == stats.wilcoxon([-1.0, -1.0]).pvalue and pair["per_seed"][0]["b_better"] == 2
    assert abs(float(next(r for r in table if r["method"] == "alice")["pgr"]) - 0.5) < 1e-9
    assert Path(report["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert Path(report["pdf"]).read_bytes()[:5] == b"%PDF-"


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
    assert "w2s_qa (unreadable eval-w2s-qa.summary.json)" in text
    assert "gsm8k: 1B -> 8B" in text  # a run with no results yet still gets its (empty) section
    assert "report.md" in done.stdout
    with open(sweep / "report.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {r["method"] for r in table} == {"weak", "alice"} and table[1]["pgr"] == ""
    top = json.loads((sweep / "report.json").read_text())
    groups = top["groups"]  # several run folders: one entry each, under the keys a single run has too
    assert set(top) == {"schema", "command", "git_commit", "versions", "groups"}
    assert [g["folder"] for g in groups] == [str(sweep / "runA"), str(sweep / "runB")]
    assert groups[1]["methods"] == {} and groups[0]["paired"] == []


def test_report_script_error_for_missing_folder(tmp_path):
    done = run_script("report.py", str(tmp_path / "nope"), check=False)
    assert done.returncode == 2 and "no such folder" in done.stderr


SEEDED = [f"q{i:02d}" for i in range(20)]


def q(*spans: range) -> set[str]:
    return {SEEDED[i] for span in spans for i in span}


def outcomes(correct: set[str]) -> np.ndarray:
    return np.array([i in correct for i in SEEDED], dtype=float)


def mean_difference(x, y, axis=-1):
    return x.mean(axis) - y.mean(axis)


def direct_bca(a: np.ndarray, b: np.ndarray, samples: int) -> list[float]:
    """The interval the report should give: scipy's BCa paired bootstrap, same data, resamples and seed."""
    result = stats.bootstrap((a, b), mean_difference, paired=True, vectorized=True, n_resamples=samples,
                             method="BCa", random_state=np.random.default_rng(0))
    return [result.confidence_interval.low, result.confidence_interval.high]


def test_paired_statistics_over_seeds(tmp_path):
    run, samples = tmp_path / "run", 1000
    zero_shot = q(range(8))                                     # 0.40, one run
    alice = {0: q(range(6), range(8, 18)), 1: q(range(10))}     # 0.80 and 0.50
    w2s_qa = {0: q(range(4)), 1: q(range(6))}                   # 0.20 and 0.30
    write_eval(run, "weak", q(range(6)), ids=SEEDED)            # 0.30
    write_eval(run, "ceiling", q(range(16)), ids=SEEDED)        # 0.80
    write_eval(run, "zero_shot", zero_shot, ids=SEEDED)
    write_eval(run, "self_training", zero_shot, ids=SEEDED)     # the same outcomes: a degenerate comparison
    for seed in (0, 1):
        write_eval(run, "alice", alice[seed], ids=SEEDED, seed=seed)
        write_eval(run, "w2s_qa", w2s_qa[seed], ids=SEEDED, seed=seed)
    (run / "experiment.json").write_text(json.dumps({"dataset": "arc_challenge", "teacher_label": "T",
                                                     "student_label": "S", "setting": {"seeds": [0, 1]},
                                                     "timings_s": {"eval": 1.0}}))
    gate = {"weak": 0.3, "ceiling": 0.8, "zero_shot": 0.4, "passed": True, "min_gap": 0.1}
    (run / "gate.json").write_text(json.dumps(gate))
    (run / "noise_floor.json").write_text(json.dumps({"outcome_agreement": 0.9, "runs": 2}))

    report = build_report(run, samples=samples)
    result = json.loads(Path(report["json"]).read_text())["groups"][0]
    assert {"setting", "gate", "noise_floor", "methods", "paired"} <= set(result)
    assert result["setting"] == {"seeds": [0, 1]} and result["gate"] == gate
    assert result["noise_floor"] == {"outcome_agreement": 0.9, "runs": 2}
    methods = result["methods"]
    assert {"accuracy", "seeds", "parse_rate", "pgr", "pgr_ci"} <= set(methods["alice"])
    assert methods["alice"]["seeds"] == [0.8, 0.5] and abs(methods["alice"]["accuracy"] - 0.65) < 1e-12
    assert abs(methods["alice"]["accuracy_sd"] - stdev([0.8, 0.5])) < 1e-12
    # PGR from seed-averaged accuracies: (0.65 - 0.3) / (0.8 - 0.3) = 0.7; (0.25 - 0.3) / 0.5 = -0.1.
    assert abs(methods["alice"]["pgr"] - 0.7) < 1e-12 and abs(methods["w2s_qa"]["pgr"] + 0.1) < 1e-12
    low, high = methods["alice"]["pgr_ci"]
    assert low < 0.7 < high
    assert methods["weak"]["pgr"] is None and methods["ceiling"]["pgr_ci"] is None

    paired = {(p["a"], p["b"]): p for p in result["paired"]}
    assert ("zero_shot", "self_training") not in paired and ("self_training", "zero_shot") in paired
    vs_zero = paired[("alice", "zero_shot")]
    # Per seed pair, for reference: the single zero-shot run against each Alice seed. Seed 0: 10 questions only
    # Alice gets right, 2 only zero-shot does; seed 1: 2 and 0.
    seed0, seed1 = vs_zero["per_seed"]
    assert (seed0["seed_a"], seed0["seed_b"], seed1["seed_a"], seed1["seed_b"]) == (0, None, 1, None)
    assert (seed0["a_better"], seed0["b_better"], seed1["a_better"], seed1["b_better"]) == (10, 2, 2, 0)
    assert abs(seed0["delta"] - 0.4) < 1e-12 and abs(seed1["delta"] - 0.1) < 1e-12
    assert seed0["p_mcnemar"] == stats.binomtest(10, 12, 0.5).pvalue and abs(seed0["p_mcnemar"] - 0.0386) < 1e-4
    assert seed1["p_mcnemar"] == stats.binomtest(2, 2, 0.5).pvalue == 0.5
    # Over every seed of both: the seed means' difference, the sd of the per-seed deltas, the interval of a
    # bootstrap over questions and seeds (computed again here, draw by draw), and Wilcoxon over the questions'
    # seed-mean differences.
    assert abs(vs_zero["delta"] - 0.25) < 1e-12 and abs(vs_zero["delta_sd"] - stdev([0.4, 0.1])) < 1e-12
    alice_runs = np.stack([outcomes(alice[0]), outcomes(alice[1])])
    assert np.allclose(vs_zero["ci"], slow_bootstrap([alice_runs, outcomes(zero_shot)[None]], SEEDED, samples))
    assert vs_zero["ci"][0] < 0.25 < vs_zero["ci"][1]
    differences = alice_runs.mean(0) - outcomes(zero_shot)
    assert vs_zero["p_clusters"] == stats.wilcoxon(differences[differences != 0]).pvalue
    assert (vs_zero["clusters_a_better"], vs_zero["clusters_b_better"]) == (10, 2)
    # Both seeded: seed N against seed N.
    vs_qa = paired[("alice", "w2s_qa")]
    assert [(s["seed_a"], s["seed_b"]) for s in vs_qa["per_seed"]] == [(0, 0), (1, 1)]
    assert np.allclose([s["delta"] for s in vs_qa["per_seed"]], [0.6, 0.2]) and abs(vs_qa["delta"] - 0.4) < 1e-12
    # Every difference zero: the interval is the point, the test finds nothing.
    same = paired[("self_training", "zero_shot")]
    assert same["delta"] == 0 and same["ci"] == [0.0, 0.0] and same["p_clusters"] == 1.0

    text = Path(report["markdown"]).read_text()
    assert "| Alice | 20 | 65.0 |" in text and "s0 80.0, s1 50.0" in text
    assert "| Alice | Zero-shot student | +25.0 ± 21.2 |" in text and "s0 0.0386, s1 0.5" in text
    assert "[+0.0, +0.0] | 1 | 0/0 of 20" in text and "Wilcoxon" in text
    assert "Gate (gate.json): passed." in text and "outcome agreement 90.0%" in text
    with open(report["csv"]) as handle:
        table = {r["method"]: r for r in csv.DictReader(handle)}
    assert table["alice"]["seeds"] == "0.8;0.5" and abs(float(table["alice"]["accuracy_sd"]) - stdev([0.8, 0.5])) < 1e-9
    assert Path(report["png"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def slow_bootstrap(arms: list[np.ndarray], clusters: list[str], samples: int, seed: int = 0) -> list[float]:
    """The report's interval of a - b, one resample at a time: draw the clusters (the same for both), then
    each arm's seeds, and take the difference of the accuracies over the drawn questions."""
    rng = np.random.default_rng(seed)
    units = list(dict.fromkeys(clusters))
    members = {u: [i for i, c in enumerate(clusters) if c == u] for u in units}
    counts = rng.multinomial(len(units), [1 / len(units)] * len(units), size=samples)
    seed_counts = [rng.multinomial(len(a), [1 / len(a)] * len(a), size=samples) for a in arms]
    values = []
    for b in range(samples):
        questions = [i for u, k in zip(units, counts[b]) for _ in range(k) for i in members[u]]
        accuracy = [sum(k * arm[s, questions].mean() for s, k in enumerate(sc[b])) / len(arm)
                    for arm, sc in zip(arms, seed_counts)]
        values.append(accuracy[0] - accuracy[1])
    return list(np.percentile(values, [2.5, 97.5]))


def test_intervals_resample_templates(tmp_path):
    """Questions that come in templates: the interval resamples templates (wider than by question when the
    templates differ), and the test runs over templates."""
    ids = [f"gsm_symbolic-t{t:02d}-test-{i:02d}" for t in range(10) for i in range(4)]
    run = tmp_path / "run"
    easy = {i for i in ids if int(i[14:16]) < 5}  # whole templates right or wrong: strongly clustered
    write_eval(run, "zero_shot", set(), ids=ids)
    write_eval(run, "alice", easy, ids=ids)
    for name in ("zero_shot", "alice"):  # eval.py names each question's template
        path = run / f"eval-{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**r, "cluster": f"template {int(r['id'][14:16])}"}) + "\n" for r in rows))
    clustered = {p["a"]: p for p in build_report(run, samples=2000)["paired"]}["alice"]
    assert clustered["clusters"] == 10 and clustered["ci_method"] == "bootstrap over templates and seeds"
    assert (clustered["clusters_a_better"], clustered["clusters_b_better"]) == (5, 0)
    assert clustered["p_clusters"] == stats.wilcoxon([1.0] * 5).pvalue
    labels = [f"template {int(i[14:16])}" for i in ids]
    alice = np.array([[i in easy for i in ids]], dtype=float)
    assert np.allclose(clustered["ci"], slow_bootstrap([alice, np.zeros((1, 40))], labels, 2000))
    for name in ("zero_shot", "alice"):  # the same rows without templates: questions are the units, a narrower interval
        path = run / f"eval-{name}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "cluster"}) + "\n" for r in rows))
    plain = {p["a"]: p for p in build_report(run, samples=2000)["paired"]}["alice"]
    assert plain["clusters"] == 40 and plain["ci"][1] - plain["ci"][0] < clustered["ci"][1] - clustered["ci"][0]


def test_open_answers_reported_under_both_scoring_rules(tmp_path):
    """eval.py re-scores saved open answers (no model) under --scoring paper and strict; the summaries carry
    both rules' accuracy and report.py shows them side by side, naming the rule behind the main table."""
    data = tmp_path / "qa.jsonl"
    golds = ["Paris", "Rome", "Berlin", "Madrid"]
    data.write_text("".join(json.dumps({"id": f"q{i}", "question": f"Capital {i}?", "answer": g, "split": "test"})
                            + "\n" for i, g in enumerate(golds)))
    replies = {  # per method: replies to q0..q3
        "weak": ["The answer is Paris.", "The answer is Milan.", "no idea", "The answer is Lisbon."],
        "ceiling": ["The answer is Paris.", "The answer is Rome.", "The answer is Berlin.", "Madrid"],
        "alice": ["It could be Paris, but the answer is Lyon.", "The answer is the Rome.",
                  "Berlin or Bonn? The answer is Bonn.", "The answer is Madrid."],
    }
    run = tmp_path / "run"
    for rule in ("paper", "strict"):
        for method, texts in replies.items():
            saved = tmp_path / f"{method}.jsonl"
            saved.write_text("".join(json.dumps({"id": f"q{i}", "response": t}) + "\n" for i, t in enumerate(texts)))
            run_script("eval.py", "--data", str(data), "--answer-type", "text", "--scoring", rule,
                       "--predictions", str(saved), "--output", str(tmp_path / rule / f"eval-{method}.jsonl"))
    alice = json.loads((tmp_path / "strict" / "eval-alice.summary.json").read_text())
    assert alice["scoring"] == "strict" and alice["accuracy"] == 0.5
    assert alice["accuracy_by_rule"] == {"paper": 1.0, "strict": 0.5}
    rows = [json.loads(line) for line in (tmp_path / "paper" / "eval-alice.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, True, True, True]
    assert [r["correct_by_rule"]["strict"] for r in rows] == [False, True, False, True]

    run.mkdir()
    for name in ("weak", "ceiling", "alice"):
        for suffix in (".jsonl", ".summary.json"):
            (run / f"eval-{name}{suffix}").write_text((tmp_path / "paper" / f"eval-{name}{suffix}").read_text())
    report = build_report(run, samples=200)
    assert "the table's accuracy uses the `paper` rule" in report["text"]
    assert "| Alice | 100.0 | 50.0 |" in report["text"]
    assert "| Weak teacher (ground truth) | 25.0 | 25.0 |" in report["text"]
    methods = json.loads((run / "report.json").read_text())["groups"][0]["methods"]
    assert methods["alice"]["scoring"] == "paper"
    assert methods["alice"]["accuracy_by_rule"] == {"paper": 1.0, "strict": 0.5}
    with open(run / "report.csv") as handle:
        table = {r["method"]: r for r in csv.DictReader(handle)}
    assert (table["alice"]["accuracy_paper"], table["alice"]["accuracy_strict"]) == ("1.0", "0.5")
    # A choice-answer run folder (no rules to compare) says nothing about scoring.
    write_eval(tmp_path / "arc", "weak", set(IDS[:4]))
    assert "Scoring:" not in build_report(tmp_path / "arc", samples=200)["text"]


def test_figure_shows_the_paired_differences_and_the_gate(tmp_path):
    """The figure's first panel is Alice minus each baseline with its interval, the gate's verdict heads the
    row, there is no chance line where guessing scores nothing, and an off-scale PGR is drawn at the edge."""
    run = tmp_path / "run"
    write_eval(run, "weak", set(IDS[:4]))
    write_eval(run, "ceiling", set(IDS[:5]))
    write_eval(run, "zero_shot", set())                    # PGR -4: off the axis
    write_eval(run, "alice", set(IDS[:6]))
    (run / "gate.json").write_text(json.dumps({"passed": False, "chance": 0.0, "overridden": True,
                                               "checks": {"gap_at_least_min": False, "weak_above_chance": True}}))
    groups = [compute(g, 200, 0) for g in collect(run)]
    fig = figure(groups)
    differences, accuracy, pgr_axis = fig.axes[:3]
    assert differences.get_title() == "paired differences"
    assert [t.get_text() for t in differences.get_yticklabels()] == ["Alice − Zero-shot student"]
    assert "validity gate NOT passed (gap at least min); arms run anyway" in accuracy.get_title()
    assert not [line for line in accuracy.get_lines() if "chance" in str(line.get_label())]
    assert pgr_axis.get_ylim()[0] > -1.1 and any(t.get_text() == "-4.00" for t in pgr_axis.texts)


def test_missing_lists_only_what_the_run_set_out_to_evaluate(tmp_path):
    """A run's arms (experiment.json's settings) decide what is missing: the demo runs no controls and a
    run without a mid model no cascade, so neither is reported missing; an arm asked for and absent is."""
    run = tmp_path / "run"
    for method in ("weak", "ceiling", "zero-shot", "alice", "w2s-cot"):
        write_eval(run, method, set(IDS[:5]))
    (run / "experiment.json").write_text(json.dumps({"dataset": "arc_challenge", "settings": {
        "arms": ["alice", "w2s_cot", "w2s_qa", "self_training"], "cascade": True, "midlevel": None}}))
    missing = compute(collect(run)[0]).missing
    assert missing == ["w2s_qa (no eval-w2s_qa.summary.json)", "self_training (no eval-self_training.summary.json)"]
