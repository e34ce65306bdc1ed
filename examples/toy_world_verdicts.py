"""How well a toy model follows the teacher's checked votes (docs/toy-world.md "Why the
check stage"), teacher-forced: for the votes of games the teacher plays in every seat, the share
of the reasoning's verdicts ("yes"/"no" after each clue) the model puts more probability on
than on the other word, the same for the "no" verdicts alone (the clues that do not fit), and
the share of answers whose first token it ranks first given the teacher's own reasoning.

    python examples/toy_world_verdicts.py plugins/toy_world/model [--votes 120] [--seed 4242] [--game games.spy]

The games are the build's teacher stream (``targets.teacher_games``) on pictures seeded
``--seed``, which no build uses (the builds use 0, 10000 and 20000).
"""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a toy model directory (vzframe model build-toy)")
    parser.add_argument("--game", default="games.spy", help="the game plugin the model was built for")
    parser.add_argument("--votes", type=int, default=120)
    parser.add_argument("--seed", type=int, default=4242)
    args = parser.parse_args()

    import torch
    from transformers import AutoProcessor

    from plugins.toy_world.targets import teacher_games
    from plugins.toy_world.world import toy_world
    from vzframe.train.loss import collate
    from vzframe.train.trainer import load_model
    from vzframe.types import Sample

    processor = AutoProcessor.from_pretrained(args.model)
    tokenizer = processor.tokenizer
    model = load_model(args.model, bf16=False).eval()
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    yes, no = (tokenizer.encode(f" {w}", add_special_tokens=False) for w in ("yes", "no"))
    if len(yes) != 1 or len(no) != 1:
        raise SystemExit(f"{args.model}: ' yes' and ' no' are not one token each; this model was not built with checked votes.")
    stream = teacher_games(toy_world(args.game), args.seed, clue_share=0.0)
    counts = {"verdicts": 0, "verdicts_right": 0, "no": 0, "no_right": 0, "answers": 0, "answers_right": 0}
    with torch.no_grad():
        while counts["answers"] < args.votes:
            observation, target = next(stream)
            if observation.stage != "decision":
                continue
            ids = [*tokenizer.encode(target, add_special_tokens=False), end]
            batch = collate(processor, [Sample(observation, tuple(ids), 1.0, 0, 0)], tokenizer.pad_token_id)
            logits = model(**{k: v for k, v in batch.items() if k != "completion_mask"}).logits[0]
            start = logits.shape[0] - len(ids)  # the completion fills the last positions
            tokens = tokenizer.convert_ids_to_tokens(ids)
            for i, token_id in enumerate(ids):
                if token_id in (yes[0], no[0]):
                    scores = logits[start + i - 1]
                    said = yes[0] if scores[yes[0]] > scores[no[0]] else no[0]
                    counts["verdicts"] += 1
                    counts["verdicts_right"] += said == token_id
                    counts["no"] += token_id == no[0]
                    counts["no_right"] += token_id == no[0] and said == token_id
            answer = next(i + 2 for i in range(len(tokens) - 1) if tokens[i] == "answer" and tokens[i + 1] == ">")
            counts["answers"] += 1
            counts["answers_right"] += int(logits[start + answer - 1].argmax()) == ids[answer]
    share = lambda k: counts[f"{k}_right"] / max(counts[k], 1)  # noqa: E731
    print(f"{args.model}: {counts['answers']} teacher votes (seed {args.seed}), teacher-forced")
    print(f"verdicts right {share('verdicts'):.3f} ({counts['verdicts']}), 'no' verdicts right {share('no'):.3f} "
          f"({counts['no']}), answer right given the teacher's reasoning {share('answers'):.3f}")


if __name__ == "__main__":
    main()
