"""Jobs over a collection and one of its indexes: export, evaluation (dedup, classify...)."""
