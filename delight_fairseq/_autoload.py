"""Register the plugin with fairseq whatever the import order (no fairseq imported here).

``import delight_fairseq`` must not import fairseq (the building blocks are torch-only),
yet every fairseq API used afterwards must see the plugin's models: a checkpoint of
``delight_transformer`` loaded with fairseq's ``checkpoint_utils`` names a model that only
the plugin registers. So when fairseq is not loaded yet, ``watch()`` puts a finder on
``sys.meta_path`` that waits for ``import fairseq``, lets fairseq's own loader run, and then
imports ``delight_fairseq.models`` (which registers the models and applies ``_compat``).
The finder removes itself at the first ``import fairseq``; it never changes what is loaded.
"""
import importlib
import importlib.abc
import sys


class _RegisterAfter(importlib.abc.Loader):
    """fairseq's own loader, then the plugin's registration."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        importlib.import_module(f"{__package__}.models")

    def __getattr__(self, name):  # resources, source, ... as fairseq's loader gives them
        return getattr(self.loader, name)


class _FairseqWatcher(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "fairseq":
            return None
        unwatch()
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisterAfter(spec.loader)
                return spec
        return None


_watcher = _FairseqWatcher()


def watch() -> None:
    """Register the plugin as soon as fairseq is imported (idempotent)."""
    if _watcher not in sys.meta_path:
        sys.meta_path.insert(0, _watcher)


def unwatch() -> None:
    if _watcher in sys.meta_path:
        sys.meta_path.remove(_watcher)
