"""The method registry: built-ins, helpful errors, third-party plugins through entry points."""

from __future__ import annotations

import re
import sys
import textwrap
from importlib.metadata import EntryPoint

import pytest
from conftest import REPO_ROOT

from owlore_bench import registry
from owlore_bench.errors import UserError

# Every @register_method("...") written in methods/*.py, read from the files themselves (so adding a method is one
# new file, as docs/adding-a-method.md says): a method lost from (or slipped into) the registry fails.
BUILTIN_METHODS = {name for path in (REPO_ROOT / "methods").glob("*.py")
                   for name in re.findall(r'^@register_method\("([^"]+)"\)', path.read_text(), re.M)}
PAPER_METHODS = {"full_ft", "galore", "lisa", "lora", "owlore", "owlore_fullrank"}


def test_builtin_methods_are_exactly_the_methods_folder():
    methods = registry.available_methods()
    builtin = {name for name, cls in methods.items() if cls.__module__.startswith("owlore_bench.methods.")}
    assert PAPER_METHODS < BUILTIN_METHODS and len(BUILTIN_METHODS) >= 18  # the file scan itself works
    assert builtin == BUILTIN_METHODS
    plugins = {entry.name for entry in registry.entry_points(group=registry.ENTRY_POINT_GROUP)}  # none in a dev venv
    assert set(methods) == BUILTIN_METHODS | plugins
    assert list(methods) == sorted(methods)


def test_builtin_methods_are_registered_with_descriptions_and_config_defaults():
    methods = registry.available_methods()
    assert BUILTIN_METHODS <= set(methods)
    for name, cls in methods.items():
        assert cls.name == name
        assert cls.description(), f"{name} has no one-line description"
        cls.Config()  # every field has a default
        for field, info in cls.Config.model_fields.items():
            assert info.description, f"{name}.{field} is undocumented"


def test_unknown_method_lists_known_ones_and_suggests_the_closest():
    with pytest.raises(UserError) as error:
        registry.get_method_class("lorra")
    message = str(error.value)
    assert "Did you mean 'lora'?" in message and "full_ft" in message


def test_invalid_method_config_names_the_field():
    with pytest.raises(UserError, match=r"lora\.r: Input should be greater than 0 \(got 0\)"):
        registry.build_method("lora", {"r": 0})
    with pytest.raises(UserError, match=r"lora\.rank: unknown key"):
        registry.build_method("lora", {"rank": 4})


def test_a_third_party_method_registers_through_the_entry_point_group(tmp_path, monkeypatch, fresh_registry):
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent('''
        from owlore_bench import Method, register_method

        @register_method("frozen_head_only")
        class HeadOnly(Method):
            """Train only the output head."""
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = EntryPoint(name="frozen_head_only", value="my_plugin", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(registry, "entry_points", lambda group: [entry] if group == registry.ENTRY_POINT_GROUP else [])
    assert registry.get_method_class("frozen_head_only").description() == "Train only the output head."
    sys.modules.pop("my_plugin", None)
