"""Which runs share a job (mawt/studies/batches.py): the seeds of one config, in chunks, by seed."""

import pytest

from mawt.studies.batches import batch_id, eval_batch_id, train_batches


def _run(depth, seed, lr=3e-3):
    return {"mawt": {"depth": depth}, "train": {"seed": seed, "learning_rate": lr}}


def test_a_configs_seeds_share_a_batch_in_chunks_by_seed():
    runs = {f"d4s{s}": _run(4, s) for s in (5, 0, 3, 1, 2)}
    runs |= {f"d8s{s}": _run(8, s) for s in (1, 0)}
    runs["d4lr"] = _run(4, 0, lr=1e-2)  # another config (not the seed): a batch of its own
    batches = train_batches(runs, size=2)
    members = sorted(batches.values())
    assert members == sorted([["d4s0", "d4s1"], ["d4s2", "d4s3"], ["d4s5"], ["d8s0", "d8s1"], ["d4lr"]])
    assert all(batch_id(m) == b for b, m in batches.items())
    assert sorted(r for m in members for r in m) == sorted(runs)  # every run in exactly one batch
    one = train_batches(runs, size=1)
    assert sorted(one.values()) == sorted([r] for r in runs)


def test_batch_ids_change_with_their_members():
    runs = {f"s{s}": _run(4, s) for s in range(3)}
    (before,) = train_batches(runs, size=8)
    (after,) = train_batches({**runs, "s3": _run(4, 3)}, size=8)  # a seed more: another batch
    assert before != after and batch_id(["a", "b"]) != batch_id(["b", "a"]) != batch_id(["a", "b"], "eval")


def test_an_eval_batch_is_its_runs_under_one_eval_config():
    runs = ["s0", "s1"]
    assert eval_batch_id("ev1", runs) == eval_batch_id("ev1", list(runs))
    assert len({eval_batch_id("ev1", runs), eval_batch_id("ev2", runs), eval_batch_id("ev1", ["s0"]),
                batch_id(runs)}) == 4  # another eval config, other runs, a train batch: all different ids


def test_seeds_per_job_below_one_is_refused():
    with pytest.raises(ValueError, match="seeds_per_job=0"):
        train_batches({"a": _run(4, 0)}, size=0)


def test_the_longest_batches_get_the_highest_priority():
    """Graham's LPT order by what a run trains: the micro run's benchmark files order them all D=4 (140 s) >
    all D=1 (130 s) > last:2 D=4 (92 s) > last D=8 (60 s) > last D=4 (50 s) > mawt D=2 (22 s) > half steps (19 s)."""
    from mawt.studies.batches import batch_priority

    def cfg(trainable, depth, steps=100):
        return {"trainable": trainable, "mawt": {"depth": depth}, "train": {"steps": steps, "seed": 0}}

    order = [cfg("all", 4), cfg("all", 1), cfg("last:2", 4), cfg("last", 8), cfg("last", 4), cfg("mawt", 2),
             cfg("last", 1, steps=50)]
    priorities = [batch_priority([c] * 12) for c in order]
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) == len(priorities)
    assert batch_priority([cfg("last", 4)] * 6) * 2 == batch_priority([cfg("last", 4)] * 12)
