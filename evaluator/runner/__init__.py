"""The container contract, the Docker backend and the local-process backend.

Modules: :mod:`~evaluator.runner.contract` (entries, resources, staging, collection),
:mod:`~evaluator.runner.docker_backend` (sandboxed runs), :mod:`~evaluator.runner.local_backend`
(development runs), :mod:`~evaluator.runner.run` (``ccbench run``),
:mod:`~evaluator.runner.submissions` (``ccbench submit``) and :mod:`~evaluator.runner.images`
(``ccbench images build-base``). Nothing is imported here, so ``import evaluator.runner`` is cheap.
"""

__all__: list[str] = []
