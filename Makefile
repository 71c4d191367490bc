# The two commands of the README. Both create ./.venv themselves.
.PHONY: demo test env env-torch env-test bench clean

env:
	bash scripts/bootstrap.sh

env-torch:
	bash scripts/bootstrap.sh torch,nnunet

env-test:
	bash scripts/bootstrap.sh test

demo: env-torch
	bash scripts/docker-engine.sh || echo "no Docker engine: the demo runs the baseline with --backend local"
	.venv/bin/ccbench demo

test: env-test
	bash scripts/docker-engine.sh || echo "no Docker engine: container tests will be skipped (see above)"
	bash scripts/test.sh

bench: env-test
	bash scripts/docker-engine.sh || echo "no Docker engine: container benchmarks will be skipped"
	bash scripts/bench.sh

clean:
	rm -rf .ccbench .pytest_cache .mypy_cache .ruff_cache
