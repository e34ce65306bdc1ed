"""`vzframe model build-toy DIR --game games.X`: a toy base model for any game with a teacher,
with held-out figures beside the weights; refused, before any work, for a game without a
teacher or pictures nobody can describe. And a user's own game (the plugin template's) stays
learnable: a toy model built for it in under two minutes answers validly far more often than
the random ``tiny`` model on the same held-out games."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from plugins.toy_world.build import TOY_SHAPE, WarmStart, build_toy
from plugins.toy_world.heldout import HELDOUT_SEED, heldout_figures
from plugins.toy_world.targets import CHECK_QUESTION, caption_examples, check_examples, claim_words, teacher_games
from plugins.toy_world.world import toy_world
from vzframe.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "examples" / "plugin-template"
PICK = "vzframe_describe_pick"  # the template's module, loaded by module path (not installed)
FIGURES = ("valid", "clue_true", "acc", "na")


@pytest.fixture
def one_thread():
    """Heavy tests run on one thread: on a shared 2-core machine two OpenMP threads that wait
    for each other at every barrier run several times slower than one."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def template(monkeypatch):
    monkeypatch.syspath_prepend(str(TEMPLATE))
    return PICK


def _pairs(stream, n: int) -> list[tuple]:
    return [(o.stage, o.role, o.prompt_text(), tuple(i.id for i in o.images), t) for o, t in itertools.islice(stream, n)]


def test_the_targets_are_the_same_stream_for_a_seed():
    world = toy_world("games.spy")
    a, b = (_pairs(teacher_games(world, 3, clue_share=0.4), 60) for _ in range(2))
    assert a == b and a != _pairs(teacher_games(world, 4, clue_share=0.4), 60)
    assert {s for s, *_ in a} == {"clue", "decision"}
    for stage in ("clue", "decision"):  # clue_share thins the stage clue_stage names, whatever its name
        kept = {s for s, *_ in _pairs(teacher_games(world, 3, clue_share=0.0, clue_stage=stage), 40)}
        assert kept == {"clue", "decision"} - {stage}
    captions = _pairs(caption_examples(world, 3), 40)
    assert captions == _pairs(caption_examples(world, 3), 40)
    answers = [t for *_, t in captions]
    assert all(t.startswith("<think>") and ("<answer>I see a" in t or "blank" in t) for t in answers)


def _claim(observation) -> str:
    text = observation.messages[0]["content"][1]["text"]
    head, tail = CHECK_QUESTION.split("{claim}")
    assert text.startswith(head) and tail in text
    return text[len(head) : text.index(tail)]


def test_check_examples_ask_about_claims_labelled_by_the_picture_itself():
    """A check's answer is "yes" exactly when its claim names one of the picture's own phrases
    (or a word of one); blank pictures: always "no"; true and false claims about equally often,
    one-word and whole-phrase claims in the share asked, false phrases often near misses."""
    world = toy_world("games.spy")
    source = world.source(3 + 40_000)
    pairs = list(itertools.islice(check_examples(world, 3, words=0.5), 400))
    assert [t for _, t in pairs] == [t for _, t in itertools.islice(check_examples(world, 3, words=0.5), 400)]
    kinds: dict[str, list[bool]] = {}
    near = 0
    for observation, target in pairs:
        assert observation.stage == "check" and len(observation.images) == 1
        answer = target.split("<answer>")[1].split("</answer>")[0]
        assert answer in ("yes", "no")
        think = target.split("<think>")[1].split("</think>")[0]  # the claim again, then the verdict
        assert think.endswith(f" {answer}") and think.removesuffix(f" {answer}") in _claim(observation)
        claim, picture = _claim(observation), observation.images[0]
        if picture.meta.get("blank"):
            assert answer == "no" and picture.image.getextrema() == ((255, 255), (255, 255), (255, 255))
            kinds.setdefault("blank", []).append(False)
            continue
        phrases = source.describe(picture)
        if claim.startswith("There is something "):
            true = claim.removeprefix("There is something ").rstrip(".") in claim_words(phrases)
            kind = "word"
        else:
            stated = claim.removeprefix("There is ").rstrip(".")
            true = stated in phrases
            near += not true and bool(set(claim_words((stated,))) & set(claim_words(phrases)))
            kind = "phrase"
        assert (answer == "yes") == true, (claim, phrases, answer)
        kinds.setdefault(kind, []).append(true)
    assert {k: len(v) for k, v in kinds.items()}.keys() == {"blank", "word", "phrase"}
    assert 0.05 < len(kinds["blank"]) / len(pairs) < 0.16
    assert 0.4 < len(kinds["word"]) / (len(kinds["word"]) + len(kinds["phrase"])) < 0.6
    for kind in ("word", "phrase"):
        assert 0.35 < sum(kinds[kind]) / len(kinds[kind]) < 0.65, kind
    assert near > len(kinds["phrase"]) / 8
    words_only = [_claim(o) for o, _ in itertools.islice(check_examples(world, 3, words=1.0), 50)]
    assert all(c.startswith("There is something ") for c in words_only)


def test_the_look_stage_trains_the_vision_tower_and_later_stages_keep_it(tiny_model_dir, one_thread):
    """The look stage changes the vision tower and nothing else; the caption, game and fine
    stages then train the language model and leave the vision tower as the look stage left it."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from plugins.toy_world.build import look, supervised

    world = toy_world("games.spy")
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    settings = WarmStart(look_steps=6, look_batch=4, look_pool=12, caption_steps=2, game_steps=2, batch_size=2, fine_steps=2,
                         fine_batch=2, warmup_steps=0, check_steps=3, check_word_steps=1, check_replay=2)  # fmt: skip
    state = lambda: {k: v.clone() for k, v in model.state_dict().items()}  # noqa: E731
    vision = lambda k: k.startswith("model.visual.")  # noqa: E731
    before = state()
    history = look(model, processor, settings, world, log=lambda _: None)
    looked = state()
    changed = {k for k in before if not torch.equal(before[k], looked[k])}
    assert changed and all(vision(k) for k in changed), sorted(changed)[:5]
    assert [h["stage"] for h in history] == ["look"] and history[-1]["step"] == 6
    stages = [h["stage"] for h in supervised(model, processor, settings, world, log=lambda _: None)]
    assert list(dict.fromkeys(stages)) == ["caption", "check-words", "check", "game", "fine"]
    after = state()
    changed = {k for k in after if not torch.equal(looked[k], after[k])}
    assert changed and not any(vision(k) for k in changed), sorted(k for k in changed if vision(k))[:5]
    assert all(p.requires_grad for p in model.parameters())  # a run trains the whole model


def test_a_source_that_describes_nothing_is_refused_by_the_look_stage(tiny_model_dir, monkeypatch):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from plugins.toy_world.build import look

    world = toy_world("games.spy")
    monkeypatch.setattr(world.source_cls, "describe", lambda self, item: ())
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir, dtype=torch.float32)
    with pytest.raises(ConfigError, match="described none of 4 pictures"):
        look(model, AutoProcessor.from_pretrained(tiny_model_dir), WarmStart(look_steps=1, look_pool=4), world)


def test_a_game_without_a_teacher_is_refused_before_any_work(tmp_path, monkeypatch):
    (tmp_path / "untaught_game.py").write_text(
        "from vzframe.hookspecs import hookimpl\n"
        "from games.odd_one_out import OddOneOutGame\n\n"
        "class Untaught(OddOneOutGame):\n"
        "    name = 'untaught'\n"
        "    teacher = None\n\n"
        "@hookimpl\n"
        "def register_games(register):\n"
        "    register(Untaught)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"game 'untaught' has no teacher.*docs/plugins.md 'A teacher'"):
        build_toy(tmp_path / "model", game="untaught_game")
    assert not (tmp_path / "model").exists()


def test_pictures_that_cannot_be_described_are_refused_naming_those_that_can(tmp_path):
    with pytest.raises(ConfigError, match=r"image source 'folder' cannot describe.*charts, clevr, clevr_toy"):
        build_toy(tmp_path / "model", game="games.spy", images="folder")
    with pytest.raises(ConfigError, match="Unknown image source 'nope'"):
        build_toy(tmp_path / "model", images="nope")
    with pytest.raises(ConfigError, match="heldout_games"):
        WarmStart(heldout_games=1)
    with pytest.raises(ConfigError, match=r"check_word_steps \(5\) is part of check_steps \(4\)"):
        WarmStart(check_steps=4, check_word_steps=5)
    assert not (tmp_path / "model").exists()


def test_build_toy_command_writes_a_loadable_model_with_held_out_figures(tmp_path, capsys, one_thread):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vzframe.cli import main

    out = tmp_path / "toy"
    args = ["model", "build-toy", str(out), "--game", "games.spy", "--look-steps", "2", "--caption-steps", "2", "--game-steps", "2", "--fine-steps", "2", "--heldout-games", "4",
            "--check-steps", "2", "--check-word-steps", "1", "--check-replay", "2"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "held-out figures: 4 games of spy" in printed and f"model={out}" in printed
    assert not (out / "vzframe-tiny.json").exists()  # the directory has only the toy stamp
    stamp = json.loads((out / "vzframe-toy.json").read_text())
    assert stamp["game"] == "games.spy" and stamp["image_source"] == "clevr_toy"
    assert (stamp["warm_start"]["caption_steps"], stamp["warm_start"]["game_steps"], stamp["warm_start"]["fine_steps"]) == (2, 2, 2)
    assert [h["stage"] for h in stamp["history"]] == ["look", "caption", "check-words", "check", "game", "fine"]
    assert {"tokenizer", "look", "caption", "check-words", "check", "game", "fine", "heldout"} <= set(stamp["seconds"])
    assert stamp["probe_formats"] == ["clevr.verify"]  # the check stage asks in that probe's format
    heldout = stamp["heldout"]
    assert heldout["games"] == 4 and heldout["seed"] == HELDOUT_SEED and heldout["temperature"] == 0.8
    for player in ("model", "teacher"):
        figures, stderr = heldout[player]["figures"], heldout[player]["stderr"]
        assert set(FIGURES) <= set(figures) and set(FIGURES) <= set(stderr), player
        assert all(0.0 <= figures[k] <= 1.0 and stderr[k] >= 0.0 for k in FIGURES)
    assert heldout["teacher"]["figures"]["valid"] == 1.0 and heldout["teacher"]["figures"]["clue_true"] == 1.0
    model = AutoModelForImageTextToText.from_pretrained(out)
    assert model.config.text_config.num_hidden_layers == TOY_SHAPE.layers
    assert AutoProcessor.from_pretrained(out).tokenizer.convert_tokens_to_ids("<|image_pad|>") == model.config.image_token_id


def test_the_plugin_template_game_is_learnable_with_its_teacher(tmp_path, template, tiny_model_dir, one_thread):
    """A very small build (60 game steps of 16, no other stage, no check replays; about 1.5 minutes on 2 busy
    cores) against the random ``tiny`` model, on the same 32 held-out games. Measured: valid
    answers 0.92 ± 0.04 against 0.00 ± 0.00."""
    settings = WarmStart(look_steps=0, caption_steps=0, game_steps=60, fine_steps=0, warmup_steps=5, clue_share=1.0, heldout_games=32,
                         check_steps=0, check_word_steps=0, check_replay=0)  # fmt: skip
    out = build_toy(tmp_path / "pick", settings, game=template, log=lambda _: None)
    built = json.loads((out / "vzframe-toy.json").read_text())["heldout"]
    tiny = heldout_figures(tiny_model_dir, game=template, games=32, teacher=False)
    assert (built["seed"], built["games"]) == (tiny["seed"], tiny["games"])  # the same games
    ours, theirs = built["model"], tiny["model"]
    margin = ours["figures"]["valid"] - theirs["figures"]["valid"]
    noise = math.hypot(ours["stderr"]["valid"], theirs["stderr"]["valid"])
    assert margin > max(3 * noise, 0.3), (ours, theirs)
    assert built["teacher"]["figures"]["acc"] > 0.9  # the teacher picks right: there is something to learn
