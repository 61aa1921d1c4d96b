from tests.replay.snapshot_helpers import snapshot_storage  # noqa: F401
