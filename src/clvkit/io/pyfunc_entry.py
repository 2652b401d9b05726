"""MLflow "models from code" entry point of the scorer: MLflow loads this file; no pickle.

Not imported by clvkit itself.
"""

from mlflow.models import set_model

from clvkit.io.scorer_model import ClvScorerModel

set_model(ClvScorerModel())
