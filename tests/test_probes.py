"""Probes (``register_probes``, ``vzframe probe``): held-out items, right answers, linear
parsing, paired figures, a user's labelled set."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vzframe.config import RunConfig, validate
from vzframe.plugins import PluginError, build_registry, make_plugin_manager
from vzframe.probes import PROBE_SEED_BASE, ProbeItem, model_answer, observation, probe_seed, same_answer, words
from vzframe.probes.labelled import LabelledSet, write_jsonl
from vzframe.probes.score import Answer, ProbeSet, answer, choice_logprobs, likelihood, paired, prepare, summary
from vzframe.rollout import Generation

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry():
    return build_registry(make_plugin_manager())


def items_of(registry, name, n=60, source="clevr_toy", seed=0):
    cls = registry.image_sources[source]
    src = cls(validate(cls.Config, {}, "image_source."), seed=probe_seed(name, seed))
    return registry.probes[name].items(src, n, seed)


# ---- the hook --------------------------------------------------------------------------


def test_register_probes_registers_the_shipped_probes_by_name(registry):
    assert {"clevr.exists", "clevr.count", "clevr.attribute", "clevr.verify",
            "charts.value", "charts.largest", "charts.compare"} <= set(registry.probes)  # fmt: skip
    assert registry.owners[("probes", "clevr.verify")] == "plugins.clevr"


def test_register_probes_refuses_a_probe_that_lacks_a_member():
    from vzframe.hookspecs import hookimpl

    class NoScore:
        name, label, format, sources = "half", "Half", "half", ()

        def items(self, source, n, seed):
            return []

    class Whole(NoScore):
        def score(self, item, answer):
            return 0.0

    for bad, missing in ((NoScore(), "score"), (Whole, "an instance")):
        plugin = type("P", (), {"register_probes": hookimpl(lambda self, register, bad=bad: register(bad))})()
        pm = make_plugin_manager()
        pm.register(plugin, name="half_probe")
        with pytest.raises(PluginError, match=f"Plugin 'half_probe': register_probes got .* lacks {missing}"):
            build_registry(pm)


# ---- held out by construction ------------------------------------------------------------


def test_probe_seeds_lie_above_every_run_seed_and_differ_per_probe():
    seeds = {probe_seed(name, s) for name in ("clevr.exists", "clevr.count", "charts.value") for s in (0, 1, 2**24 - 1)}
    assert len(seeds) == 9 and all(PROBE_SEED_BASE <= s < 2**64 for s in seeds)
    RunConfig(seed=PROBE_SEED_BASE - 1)
    with pytest.raises(ValueError):
        RunConfig(seed=PROBE_SEED_BASE)  # the guarantee rests on this bound
    with pytest.raises(ValueError):
        probe_seed("clevr.exists", 2**24)


def test_probe_pictures_are_never_a_runs_pictures(registry, reference):
    """The reference run's pictures (ids and pixels) against every CLEVR probe's, drawn from
    the run's own image source as ``vzframe probe`` draws them."""
    from vzframe.config import load_config
    from vzframe.runtime import resolve

    setup = resolve(load_config(reference / "config.yaml", []))
    trained_on = {im for line in (reference / "episodes.jsonl").read_text().splitlines()
                  for turn in json.loads(line)["turns"] for im in turn["images"]}  # fmt: skip
    assert trained_on
    run_pixels = {hash(setup.image_source.get(i).image.tobytes()) for i in range(40)}
    sets = prepare({n: p for n, p in registry.probes.items() if n.startswith("clevr.")}, n=40, seed=0,
                   sources=registry.image_sources, run_source=setup.image_source)  # fmt: skip
    for s in sets:
        if setup.image_source.name in s.probe.sources:
            assert s.source == setup.image_source.name  # the run's kind of pictures, other seeds
        ids = {item.image.id for item in s.items}
        assert not ids & trained_on
        assert not {hash(item.image.image.tobytes()) for item in s.items} & run_pixels


# ---- the CLEVR and chart probes ask what their pictures answer ---------------------------


def test_clevr_probe_answers_follow_the_scene_graph(registry):
    for item in items_of(registry, "clevr.exists"):
        color, shape = item.question.removeprefix("Is there a ").removesuffix(" in the picture?").split()
        present = any(o["color"] == color and o["shape"] == shape for o in item.image.meta["objects"])
        assert item.answers == (("yes",) if present else ("no",))
    for item in items_of(registry, "clevr.count"):
        objects = item.image.meta["objects"]
        shape = item.question.removeprefix("How many ").removesuffix("s are there?")
        expected = len(objects) if shape == "object" else sum(o["shape"] == shape for o in objects)
        assert item.answers == (str(expected),)
    kinds = set()
    for item in items_of(registry, "clevr.verify"):
        kinds.add(item.kind)
        if item.image.meta.get("blank"):
            assert item.answers == ("no",)
        else:
            said = item.question.split('"There is a ')[1].split('."')[0].split()
            present = any([o["color"], o["shape"]] == said for o in item.image.meta["objects"])
            assert item.answers == (("yes",) if present else ("no",))
    assert kinds == {"true", "decoy", "blank"}
    for item in items_of(registry, "clevr.attribute"):
        assert item.answers[0] in item.choices


def test_chart_probe_answers_follow_the_data(registry):
    for item in items_of(registry, "charts.largest", source="charts", n=30):
        values = item.image.meta["series"][0]["values"]
        assert item.answers == (item.image.meta["categories"][values.index(max(values))],)
    answers = [item.answers for item in items_of(registry, "charts.compare", source="charts", n=60)]
    assert 15 < answers.count(("yes",)) < 45  # both answers, roughly half each


def test_probe_items_are_pure_in_the_seed(registry):
    a, b = items_of(registry, "clevr.verify", n=20), items_of(registry, "clevr.verify", n=20)
    assert [(i.id, i.image.id, i.question, i.answers) for i in a] == [(i.id, i.image.id, i.question, i.answers) for i in b]
    other = items_of(registry, "clevr.verify", n=20, seed=1)
    assert not {i.image.id for i in a} & {i.image.id for i in other}


# ---- answers: parsed linearly, compared by words and numbers ------------------------------


def test_model_answers_are_taken_from_the_answer_tag_and_compared_by_meaning():
    assert model_answer("<think>three</think><answer>3</answer>") == ("3", True)
    assert same_answer("Three.", "3") and same_answer("the Grey", "grey") and same_answer("1,500.0", "1500")
    assert not same_answer("yes no", "yes") and not same_answer("", "yes") and not same_answer("31", "3")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_answer_parsing_is_total(text):
    answer_text, _ = model_answer(text)
    same_answer(answer_text, "yes")
    words(text)


def test_a_hostile_completion_is_read_once_and_is_wrong():
    hostile = "<answer>" * 200_000 + "yes" + "</answer>" * 3 + "9" * 100_000
    answer_text, tagged = model_answer(hostile)
    assert tagged and answer_text == "yes"
    assert words("1" * 10_000) == ()  # longer than MAX_ANSWER_CHARS: wrong unread


# ---- scoring and pairing -----------------------------------------------------------------


class Scripted:
    """A scripted answerer (tests the scorer's bookkeeping, not a model): says ``yes`` to odd
    seeds, and records the seeds it was given."""

    per_request_seeds = True

    def __init__(self):
        self.seeds = []

    def generate(self, observations, seeds=None):
        self.seeds += list(seeds)
        return [Generation(f"<answer>{'yes' if s % 2 else 'no'}</answer>", (1,), 1) for s in seeds]


def test_answers_are_scored_per_item_with_the_same_seeds_for_every_model(registry):
    sets = prepare({"clevr.exists": registry.probes["clevr.exists"]}, n=30, seed=0, sources=registry.image_sources)
    first, second = Scripted(), Scripted()
    a, b = answer(first, sets, batch_size=7)["clevr.exists"], answer(second, sets, batch_size=30)["clevr.exists"]
    assert first.seeds == second.seeds and len(set(first.seeds)) == 30
    for item, got, seed in zip(sets[0].items, a, first.seeds):
        assert got.score == (1.0 if ("yes" if seed % 2 else "no") == item.answers[0] else 0.0)
    assert summary(a, sets[0].items)["accuracy"] == sum(x.score for x in a) / 30 and a == b


def test_the_paired_standard_error_is_that_of_the_per_item_changes():
    base = [Answer(str(i), "", "", True, s) for i, s in enumerate([1, 0, 0, 1, 0, 1, 0, 0])]
    trained = [Answer(str(i), "", "", True, s) for i, s in enumerate([1, 1, 0, 1, 1, 1, 0, 1])]
    change, se = paired(base, trained)
    diffs = [0, 1, 0, 0, 1, 0, 0, 1]
    mean = sum(diffs) / 8
    assert change == mean and se == pytest.approx((sum((d - mean) ** 2 for d in diffs) / 7 / 8) ** 0.5)
    with pytest.raises(ValueError, match="not of the same items"):
        paired(base, trained[::-1])


def test_likelihood_picks_the_choice_a_plain_forward_scores_highest(tiny_model_dir, tiny_processor):
    """``--score likelihood`` against log-probabilities computed here, one sequence at a time."""
    import torch

    from vzframe.rollout import encode
    from vzframe.train.trainer import load_model

    model = load_model(str(tiny_model_dir), bf16=False).eval()
    probe = build_registry(make_plugin_manager()).probes["clevr.attribute"]
    items = items_of(build_registry(make_plugin_manager()), "clevr.attribute", n=3)
    got = likelihood(model, tiny_processor, [ProbeSet(probe, items, "clevr_toy", 0)])["clevr.attribute"]
    eos = model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) else eos
    for item, chosen in zip(items, got):
        totals = {}
        for choice in item.choices:
            prompt = encode(tiny_processor, [observation(item)])
            ids = tiny_processor.tokenizer(f"<answer>{choice}</answer>", add_special_tokens=False).input_ids + [eos]
            full = torch.cat([prompt["input_ids"], torch.tensor([ids])], dim=1)
            extra = {k: v for k, v in prompt.items() if k not in ("input_ids", "attention_mask", "mm_token_type_ids")}
            types = torch.cat([prompt["mm_token_type_ids"], torch.zeros(1, len(ids), dtype=torch.long)], dim=1)
            with torch.no_grad():
                logits = model(input_ids=full, attention_mask=torch.ones_like(full), mm_token_type_ids=types, **extra).logits[0]
            logp = torch.log_softmax(logits[-len(ids) - 1 : -1].float(), dim=-1)
            totals[choice] = float(logp[torch.arange(len(ids)), torch.tensor(ids)].sum())
        assert chosen.answer == max(totals, key=totals.get)
        assert chosen.score == (1.0 if chosen.answer in item.answers else 0.0)
        norm = sum(math.exp(v) for v in totals.values())
        assert chosen.p_right == pytest.approx(sum(math.exp(totals[c]) for c in item.answers) / norm, rel=1e-3)
        ids = [tiny_processor.tokenizer(f"<answer>{c}</answer>", add_special_tokens=False).input_ids + [eos] for c in item.choices]
        fast = choice_logprobs(model, tiny_processor, observation(item), ids)  # the prompt run once for all choices
        assert fast == pytest.approx([totals[c] for c in item.choices], rel=1e-4, abs=1e-4)


# ---- a user's labelled set ----------------------------------------------------------------


def test_a_labelled_set_skips_bad_items_with_one_warning_each(tmp_path, registry):
    items = items_of(registry, "clevr.count", n=4)
    dest = write_jsonl(items, tmp_path / "mine.jsonl")
    lines = dest.read_text().splitlines()
    (tmp_path / "mine-images" / "broken.png").write_bytes(b"not a png")
    bad = [
        {"image": "mine-images/none.png", "question": "How many?", "answers": ["2"]},
        {"image": "mine-images/broken.png", "question": "How many?", "answers": ["2"]},
        {"image": "mine-images/00000.png", "question": "How many?", "answers": ["  "]},
        "not an object", "{not json",
    ]  # fmt: skip
    dest.write_text("\n".join(lines + [b if isinstance(b, str) and b.startswith("{") else json.dumps(b) for b in bad]) + "\n")
    warnings = []
    sets = prepare({"set.mine": LabelledSet(dest)}, n=100, seed=0, sources={}, warn=warnings.append)
    assert [i.question for i in sets[0].items] == [i.question for i in items]
    assert [i.answers for i in sets[0].items] == [i.answers for i in items]
    assert len(warnings) == 5 and all("set.mine" in w for w in warnings)
    assert any("line 5" in w and "missing or unreadable" in w for w in warnings)
    assert any("line 6" in w and "missing or unreadable" in w for w in warnings)
    assert any("line 7" in w and "no answer" in w for w in warnings)


def test_a_labelled_row_whose_answers_are_not_text_is_skipped(tmp_path, registry):
    dest = write_jsonl(items_of(registry, "clevr.count", n=1), tmp_path / "mine.jsonl")
    row = json.loads(dest.read_text().splitlines()[0])
    odd = [{**row, "answers": True}, {**row, "answers": {"2": 1}}, {**row, "answers": None, "answer": False}]
    dest.write_text("".join(json.dumps(r) + "\n" for r in [row, *odd]))
    labelled = LabelledSet(dest)
    assert len(labelled.items(None, None, 0)) == 1
    assert labelled.problems == [f"mine.jsonl line {n}: no answer" for n in (2, 3, 4)]


def test_a_saved_dataset_is_a_labelled_set(tmp_path, registry):
    datasets = pytest.importorskip("datasets")
    items = items_of(registry, "clevr.exists", n=3)
    data = datasets.Dataset.from_dict({"image": [i.image.image for i in items], "question": [i.question for i in items],
                                       "answers": [list(i.answers) for i in items]})  # fmt: skip
    data.save_to_disk(str(tmp_path / "saved"))
    got = LabelledSet(tmp_path / "saved").items(None, None, 0)
    assert [(g.question, g.answers) for g in got] == [(i.question, i.answers) for i in items]


# ---- vzframe probe -----------------------------------------------------------------------


def test_probe_command_scores_base_and_each_checkpoint_with_paired_changes(reference, tmp_path, capsys):
    from vzframe.cli import main

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    assert main(["probe", str(run), "--probes", "clevr.exists", "clevr.count", "--items", "6", "--max-new-tokens", "6"]) == 0
    shown = capsys.readouterr().out
    assert "clevr.exists" in shown and "base" in shown and "step 6" in shown
    for step in (4, 6):
        report = json.loads((run / f"probe-step-{step}.json").read_text())
        rows = [json.loads(line) for line in (run / f"probe-step-{step}.items.jsonl").read_text().splitlines()]
        assert report["step"] == step and set(report["probes"]) == {"clevr.exists", "clevr.count"}
        for name, entry in report["probes"].items():
            mine = [r for r in rows if r["probe"] == name]
            base = [r["base"]["score"] for r in mine]
            trained = [r["trained"]["score"] for r in mine]
            assert entry["items"] == len(mine) == 6 and entry["in_warm_start"] is False
            assert entry["base"]["accuracy"] == pytest.approx(sum(base) / 6)
            assert entry["change"] == pytest.approx((sum(trained) - sum(base)) / 6)
    assert json.loads((run / "probe-step-4.json").read_text())["probes"]["clevr.exists"]["base"] == \
        json.loads((run / "probe-step-6.json").read_text())["probes"]["clevr.exists"]["base"]  # fmt: skip


def test_probe_command_on_a_model_directory_with_a_labelled_set(tiny_model_dir, tmp_path, registry, capsys):
    from vzframe.cli import main

    dest = write_jsonl(items_of(registry, "clevr.verify", n=5), tmp_path / "verify.jsonl")
    out = tmp_path / "probe.json"
    code = main(["probe", str(tiny_model_dir), "--probes", "clevr.verify", "--labelled", str(dest), "--items", "5",
                 "--max-new-tokens", "4", "--json", str(out), "--score", "likelihood"])  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["probes"]) == {"clevr.verify", "set.verify"} and "base" not in report["probes"]["set.verify"]
    assert report["probes"]["set.verify"]["trained"]["n"] == 5
    # the same items, read back from disk, get the same answers as the generated probe
    assert report["probes"]["set.verify"]["trained"]["accuracy"] == report["probes"]["clevr.verify"]["trained"]["accuracy"]


def test_auto_scores_vzframe_built_bases_by_likelihood_and_other_models_by_generation(tmp_path, tiny_model_dir):
    from vzframe.probes.command import auto_score

    assert auto_score(ROOT / "plugins/toy_world/model") == "generate"  # its check stage taught clevr.verify's format
    assert auto_score(tiny_model_dir) == "likelihood"  # random weights
    untaught = tmp_path / "untaught"  # a toy base built without the check stage, or before stamps listed formats
    untaught.mkdir()
    for stamp in ({"kind": "toy-world", "probe_formats": []}, {"kind": "toy-world"}):
        (untaught / "vzframe-toy.json").write_text(json.dumps(stamp))
        assert auto_score(untaught) == "likelihood"
    taught = tmp_path / "taught"
    taught.mkdir()
    (taught / "vzframe-toy.json").write_text(json.dumps({"kind": "toy-world", "probe_formats": ["clevr.verify"]}))
    assert auto_score(taught) == "generate"
    assert auto_score(tmp_path) == "generate"  # a pretrained model: no stamp


def test_probe_command_names_what_is_wrong(tmp_path, capsys):
    from vzframe.cli import main

    assert main(["probe", str(tmp_path)]) == 2
    assert "neither a run's output directory" in capsys.readouterr().err
    assert main(["probe", str(ROOT / "plugins/toy_world/model"), "--probes", "clevr.nope"]) == 2
    assert "Unknown probe 'clevr.nope'. Registered: " in capsys.readouterr().err
    assert main(["probe", str(ROOT / "plugins/toy_world/model"), "--labelled", str(tmp_path / "none.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_observation_shows_the_picture_then_the_question():
    item = ProbeItem("x:0", None, "Is it?", ("yes",))
    obs = observation(item)
    assert obs.images == () and obs.messages[0]["content"][-1]["text"].startswith("Is it? Think briefly")


# ---- probe_every: figures beside a step's metrics ---------------------------------------------


def test_probe_every_logs_probe_figures_that_vzframe_probe_reproduces_and_leaves_training_alone(tmp_path):
    from tests.runs import comparable, read_jsonl, vzframe

    common = ["games.spy", "schedulers.hysteresis", "steps=3", "games_per_step=2", "checkpoint_every=3",
              "rollout.max_new_tokens=8", "train.lr=1e-2"]  # fmt: skip
    probed = ["probe_every=2", "probe.names=[clevr.verify,clevr.attribute]", "probe.items=6", "probe.score=likelihood"]
    for name, extra in (("plain", []), ("probed", probed)):
        result = vzframe("run", *common, *extra, f"output_dir={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-3000:]
    plain, logged = read_jsonl(tmp_path / "plain" / "metrics.jsonl"), read_jsonl(tmp_path / "probed" / "metrics.jsonl")
    strip = [{k: v for k, v in row.items() if not k.startswith("probe/")} for row in logged]
    assert comparable(strip) == comparable(plain)  # probing draws no random number the run uses
    assert [sorted(k for k in row if k.startswith("probe/")) for row in logged] == [
        [], ["probe/clevr.attribute", "probe/clevr.verify"], ["probe/clevr.attribute", "probe/clevr.verify"]]
    result = vzframe("probe", str(tmp_path / "probed"), "--step", "3", "--probes", "clevr.verify", "clevr.attribute",
                     "--items", "6", "--score", "likelihood")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "probed" / "probe-step-3.json").read_text())
    for name in ("clevr.verify", "clevr.attribute"):
        assert logged[2][f"probe/{name}"] == pytest.approx(report["probes"][name]["trained"]["accuracy"])


def test_a_probe_that_never_asks_stops_and_is_skipped_with_a_warning(registry):
    from vzframe.probes import GeneratedProbe

    class Picky(GeneratedProbe):
        name = format = label = "picky.never"
        sources = ("clevr_toy",)

        def ask(self, picture, rng, source):
            self.seen = getattr(self, "seen", 0) + 1
            return None

    picky, warnings = Picky(), []
    assert prepare({"picky.never": picky}, n=3, seed=0, sources=registry.image_sources, warn=warnings.append) == []
    assert picky.seen == 50 * 3 + 100  # gave up, did not loop forever
    assert warnings == ["probe 'picky.never' has no item to score; skipped"]
