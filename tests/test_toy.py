"""The toy world: its teacher (targets from scene graphs), the warm-start build, and the
shipped base model, which must speak the spy game's language before any self-play."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random

import pytest

from games.spy.game import SpyGame
from plugins.toy_world.build import (
    BLANK_CLUE,
    TOY_IMAGES,
    TOY_MODEL_DIR,
    TOY_SHAPE,
    WarmStart,
    build_toy,
    clue_target,
    misfits,
    teacher_games,
    vote_target,
)
from vzframe.parsing import extract_answer

RED_CUBE, BLUE_SPHERE = {"color": "red", "shape": "cube"}, {"color": "blue", "shape": "sphere"}


def test_a_clue_names_an_object_of_the_scene_not_yet_named():
    rng = random.Random(0)
    for _ in range(20):
        assert extract_answer(clue_target(rng, [RED_CUBE, BLUE_SPHERE], ["There is a red cube."])) == "There is a blue sphere."
    assert extract_answer(clue_target(rng, [RED_CUBE], ["There is a red cube."])) == "There is a red cube."


def test_a_blank_picture_is_admitted_or_hidden_about_half_the_time():
    rng = random.Random(0)
    answers = [extract_answer(clue_target(rng, None, [])) for _ in range(400)]
    admitted = answers.count(BLANK_CLUE) / len(answers)
    assert 0.4 < admitted < 0.6
    assert all(a == BLANK_CLUE or a.startswith("There is a ") for a in answers)


def test_the_vote_names_the_one_clue_that_does_not_fit():
    scene = [RED_CUBE, BLUE_SPHERE]
    clues = [(1, "There is a red cube."), (2, BLANK_CLUE), (3, "There is a blue sphere."), (4, "There is a red cube.")]
    assert misfits(clues, scene, voter=1) == [2]
    assert extract_answer(vote_target(clues, scene, voter=1)) == "2"
    fitting = [(1, "There is a red cube."), (2, "There is a blue sphere.")]
    assert extract_answer(vote_target(fitting, scene, voter=1)) == "N/A"
    two_odd = [(2, BLANK_CLUE), (3, "There is a green cylinder.")]
    assert extract_answer(vote_target(two_odd, scene, voter=1)) == "N/A"
    assert misfits([(1, BLANK_CLUE)], scene, voter=1) == []  # a voter never suspects itself


def test_teacher_games_are_real_games_the_teacher_plays_by_the_rules():
    pairs = teacher_games(seed=3)
    votes = []
    for _ in range(11 * 30):  # 30 games of 4 players, 2 clue rounds
        obs, target = next(pairs)
        if obs.stage == "decision":
            votes.append(extract_answer(target))
        elif obs.role == "citizen":
            scene = {f"There is a {o['color']} {o['shape']}." for o in obs.images[0].meta["objects"]}
            assert extract_answer(target) in scene
        else:
            assert obs.images[0].meta.get("blank")
    assert len(votes) == 90 and all(v == "N/A" or v in "1234" for v in votes)
    # the citizens of a game see one scene and the same clues: they agree
    assert all(len(set(votes[i : i + 3])) == 1 for i in range(0, 90, 3))
    assert votes.count("N/A") < 9  # a spy whose every clue fits the scene by chance is rare


@pytest.mark.slow
def test_the_build_is_deterministic_and_loads(tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    settings = WarmStart(caption_steps=2, game_steps=2, batch_size=2, warmup_steps=1)
    a = build_toy(tmp_path / "a", settings, log=lambda _: None)
    b = build_toy(tmp_path / "b", settings, log=lambda _: None)
    digest = lambda p: hashlib.sha256((p / "model.safetensors").read_bytes()).hexdigest()  # noqa: E731
    assert digest(a) == digest(b)
    stamp = json.loads((a / "vzframe-toy.json").read_text())
    assert not (a / "vzframe-tiny.json").exists()  # the shipped directory has only the toy stamp
    assert stamp["warm_start"]["game_steps"] == 2 and stamp["images"] == TOY_IMAGES
    model = AutoModelForImageTextToText.from_pretrained(a)
    assert model.config.text_config.num_hidden_layers == TOY_SHAPE.layers
    assert AutoProcessor.from_pretrained(a).tokenizer.convert_tokens_to_ids("<|image_pad|>") == model.config.image_token_id


@pytest.mark.slow
def test_build_toy_command_writes_a_model_with_its_budget(tmp_path, capsys):
    from vzframe.cli import main

    assert main(["model", "build-toy", str(tmp_path / "toy"), "--caption-steps", "1", "--game-steps", "1"]) == 0
    stamp = json.loads((tmp_path / "toy" / "vzframe-toy.json").read_text())
    assert (stamp["warm_start"]["caption_steps"], stamp["warm_start"]["game_steps"]) == (1, 1)
    assert [h["stage"] for h in stamp["history"]] == ["caption", "game"]


@pytest.mark.slow
def test_the_shipped_base_model_speaks_the_game_before_self_play():
    """The warm-start worked: clues are valid descriptions, votes are well-formed, and the
    citizens find the spy more often than a random vote would (1 in 3)."""
    import torch
    from transformers import AutoProcessor

    from games.spy import metrics
    from plugins.clevr import ClevrToySource, ToyConfig
    from vzframe.config import RolloutConfig
    from vzframe.rollout.hf import HFEngine
    from vzframe.rollout.play import ImageCursor, play
    from vzframe.train.trainer import load_model

    stamp = json.loads((TOY_MODEL_DIR / "vzframe-toy.json").read_text())
    assert stamp["warm_start"] == dataclasses.asdict(WarmStart())  # built with the defaults
    engine = HFEngine(load_model(str(TOY_MODEL_DIR), bf16=False).eval(), AutoProcessor.from_pretrained(TOY_MODEL_DIR),
                      RolloutConfig(temperature=1.0, max_new_tokens=32))
    cursor = ImageCursor(ClevrToySource(ToyConfig(), seed=777), rank=0, world=1)
    torch.manual_seed(0)
    episodes = play([SpyGame(None, seed=s, images=cursor.draw) for s in range(24)], engine).episodes
    m = metrics(episodes)
    assert m["clue_valid"] > 0.9 and m["invalid"] < 0.35, m  # measured: 1.0 and 0.11 on 32 games
    assert m["acc"] > 0.45, m  # a random vote finds the spy 1 time in 3; measured 0.67
