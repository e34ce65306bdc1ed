"""Every string the Odd One Out game shows a model. Edit the wording here; the game only
fills it in. Nothing here depends on a player's role: nobody is told whether it is the odd one.
The clue-stage lines it shares with the spy game (``PLAYER_LINE``, ``CLUES_HEADER``,
``CLUE_TASK``, ...) live in ``games.clue_vote``.
"""

from __future__ import annotations

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

DECISION_TASK = (
    "The clues are over. Vote for the player you believe saw the different picture; this may be "
    "yourself. Reply exactly in this format: <think>your reasoning</think><answer>N</answer> "
    "where N is that player's number, or <answer>N/A</answer> if you are unsure."
)


def rules(num_players: int, clue_rounds: int) -> str:
    """The rules paragraph for a game of this size."""
    return RULES.format(num_players=num_players, clue_rounds=clue_rounds)
