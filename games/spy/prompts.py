"""Every string the spy game shows a model. Edit the wording here; the game only fills it in.
The clue-stage lines it shares with Odd One Out (``PLAYER_LINE``, ``CLUES_HEADER``,
``CLUE_TASK``, ...) live in ``games.clue_vote``.

The phrasing follows the reference code's prompts: the player number, "Your role: SPY (you
have the different picture)" / "Your role: NOT SPY", the public clues, the player's own
earlier reasoning, then the task with its exact answer format.
"""

from __future__ import annotations

import re

RULES = (
    'You are playing the picture game "Who is the Spy?" with {num_players} players, numbered '
    "1 to {num_players}. {num_citizens} players are citizens and all see the same picture; one "
    "player is the spy and sees a different picture. The game has {clue_rounds} clue round(s): "
    "players speak in turn, each giving a one-sentence clue about their picture, and every clue "
    "is seen by all players. Your reasoning is private: nobody else sees it. {decision}"
)
DECISION_RULE = {
    "vote": "After the clues, every citizen votes for the player they believe is the spy; the spy does not vote.",
    "judge": "After the clues, a judge who sees the citizens' picture decides who the spy is; players do not vote.",
}

SPY_BRIEF = (
    "You are the spy: your picture is not the one the others see. Work out what their picture "
    "shows from their clues, and give clues that blend in with theirs so that nobody votes for "
    "you. Never admit that you are the spy."
)

CITIZEN_BRIEF = (
    "You are a citizen: you see the same picture as the other citizens. Give clues that are "
    "accurate, so the other citizens trust you, but not so detailed that the spy can copy them. "
    "Look for the player whose clues do not fit the picture."
)

JUDGE_BRIEF = (
    "You are the judge. You do not play: you see the picture the citizens see and every clue, "
    "and decide which player is the spy, the one whose clues do not fit the picture."
)

JUDGE_RULES = (
    'You are the judge of the picture game "Who is the Spy?" with {num_players} players, '
    "numbered 1 to {num_players}. {num_citizens} players are citizens and all see the same "
    "picture; one player is the spy and sees a different picture. In {clue_rounds} clue "
    "round(s) every player gave a one-sentence clue about their picture."
)

ROLE_LINE = {
    "spy": "Your role: SPY (you have the different picture)",
    "citizen": "Your role: NOT SPY",
    "judge": "Your role: JUDGE (you see the citizens' picture)",
}

JUDGE_LINE = "You are the judge; the players are numbered 1 to {num_players}."
JUDGE_LINE_RE = re.compile(r"You are the judge; the players are numbered 1 to (\d+)\.")

DECISION_TASK = (
    "The clues are over. Vote for the player you believe is the spy (not yourself). Reply "
    "exactly in this format: <think>your reasoning</think><answer>N</answer> where N is the "
    "spy's player number, or <answer>N/A</answer> if you are unsure."
)

JUDGE_TASK = (
    "The clues are over. Which player is the spy? Reply exactly in this format: "
    "<think>your reasoning</think><answer>N</answer> where N is the spy's player number, or "
    "<answer>N/A</answer> if you are unsure."
)


def rules(num_players: int, clue_rounds: int, decision: str = "vote") -> str:
    """The rules paragraph for a game of this size, as players see it."""
    return RULES.format(
        num_players=num_players, num_citizens=num_players - 1, clue_rounds=clue_rounds, decision=DECISION_RULE[decision]
    )


def judge_rules(num_players: int, clue_rounds: int) -> str:
    """The rules paragraph the judge sees."""
    return JUDGE_RULES.format(num_players=num_players, num_citizens=num_players - 1, clue_rounds=clue_rounds)
