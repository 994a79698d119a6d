"""The public API surface behind Kong (`gateway/apis.yaml`) and its model."""
