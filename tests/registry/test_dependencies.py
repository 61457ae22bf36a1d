"""Code dependencies: the closure of project-local imports, resolved as Python would."""

from __future__ import annotations

from modelops_bundle.core.dependencies import code_closure
from modelops_bundle.core.discovery import ProjectSources
from tests.registry.conftest import Tree


def test_closure_of_nested_packages_relative_imports_and_cycles(tree: Tree) -> None:
    root = tree(
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from . import tools\n",
            "pkg/sub/tools.py": "import pkg.sub.deep.leaf\n",
            "pkg/sub/deep/__init__.py": "",
            "pkg/sub/deep/leaf.py": "from ...common import helper  # three levels up: pkg/\n",
            "pkg/common/__init__.py": "",
            "pkg/common/helper.py": "from pkg.models import model  # a cycle back to the start\nimport numpy\n",
            "pkg/models/__init__.py": "",
            "pkg/models/model.py": """
                import importlib
                import json
                from pkg.sub import tools
                from .siblings import a, b as bee
                plugin = importlib.import_module("pkg.hidden")
            """,
            "pkg/models/siblings/__init__.py": "",
            "pkg/models/siblings/a.py": "",
            "pkg/models/siblings/b.py": "",
            "pkg/hidden.py": "",
            "pkg/unrelated.py": "",
        }
    )
    deps = code_closure(ProjectSources(root), ["pkg/models/model.py"])
    assert deps.files == {
        "pkg/__init__.py",
        "pkg/common/__init__.py",
        "pkg/common/helper.py",
        "pkg/models/__init__.py",
        "pkg/models/model.py",
        "pkg/models/siblings/__init__.py",
        "pkg/models/siblings/a.py",
        "pkg/models/siblings/b.py",
        "pkg/sub/__init__.py",
        "pkg/sub/deep/__init__.py",
        "pkg/sub/deep/leaf.py",
        "pkg/sub/tools.py",
    }  # no pkg/hidden.py (dynamic import), no numpy/json (not local)
    assert deps.unresolved == set() and deps.broken == {}
    # a module that imports nothing still runs its packages' __init__ files when imported
    assert code_closure(ProjectSources(root), ["pkg/sub/deep/leaf.py"]).files >= {
        "pkg/__init__.py",
        "pkg/sub/__init__.py",
        "pkg/sub/deep/__init__.py",
    }


def test_src_layout_namespace_packages_and_what_is_reported(tree: Tree) -> None:
    root = tree(
        {
            "src/lib/__init__.py": "",
            "src/lib/maths.py": "",
            "models/run.py": """
                from lib import maths
                from models import helpers  # models/ has no __init__.py: a namespace package
                from .nowhere import x
                import lib.missing
                import data.loader  # a plain data/ folder, not a package: not ours to judge
            """,
            "models/helpers.py": "def broken(:\n",
            "data/readme.txt": "",
        }
    )
    deps = code_closure(ProjectSources(root), ["models/run.py"])
    assert deps.files == {"models/run.py", "models/helpers.py", "src/lib/__init__.py", "src/lib/maths.py"}
    assert code_closure(ProjectSources(root), ["src/lib/maths.py"]).files == {"src/lib/maths.py", "src/lib/__init__.py"}
    assert deps.unresolved == {
        "models/run.py:4: from .nowhere import ...: no such module",
        "models/run.py:5: import lib.missing: no such module in the project",
    }
    assert list(deps.broken) == ["models/helpers.py"]
    assert "syntax error" in deps.broken["models/helpers.py"]
