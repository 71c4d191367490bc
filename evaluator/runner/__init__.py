"""The container contract, the Docker backend and the local-process backend."""
