"""Models vzframe builds itself: the embedded tiny default."""
