"""The stages of the method, one module per stage; each script at the top of the checkout parses its
config and calls its stage function here.

    common               what the stages share: file names, a backend started only when needed, the
                         resume-or-generate pass over a list of examples
    cot_generate_filter  stage 1: the base teacher's step-by-step answers, the correct ones kept
    uncertainty          stage 3: the trained teacher's K samples per question, clustered; the summarizer's
                         statement of what it is unsure about
    student_generate     stages 4-5: the student's zero-shot answers, then its proactive answers (its
                         training rows)
    train                stages 2 and 6, and the trained baselines (train.py): the settings, whose defaults are
                         the paper's recipe, and the run around alice/training.py (rows, output folder,
                         manifest, resuming)
    w2s_labels           the original W2S baselines: the trained teacher's labels for the student pool
    evaluate             eval.py: greedy accuracy on the evaluation split; re-scoring saved responses
    cascade              stage 7: uncertainty, student_generate and train once per rung of a ladder, each on its
                         part of the student pool
    experiment           the whole comparison for one dataset and model pair, as a table of steps, then the
                         report

Nothing is imported here, so ``import alice.stages.common`` loads only what that module needs.
"""
