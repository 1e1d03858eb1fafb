"""hardspoof detector: SSL front-end -> layer aggregation -> AASIST/linear back-end, trained with RACL.

Scores are bona fide logits: higher = more likely bona fide. Entry points: `detector.train.train`,
`detector.evaluate.evaluate/score/inspect`, `detector.checkpoint.load`, and the `detector` CLI.
"""
