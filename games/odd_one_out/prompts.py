"""Every string the Odd One Out game shows a model. Edit the wording here; the game only
fills it in. Nothing here depends on a player's role: nobody is told whether it is the odd one.
"""

from __future__ import annotations

import re

RULES = (
    'You are playing the picture game "Odd One Out" with {num_players} players, numbered 1 to '
    "{num_players}. All players but one see the same picture; one player, the odd one, sees a "
    "different picture. Nobody is told who the odd one is: it may be you. The game has "
    "{clue_rounds} clue round(s): players speak in turn, each giving a one-sentence clue about "
    "their picture, and every clue is seen by all players. Your reasoning is private: nobody else "
    "sees it. After the clues, every player votes for the player they believe saw the different "
    "picture, and may name themselves."
)

BRIEF = (
    "Compare the others' clues with your picture. If their clues agree with each other but not "
    "with your picture, you are probably the odd one: then give clues that blend in with theirs. "
    "Otherwise give accurate clues, but not so detailed that the odd one can copy them, and look "
    "for the player whose clues do not fit."
)
"""The one brief every player gets, odd or not (so the prompt never reveals the role)."""

PLAYER_LINE = "You are Player {player} of {num_players}."
PLAYER_LINE_RE = re.compile(r"You are Player (\d+) of (\d+)\.")
"""Parses ``PLAYER_LINE`` back; used by ``OddOneOutGame.example_completions``."""

CLUES_HEADER = "Clues so far:"
NO_CLUES = "(no clues yet)"
ROUND_HEADER = "Round {round}:"
CLUE_LINE = "Player {player}: {clue}"
NO_CLUE = "(no clue)"
TRUNCATED = " [...]"

OWN_REASONING_HEADER = "Your own earlier reasoning (private):"
OWN_REASONING_LINE = "Round {round}: {text}"

CLUE_TASK = (
    "Round {round} of {clue_rounds}: it is your turn to give a clue. Think privately, then give "
    "one sentence about your picture. Reply exactly in this format: "
    "<think>your reasoning</think><answer>one-sentence clue</answer>"
)

DECISION_TASK = (
    "The clues are over. Vote for the player you believe saw the different picture; this may be "
    "yourself. Reply exactly in this format: <think>your reasoning</think><answer>N</answer> "
    "where N is that player's number, or <answer>N/A</answer> if you are unsure."
)


def rules(num_players: int, clue_rounds: int) -> str:
    """The rules paragraph for a game of this size."""
    return RULES.format(num_players=num_players, clue_rounds=clue_rounds)
